"""semsearch.langchain: LangChain's own standard VectorStore tests (sync and async, unmodified), then ours.

The standard suite (``langchain_tests.integration_tests.VectorStoreIntegrationTests``) gets an
empty store on a fresh collection per test, in one database per module; its async tests run
on ``semsearch.aio`` (anyio runs them: the suite's coroutine tests carry no marker of their own).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from inspect import iscoroutinefunction

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import semsearch
import semsearch.aio
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.langchain import LangChainEmbedder, SemsearchVectorStore
from tests.examples import load_example, readme_python

pytestmark = pytest.mark.anyio

_names = (f"lc{i}" for i in itertools.count())
STANDARD = VectorStoreIntegrationTests


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def module_adb(module_db: semsearch.Database) -> AsyncIterator[semsearch.aio.AsyncDatabase]:
    """The module's database on the async pool, opened in the test's event loop."""
    async with await semsearch.aio.connect(module_db.url) as adb:
        yield adb


@pytest.fixture
def fresh(module_db: semsearch.Database) -> Iterator[semsearch.Collection]:
    """A new, empty collection embedded by LangChain's standard fake embeddings; dropped afterwards."""
    col = module_db.create_collection(next(_names), embedder=LangChainEmbedder(STANDARD.get_embeddings()))
    try:
        yield col
    finally:
        module_db.drop_collection(col.name)


@pytest.fixture
async def fresh_async(
    fresh: semsearch.Collection, module_adb: semsearch.aio.AsyncDatabase
) -> semsearch.aio.AsyncCollection:
    """The fresh collection's async handle."""
    return await module_adb.collection(fresh.name)


class TestSemsearchVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, fresh: semsearch.Collection, request: pytest.FixtureRequest) -> VectorStore:
        """An empty store on a fresh collection; an async test's store awaits on the async handle."""
        acol = request.getfixturevalue("fresh_async") if iscoroutinefunction(request.function) else None
        return SemsearchVectorStore(fresh, async_collection=acol, embedding=self.get_embeddings())


DOCS = {
    "cat": ("cats purr and nap in the warm sun", {"pet": "cat", "year": 2020}),
    "dog": ("dogs bark loudly at the mail carrier", {"pet": "dog", "year": 2021}),
    "tax": ("file the zq7 tax form before the april deadline", {"topic": "money", "year": 2019}),
    "jet": ("jet engines roar on takeoff", {"topic": "travel", "year": 2022}),
    "soup": ("a recipe for tomato soup with basil", {"topic": "food", "year": 2018}),
}


@pytest.fixture
def local(db: semsearch.Database) -> SemsearchVectorStore:
    """A store on a collection of the local model (its own embedder embeds: no LangChain embeddings)."""
    store = SemsearchVectorStore(db.create_collection("kb", model="local", dims=64))
    texts, metadatas = zip(*DOCS.values(), strict=True)
    assert store.add_texts(texts, list(metadatas), ids=list(DOCS)) == list(DOCS)
    return store


def test_a_retriever_searches_by_vector_text_or_hybrid_with_semsearch_filters(local):
    col = local.collection
    for mode in ("vector", "text", "hybrid"):
        retriever = local.as_retriever(search_kwargs={"k": 2, "mode": mode})
        docs = retriever.invoke("zq7 tax deadline")
        # what the collection's own search returns, as documents
        expected = col.search("zq7 tax deadline", k=2, mode=mode)
        assert [d.id for d in docs] == expected.keys, mode
        assert docs[0] == Document(id="tax", page_content=DOCS["tax"][0], metadata=DOCS["tax"][1])
    # text search finds only the rows holding the words; a filter keeps its rows only
    assert [d.id for d in local.similarity_search("zq7", k=3, mode="text")] == ["tax"]
    kept = local.as_retriever(search_kwargs={"k": 5, "mode": "hybrid", "filter": {"year": {"$gte": 2021}}})
    assert {d.id for d in kept.invoke("tax deadline")} == {"dog", "jet"}
    pets = local.similarity_search("animals", k=5, filter={"$or": [{"pet": "cat"}, {"pet": "dog"}]})
    assert {d.id for d in pets} == {"cat", "dog"}


def test_scores_are_the_collections_and_relevance_is_the_cosine_similarity(local):
    scored = local.similarity_search_with_score("a sleepy kitten", k=3)
    hits = local.collection.search("a sleepy kitten", k=3)
    assert [(d.id, s) for d, s in scored] == [(h.key, h.score) for h in hits]
    relevance = local.similarity_search_with_relevance_scores("a sleepy kitten", k=3)
    assert [s for _, s in relevance] == [h.score for h in hits]
    threshold = (hits[0].score + hits[1].score) / 2
    kept = local.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": threshold})
    assert [d.id for d in kept.invoke("a sleepy kitten")] == hits.keys[:1]
    vector = local.collection.embedder.embed(["a sleepy kitten"])[0]
    assert [d.id for d in local.similarity_search_by_vector(list(vector), k=3)] == hits.keys


def test_delete_by_ids_by_filter_and_everything(local):
    assert local.delete(["cat", "nope"]) is True
    assert local.get_by_ids(["cat", "dog"]) == [
        Document(id="dog", page_content=DOCS["dog"][0], metadata=DOCS["dog"][1])
    ]
    local.delete(filter={"year": {"$lt": 2020}})
    assert sorted(r.key for r in local.collection.get(list(DOCS))) == ["dog", "jet"]
    with pytest.raises(InvalidInputError, match="expected ids or filter= to delete by, got both"):
        local.delete(["dog"], filter={"pet": "dog"})
    local.delete()  # LangChain's delete(): every row
    assert local.collection.count() == 0


def test_a_tenants_store_reads_writes_and_deletes_its_tenants_rows_only(db):
    col = db.create_collection("shared", model="local", dims=64)
    acme, other = SemsearchVectorStore(col, tenant="acme"), SemsearchVectorStore(col, tenant="other")
    acme.add_texts(["acme invoice 42"], ids=["a1"])
    other.add_texts(["other invoice 7"], ids=["o1"])
    assert [d.id for d in acme.similarity_search("invoice", k=5)] == ["a1"]
    assert [d.id for d in other.similarity_search("invoice", k=5, mode="hybrid")] == ["o1"]
    assert acme.get_by_ids(["a1", "o1"])[0].id == "a1" and len(acme.get_by_ids(["a1", "o1"])) == 1
    acme.delete(["o1"])  # not acme's row: left alone
    acme.delete()  # acme's rows, not everyone's
    assert [(r.key, r.tenant) for r in col.get(["a1", "o1"])] == [("o1", "other")]


async def test_a_store_with_only_an_async_collection_awaits_every_call(db, db_url):
    db.create_collection("akb", model="local", dims=64)
    async with await semsearch.aio.connect(db_url) as adb:
        store = SemsearchVectorStore(async_collection=await adb.collection("akb"))
        texts, metadatas = zip(*DOCS.values(), strict=True)
        # with no sync collection these cannot fall back to a worker thread running the sync methods
        assert await store.aadd_texts(list(texts), list(metadatas), ids=list(DOCS)) == list(DOCS)
        docs = await store.as_retriever(search_kwargs={"k": 1, "mode": "text"}).ainvoke("zq7")
        assert [d.id for d in docs] == ["tax"]
        scored = await store.asimilarity_search_with_score("zq7 tax", k=2, mode="hybrid", filter={"year": 2019})
        assert [d.id for d, _ in scored] == ["tax"]
        assert [d.id for d in await store.aget_by_ids(["soup", "nope", "cat"])] == ["soup", "cat"]
        await store.adelete(["soup"])
        assert await store.aget_by_ids(["soup"]) == []
        with pytest.raises(ConfigurationError, match="expected a sync collection for similarity_search"):
            store.similarity_search("cats")
    # the rows the sync API sees
    assert sorted(r.key for r in db.collection("akb").get(list(DOCS))) == ["cat", "dog", "jet", "tax"]


def test_from_texts_creates_a_collection_for_the_langchain_model_then_adds_to_it(db):
    embedding = DeterministicFakeEmbedding(size=16)
    store = SemsearchVectorStore.from_texts(
        ["foo", "bar"], embedding, metadatas=[{"n": 1}, {"n": 2}], ids=["f", "b"], db=db, collection_name="lc",
        compression="none",
    )  # fmt: skip
    info = db.collection("lc").info
    assert (info.model, info.dims, info.compression) == ("langchain:DeterministicFakeEmbedding", 16, "none")
    again = SemsearchVectorStore.from_documents([Document("baz", id="z")], embedding, db=db, collection_name="lc")
    found = again.similarity_search("bar", k=5)
    assert (found[0].id, sorted(d.id for d in found)) == ("b", ["b", "f", "z"])
    assert store.similarity_search("baz", k=1)[0] == Document(id="z", page_content="baz")
    # the stored vectors are LangChain's: the collection's own search by its vector agrees
    vector = embedding.embed_query("foo")
    assert db.collection("lc").search(vector=vector, k=1).keys == ["f"]


async def test_a_collection_made_for_langchain_embeddings_embeds_through_them_sync_and_async(db, db_url):
    embedding = DeterministicFakeEmbedding(size=8)
    db.create_collection("fake", embedder=LangChainEmbedder(embedding))
    # no embedding=: the handles' own embedder (the LangChain model, adapted) embeds
    store = SemsearchVectorStore(db.collection("fake", embedder=LangChainEmbedder(embedding)))
    store.add_texts(["foo", "bar"], ids=["f", "b"])
    async with await semsearch.aio.connect(db_url) as adb:
        astore = SemsearchVectorStore(
            async_collection=await adb.collection("fake", embedder=LangChainEmbedder(embedding))
        )
        await astore.aadd_texts(["baz"], ids=["z"])
        assert [d.id for d in await astore.asimilarity_search("baz", k=1)] == ["z"]
    for text, key in (("foo", "f"), ("bar", "b"), ("baz", "z")):
        hit = db.collection("fake").search(vector=embedding.embed_query(text), k=1)[0]
        assert (hit.key, round(hit.score, 5)) == (key, 1.0)


def test_bad_arguments_are_refused_before_anything_is_written(local):
    with pytest.raises(InvalidInputError, match=r"expected options of a search among .*, got 'where'"):
        local.similarity_search("cats", where={"pet": "cat"})
    with pytest.raises(InvalidInputError, match="expected 2 metadatas, one per text, got 1"):
        local.add_texts(["a", "b"], [{}], ids=["x", "y"])
    with pytest.raises(InvalidInputError, match="expected texts as a list of str, got one str"):
        local.add_texts("ab")
    with pytest.raises(InvalidInputError, match="expected mode 'vector' for a search by vector, got 'hybrid'"):
        local.similarity_search_by_vector([0.1] * 64, mode="hybrid")
    with pytest.raises(ConfigurationError, match="expected a collection or async_collection=, got neither"):
        SemsearchVectorStore()
    assert local.get_by_ids(["x", "y"]) == []


def test_langchain_embedder_checks_what_the_model_returns():
    class Short(DeterministicFakeEmbedding):
        def embed_documents(self, texts):
            return [v[:3] for v in super().embed_documents(texts)]

    embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=8))
    assert (embedder.model, embedder.dims, embedder.embed(["a", "b"]).shape) == (
        "langchain:DeterministicFakeEmbedding", 8, (2, 8),
    )  # fmt: skip
    with pytest.raises(
        semsearch.errors.EmbeddingError, match=r"expected 1 vectors of 8 dims from .*, got shape \(1, 3\)"
    ):
        LangChainEmbedder(Short(size=8), model="short").embed(["a"])
    with pytest.raises(InvalidInputError, match="expected a langchain Embeddings, got str"):
        LangChainEmbedder("text-embedding-3-small")  # type: ignore[arg-type]


def test_the_rag_example_answers_offline_from_hybrid_retrieval_and_runs_again(db, db_url, monkeypatch, capsys):
    example = load_example("langchain_rag.py", "semsearch_langchain_rag_example")
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    asked = {
        ("how do I remove limescale from the kettle?",): "descale",
        ("how long is the guarantee?",): "warranty",  # no word in common: the vector side finds it
        ("--section", "safety", "can children use it?"): "children",
        # 'dry' answers it but is a safety passage: the filter leaves it out
        ("--section", "care", "what happens if I switch it on empty?"): "filter",
    }
    for _ in range(2):  # the second run finds its collection and changes nothing
        for argv, source in asked.items():
            assert example.main(list(argv)) == 0
            out = capsys.readouterr().out
            assert out.endswith(f" [source: {source}]\n"), (argv, out)
            assert out.removesuffix(f" [source: {source}]\n") == example.MANUAL[source][0]
    col = db.collection("langchain_rag")
    assert col.count() == len(example.MANUAL)
    assert example.main(["--section", "nonexistent", "anything?"]) == 0
    assert capsys.readouterr().out == "I don't know: no passage matches the question.\n"


def test_the_readme_langchain_example_runs_and_runs_again(db_url, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    code = compile(readme_python("### LangChain"), "README.md", "exec", dont_inherit=True)
    for _ in range(2):
        exec(code, {})
        assert capsys.readouterr().out == "['cat']\n['tax']\n"
