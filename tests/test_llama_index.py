"""semsearch.llama_index end to end with llama-index-core's own objects, on a real Postgres.

llama-index-core ships no reusable vector-store test suite (0.14: no tests in the wheel; those in
its repository, llama-index-core/tests/vector_stores/, test ``SimpleVectorStore`` itself), so the
filters are checked against that in-memory store instead: the same documents, the same
``MetadataFilters``, the same nodes kept.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

import semsearch
import semsearch.aio
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.llama_index import SemsearchEmbedding, SemsearchVectorStore, to_where
from tests.examples import load_example, readme_python

DOCS = {
    "cat": ("cats purr and nap in the sun", {"topic": "pets", "year": 2001, "tags": ["animal", "home"]}),
    "dog": ("dogs bark at the mail carrier", {"topic": "pets", "year": 2005, "tags": ["animal"]}),
    "tax": ("file the tax return before the april deadline", {"topic": "money", "year": 2010, "tags": ["law"]}),
    "jet": ("jet engines roar on takeoff", {"topic": "travel", "year": 2015, "tags": ["noise", "air"]}),
    "soup": ("a recipe for tomato soup with basil", {"topic": "food", "tags": ["home"]}),
    "rain": ("heavy rain and thunderstorms tonight", {"topic": "weather", "year": 2020, "tags": []}),
}


def documents() -> list[Document]:
    return [Document(text=text, id_=key, metadata=dict(meta)) for key, (text, meta) in DOCS.items()]


def _f(key, value, op=FilterOperator.EQ):
    return MetadataFilter(key=key, value=value, operator=op)


@pytest.fixture
def col(db):
    return db.create_collection("li", model="local", dims=64)


@pytest.fixture
def embed_model(col):
    return SemsearchEmbedding(col.embedder)


@pytest.fixture
def index(col, embed_model):
    store = SemsearchVectorStore(col)
    ctx = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(documents(), storage_context=ctx, embed_model=embed_model)


def refs(nodes) -> list[str]:
    return [n.node.ref_doc_id if hasattr(n, "node") else n.ref_doc_id for n in nodes]


def test_an_index_over_the_store_retrieves_answers_and_deletes_a_document(col, index):
    assert col.count() == len(DOCS)  # one node per short document, one row per node
    hits = index.as_retriever(similarity_top_k=2).retrieve("a cat purring in the sun")
    assert refs(hits)[0] == "cat"
    assert hits[0].node.metadata == DOCS["cat"][1]  # the node comes back as LlamaIndex stored it
    assert hits[0].node.get_content() == DOCS["cat"][0]
    assert hits[0].score == pytest.approx(col.search("a cat purring in the sun", k=1)[0].score, abs=1e-5)

    answer = index.as_query_engine(llm=MockLLM(), similarity_top_k=1).query("when is the tax return due?")
    assert refs(answer.source_nodes) == ["tax"]
    assert str(answer)  # MockLLM answers something: the engine ran its whole pipeline over the store

    index.delete_ref_doc("tax")
    assert col.count() == len(DOCS) - 1
    assert "tax" not in refs(index.as_retriever(similarity_top_k=10).retrieve("tax return deadline"))


def test_a_document_split_into_many_nodes_is_deleted_whole(col, embed_model):
    from llama_index.core.node_parser import SentenceSplitter

    long = Document(text=" ".join(f"Sentence {i} about gardening and roses." for i in range(400)), id_="long")
    store = SemsearchVectorStore(col)
    ctx = StorageContext.from_defaults(vector_store=store)
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=8)
    VectorStoreIndex.from_documents([long, *documents()], storage_context=ctx, embed_model=embed_model,
                                    transformations=[splitter])  # fmt: skip
    assert col.count() > len(DOCS) + 10
    store.delete("long")
    assert col.count() == len(DOCS)
    assert sorted(n.ref_doc_id for n in store.get_nodes()) == sorted(DOCS)


def test_each_query_mode_runs_semsearchs_own_search(col, index, embed_model):
    store = index.vector_store
    q = "tomato basil"
    vec = embed_model.get_query_embedding(q)

    def run(mode, **kw):
        found = store.query(VectorStoreQuery(query_str=q, query_embedding=vec, similarity_top_k=3, mode=mode, **kw))
        return found.ids, found.similarities

    def same(ids_scores, result):
        assert ids_scores[0] == result.keys
        assert ids_scores[1] == pytest.approx([h.score for h in result], abs=1e-5)

    same(run(VectorStoreQueryMode.DEFAULT), col.search(vector=vec, k=3))
    same(run(VectorStoreQueryMode.TEXT_SEARCH), col.search(q, mode="text", k=3))
    same(run(VectorStoreQueryMode.HYBRID), col.search(q, vector=vec, mode="hybrid", k=3))
    weighted = col.search(q, vector=vec, mode="hybrid", k=3, vector_weight=0.25, text_weight=0.75)
    same(run(VectorStoreQueryMode.HYBRID, alpha=0.25), weighted)
    # alpha=1: the vector list alone, alpha=0: the text list alone (their own searches, their own scores)
    same(run(VectorStoreQueryMode.HYBRID, alpha=1.0), col.search(vector=vec, k=3))
    same(run(VectorStoreQueryMode.HYBRID, alpha=0.0), col.search(q, mode="text", k=3))
    assert len(run(VectorStoreQueryMode.HYBRID, alpha=0.5, hybrid_top_k=5)[0]) == 5
    soup = next(n.node_id for n in store.get_nodes() if n.ref_doc_id == "soup")
    assert run(VectorStoreQueryMode.TEXT_SEARCH)[0] == [soup]  # the one node with either word

    # the modes through LlamaIndex's retriever (it passes query_str, the embedding, alpha)
    for mode, alpha in (("default", None), ("text_search", None), ("hybrid", 0.5)):
        retriever = index.as_retriever(vector_store_query_mode=mode, alpha=alpha, similarity_top_k=1)
        assert refs(retriever.retrieve("thunderstorms tonight")) == ["rain"]

    with pytest.raises(InvalidInputError, match="expected query mode default, text_search or hybrid, got 'mmr'"):
        store.query(VectorStoreQuery(query_embedding=vec, mode=VectorStoreQueryMode.MMR))
    with pytest.raises(InvalidInputError, match="expected query_str for a text_search query"):
        store.query(VectorStoreQuery(query_embedding=vec, mode=VectorStoreQueryMode.TEXT_SEARCH))
    with pytest.raises(InvalidInputError, match=r"expected alpha between 0 and 1, got 1\.5"):
        store.query(VectorStoreQuery(query_str=q, query_embedding=vec, mode=VectorStoreQueryMode.HYBRID, alpha=1.5))


FILTERS = [
    MetadataFilters(filters=[_f("topic", "pets")]),
    MetadataFilters(filters=[_f("topic", "pets", FilterOperator.NE)]),
    MetadataFilters(filters=[_f("year", 2005, FilterOperator.GT)]),
    MetadataFilters(filters=[_f("year", 2005, FilterOperator.GTE)]),
    MetadataFilters(filters=[_f("year", 2010, FilterOperator.LT)]),
    MetadataFilters(filters=[_f("year", 2010, FilterOperator.LTE)]),
    MetadataFilters(filters=[_f("year", 2010, FilterOperator.NE)]),  # soup has no year: kept, as LlamaIndex keeps it
    MetadataFilters(filters=[_f("topic", ["pets", "food"], FilterOperator.IN)]),
    MetadataFilters(filters=[_f("year", [2001, 2020], FilterOperator.NIN)]),
    MetadataFilters(filters=[_f("tags", "home", FilterOperator.CONTAINS)]),
    MetadataFilters(filters=[_f("tags", ["home", "law"], FilterOperator.ANY)]),
    MetadataFilters(filters=[_f("tags", ["animal", "home"], FilterOperator.ALL)]),
    MetadataFilters(filters=[_f("topic", "pets"), _f("year", 2003, FilterOperator.GT)]),
    MetadataFilters(filters=[_f("topic", "food"), _f("year", 2012, FilterOperator.GT)], condition=FilterCondition.OR),
    MetadataFilters(filters=[_f("topic", "pets"), _f("topic", "food")], condition=FilterCondition.NOT),
]


@pytest.fixture(scope="module")
def both_indexes(module_db):
    """The documents in semsearch and in LlamaIndex's in-memory store (read only: one per module)."""
    col = module_db.create_collection("li_filters", model="local", dims=64)
    embed_model = SemsearchEmbedding(col.embedder)
    ctx = StorageContext.from_defaults(vector_store=SemsearchVectorStore(col))
    ours = VectorStoreIndex.from_documents(documents(), storage_context=ctx, embed_model=embed_model)
    simple = VectorStoreIndex.from_documents(documents(), embed_model=embed_model)
    assert isinstance(simple.vector_store, SimpleVectorStore)
    return ours, simple


@pytest.mark.parametrize("filters", FILTERS, ids=[repr(to_where(f)) for f in FILTERS])
def test_filters_keep_the_nodes_llama_indexs_own_store_keeps(both_indexes, filters):
    kept = {}
    for name, idx in zip(("semsearch", "simple"), both_indexes, strict=True):
        kept[name] = sorted(refs(idx.as_retriever(similarity_top_k=20, filters=filters).retrieve("anything")))
    assert kept["semsearch"] == kept["simple"]
    assert kept["semsearch"]  # each filter keeps something: none passes by keeping nothing on both sides


def test_nested_filters_and_filters_in_every_mode(index):
    nested = MetadataFilters(
        filters=[
            _f("topic", "pets"),
            MetadataFilters(
                filters=[_f("year", 2015, FilterOperator.GTE), _f("tags", "home", FilterOperator.CONTAINS)],
                condition=FilterCondition.OR,
            ),
        ],
        condition=FilterCondition.OR,
    )
    assert to_where(nested) == {
        "$or": [{"topic": {"$eq": "pets"}}, {"$or": [{"year": {"$gte": 2015}}, {"tags": {"$contains": "home"}}]}]
    }
    for mode in ("default", "text_search", "hybrid"):
        retriever = index.as_retriever(vector_store_query_mode=mode, similarity_top_k=10, filters=nested)
        found = sorted(refs(retriever.retrieve("cats dogs jets soup rain")))
        assert found == ["cat", "dog", "jet", "rain", "soup"], mode  # k=10, and every kept node matches a word


@pytest.mark.parametrize(
    ("op", "value"),
    [
        (FilterOperator.TEXT_MATCH, "purr"),
        (FilterOperator.TEXT_MATCH_INSENSITIVE, "Purr"),
        (FilterOperator.IS_EMPTY, None),
    ],
)
def test_an_operator_semsearch_cannot_run_is_refused_by_name(index, op, value):
    filters = MetadataFilters(filters=[_f("topic", value, op)])
    with pytest.raises(InvalidInputError, match=f"expected a filter operator semsearch can run .*got '{op.value}'"):
        index.as_retriever(filters=filters).retrieve("cats")
    with pytest.raises(InvalidInputError, match="expected a non-empty list for IN on 'topic', got 'pets'"):
        to_where(MetadataFilters(filters=[_f("topic", "pets", FilterOperator.IN)]))


def test_get_delete_and_clear_nodes_by_id_and_filter(col, index):
    store = index.vector_store
    ids = {n.ref_doc_id: n.node_id for n in store.get_nodes()}
    assert sorted(ids) == sorted(DOCS)
    assert [n.ref_doc_id for n in store.get_nodes([ids["jet"], "nope", ids["cat"]])] == ["jet", "cat"]
    pets = MetadataFilters(filters=[_f("topic", "pets")])
    assert sorted(n.ref_doc_id for n in store.get_nodes(filters=pets)) == ["cat", "dog"]
    assert [n.ref_doc_id for n in store.get_nodes([ids["cat"], ids["tax"]], filters=pets)] == ["cat"]
    by_ids = store.query(VectorStoreQuery(query_str="x", query_embedding=None, node_ids=[ids["jet"], ids["dog"]],
                                          similarity_top_k=5, mode=VectorStoreQueryMode.TEXT_SEARCH))  # fmt: skip
    assert by_ids.ids == []  # node_ids filter the search: neither has the word "x"
    by_docs = index.as_retriever(similarity_top_k=5, doc_ids=["jet", "dog"]).retrieve("engines")
    assert sorted(refs(by_docs)) == ["dog", "jet"]

    store.delete_nodes([ids["cat"], ids["tax"]], filters=pets)  # both: the pets among these ids
    assert sorted(n.ref_doc_id for n in store.get_nodes()) == ["dog", "jet", "rain", "soup", "tax"]
    store.delete_nodes(filters=MetadataFilters(filters=[_f("year", 2012, FilterOperator.GT)]))
    assert sorted(n.ref_doc_id for n in store.get_nodes()) == ["dog", "soup", "tax"]
    store.delete_nodes([ids["dog"]])
    store.delete_nodes()  # neither ids nor filters: nothing
    assert col.count() == 2
    store.clear()
    assert col.count() == 0


def test_nodes_without_embeddings_are_embedded_by_the_collection_and_plain_rows_read_back(col):
    store = SemsearchVectorStore(col)
    assert store.add([TextNode(id_="n1", text="cats purr", metadata={"a": 1})]) == ["n1"]
    col.add(["plain"], ["dogs bark"], metadata=[{"b": 2}])  # a row stored without LlamaIndex
    found = store.query(VectorStoreQuery(query_str="kittens", similarity_top_k=2))
    assert found.ids == ["n1", "plain"]
    assert [(n.node_id, n.get_content(), n.metadata) for n in found.nodes] == [
        ("n1", "cats purr", {"a": 1}), ("plain", "dogs bark", {"b": 2})
    ]  # fmt: skip
    mixed = [TextNode(id_="m1", text="a", embedding=[1.0] * 64), TextNode(id_="m2", text="b")]
    with pytest.raises(InvalidInputError, match="expected every node with an embedding or none, got 1 of 2 without"):
        store.add(mixed)
    assert col.count() == 2


def test_any_llama_index_embed_model_on_a_collection_of_its_dims(db):
    col = db.create_collection("mock", dims=8, model="llama-index-mock")  # precomputed vectors only
    store = SemsearchVectorStore(col)
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(documents(), storage_context=ctx, embed_model=MockEmbedding(embed_dim=8))
    assert col.count() == len(DOCS)
    assert len(index.as_retriever(similarity_top_k=3).retrieve("anything")) == 3
    assert refs(index.as_retriever(vector_store_query_mode="text_search").retrieve("thunderstorms")) == ["rain"]


def test_a_tenants_store_sees_and_clears_its_own_nodes(db):
    col = db.create_collection("t", model="local", dims=64)
    a, b = SemsearchVectorStore(col, tenant="a"), SemsearchVectorStore(col, tenant="b")
    a.add([TextNode(id_="a1", text="cats purr")])
    b.add([TextNode(id_="b1", text="cats nap")])
    assert a.query(VectorStoreQuery(query_str="cats", similarity_top_k=5)).ids == ["a1"]
    assert [n.node_id for n in b.get_nodes()] == ["b1"]
    assert [n.node_id for n in a.get_nodes(["a1", "b1"])] == ["a1"]
    a.delete_nodes(["b1"])  # another tenant's node: left alone
    assert [n.node_id for n in b.get_nodes(["b1"])] == ["b1"]
    a.add([TextNode(id_="a2", text="cats again")])
    a.delete_nodes(["a2"])
    assert [n.node_id for n in a.get_nodes()] == ["a1"]
    a.clear()
    assert col.count() == 1 and [n.node_id for n in b.get_nodes(["b1"])] == ["b1"]


def test_wrong_handles_are_refused_at_construction(col):
    with pytest.raises(ConfigurationError, match="expected collection= or async_collection=, got neither"):
        SemsearchVectorStore()
    with pytest.raises(ConfigurationError, match="expected a semsearch Collection, got str"):
        SemsearchVectorStore("li")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="expected a semsearch Embedder"):
        SemsearchEmbedding(object())  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_calls_await_semsearch_aio(db, db_url, col, embed_model, anyio_backend):
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.collection("li")
        store = SemsearchVectorStore(async_collection=acol)  # async only: a sync call would say so
        with pytest.raises(ConfigurationError, match=r"expected a sync collection for add\(\).*await async_add"):
            store.add([TextNode(id_="x", text="x")])
        nodes = await embed_model.acall(  # LlamaIndex's async embedding of the documents' nodes
            [TextNode(id_=k, text=t, metadata=m) for k, (t, m) in DOCS.items()]
        )
        assert await store.async_add(nodes) == list(DOCS)
        assert col.count() == len(DOCS)
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
        for mode in ("default", "text_search", "hybrid"):
            found = await index.as_retriever(vector_store_query_mode=mode, similarity_top_k=1).aretrieve("jet engines")
            assert [n.node.node_id for n in found] == ["jet"], mode
        pets = MetadataFilters(filters=[_f("topic", "pets")])
        assert sorted(n.node_id for n in await store.aget_nodes(filters=pets)) == ["cat", "dog"]
        assert [n.node_id for n in await store.aget_nodes(["dog", "cat"])] == ["dog", "cat"]
        await store.adelete_nodes(["dog"])
        await store.adelete_nodes(filters=pets)
        assert sorted(n.node_id for n in await store.aget_nodes()) == ["jet", "rain", "soup", "tax"]
        await store.aclear()
        assert col.count() == 0

        # a sync store's async calls run the sync call in a worker thread; adelete by document
        sync_store = SemsearchVectorStore(col)
        docs = [TextNode(id_="p1", text="cats", embedding=[1.0] + [0.0] * 63)]
        await sync_store.async_add(docs)
        assert (await sync_store.aquery(VectorStoreQuery(query_str="cats", mode="text_search"))).ids == ["p1"]
        both = SemsearchVectorStore(col, async_collection=acol)
        await both.async_add([TextNode(id_="q1", text="dogs", embedding=[0.0, 1.0] + [0.0] * 62)])
        await both.adelete("None")  # nodes without a document are stored with LlamaIndex's ref_doc_id "None"
        assert col.count() == 0


def test_the_readme_example_runs_and_prints_what_it_says(db_url, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    text = readme_python("### LlamaIndex")
    code = compile(text, "README.md", "exec", dont_inherit=True)
    expected = [line.rsplit("# ", 1)[1] for line in text.splitlines() if line.startswith("print(")]
    for _ in range(2):  # and again, on what its first run made: its documents' nodes replaced, not doubled
        ns: dict[str, Any] = {}
        try:
            exec(code, ns)
        finally:
            if "db" in ns:
                ns["db"].close()
        assert capsys.readouterr().out.splitlines() == expected
    with semsearch.connect(db_url) as db:
        assert db.collection("llama_example").count() == 3


def test_the_example_rag_app_splits_long_documents_and_answers_offline(db, db_url, monkeypatch, capsys):
    rag = load_example("llama_index_rag/rag.py", "semsearch_llama_index_example")
    docs = rag.documents()
    assert len(docs) == len(rag.MODULES) and min(len(d.text) for d in docs) > 1500
    index = rag.build(db)
    nodes = db.collection("llama_index_example").count()
    assert nodes > 2 * len(docs)  # long documents: several nodes each
    rag.build(db)  # a second run replaces each document's nodes
    assert db.collection("llama_index_example").count() == nodes
    for mode in ("default", "text_search", "hybrid"):
        hits = rag.search(index, "read and write zip archives", mode)
        assert [h.node.ref_doc_id for h in hits] == ["zipfile"] * 3, mode
    assert {h.node.ref_doc_id for h in rag.search(index, "archive", "text_search", module="tarfile")} == {"tarfile"}
    assert {n.node.ref_doc_id for n in rag.answer(index, "how do I open a zip archive?").source_nodes} == {"zipfile"}
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    rag.main(["send an email through a mail server"])
    assert capsys.readouterr().out.splitlines()[-1] == "sources: ['smtplib']"
