"""Documents split into passages on a real Postgres: add, edit, get, delete, and document-level search."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from psycopg import sql

import semsearch
import semsearch.aio
from semsearch import Splitter
from semsearch.embeddings.openai import OpenAIEmbedder
from semsearch.errors import ConfigurationError, InvalidInputError
from tests.examples import readme_python
from tests.fake_openai import FakeOpenAI

SMALL = "text-embedding-3-small"


def paragraphs(n: int, offset: int = 0) -> list[str]:
    topics = ["pumps and valves", "filters and water", "warranty and receipts", "engines and oil", "cats and naps"]
    return [
        f"Section {i}. This part is about {topics[i % len(topics)]}. It has a second sentence about item {i}."
        for i in range(offset, offset + n)
    ]


def by_paragraph(text: str) -> list[str]:
    """A custom splitter: one passage per paragraph (a callable text -> list[str])."""
    return [p for p in text.split("\n\n") if p.strip()]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def passage_rows(db, table: str) -> int:
    with db.connection() as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("semsearch", table))).fetchone()[0]


def sent(server: FakeOpenAI) -> list[str]:
    """Every text sent to the fake's embeddings endpoint, in order."""
    return [text for r in server.requests for text in r.inputs]


def test_a_document_is_stored_as_passages_with_offsets_and_comes_back_whole(db):
    col = db.create_collection("manuals", model="local", dims=64, passages=Splitter(max_tokens=40, overlap=8))
    text = "\n\n".join(paragraphs(12))
    added = col.add(keys=["doc1"], contents=[text], metadata=[{"lang": "en"}])
    assert (added.documents, added.passages_embedded, added.passages_kept) == (1, added.inserted, 0)
    assert added.inserted > 5 and col.count() == 1  # documents; their passages are rows
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.col_manuals").fetchone()[0] == added.inserted
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT key, content, metadata, content_hash = sha256(convert_to(content, 'UTF8')) "
            "FROM semsearch.col_manuals"
        ).fetchall()
    for key, content, metadata, hashed in rows:
        place = metadata["semsearch:passage"]
        assert key == f"doc1#{place['seq']}" and place["doc"] == "doc1" and metadata["lang"] == "en"
        assert text[place["start"] : place["end"]] == content and hashed
    [doc] = col.get("doc1")
    assert (doc.key, doc.content, doc.metadata, doc.embedded) == ("doc1", text, {"lang": "en"}, True)
    assert col.get(["nope"]) == []


def test_editing_one_paragraph_embeds_only_its_passages_with_the_real_openai_sdk(db, server):
    emb = OpenAIEmbedder(model=SMALL, dims=256, base_url=server.base_url, api_key="x", max_retries=0)
    col = db.create_collection("guide", embedder=emb, passages=by_paragraph)
    parts = paragraphs(40)
    first = col.add(keys=["g"], contents=["\n\n".join(parts)])
    assert (first.inserted, first.passages_embedded, len(sent(server))) == (40, 40, 40)
    before = len(sent(server))
    parts[7] = "Section 7 is rewritten: it now explains the pressure relief valve."
    edited = col.add(keys=["g"], contents=["\n\n".join(parts)])
    assert sent(server)[before:] == [parts[7]]  # one embedding input for one changed paragraph
    assert (edited.passages_embedded, edited.passages_kept, edited.passages_deleted) == (1, 39, 0)
    # a paragraph inserted near the top: every later passage moved (seq, offsets), none is embedded again
    before = len(sent(server))
    parts.insert(2, "A new safety notice.")
    moved = col.add(keys=["g"], contents=["\n\n".join(parts)])
    assert sent(server)[before:] == ["A new safety notice."]
    assert (moved.passages_embedded, moved.passages_kept, passage_rows(db, "col_guide")) == (1, 40, 41)
    # shorter: the vanished passages are deleted in the same write, nothing is embedded
    before = len(sent(server))
    short = col.add(keys=["g"], contents=["\n\n".join(parts[:10])])
    assert sent(server)[before:] == []
    assert (short.passages_embedded, short.passages_deleted, passage_rows(db, "col_guide")) == (0, 31, 10)
    assert col.get("g")[0].content == "\n\n".join(parts[:10])


def test_editing_with_the_local_model_keeps_the_unchanged_passages_vectors(db):
    col = db.create_collection("loc", model="local", dims=64, passages=by_paragraph)
    parts = paragraphs(20)
    col.add(keys=["d"], contents=["\n\n".join(parts)])
    with db.connection() as conn:
        old = dict(conn.execute("SELECT content, embedding::text FROM semsearch.col_loc").fetchall())
    parts[3] = "Completely new words about gardening."
    edited = col.add(keys=["d"], contents=["\n\n".join(parts)])
    assert (edited.passages_embedded, edited.passages_kept) == (1, 19)
    with db.connection() as conn:
        new = dict(conn.execute("SELECT content, embedding::text FROM semsearch.col_loc").fetchall())
    assert {c: v for c, v in new.items() if c in old} == {c: old[c] for c in new if c in old}


def test_deleting_a_document_removes_all_its_passages(db):
    col = db.create_collection("del", model="local", dims=64, passages=by_paragraph)
    col.add(keys=["a", "b"], contents=["\n\n".join(paragraphs(5)), "\n\n".join(paragraphs(3, 5))])
    assert (col.count(), passage_rows(db, "col_del")) == (2, 8)
    assert col.delete(["a", "missing"]) == 1
    assert (col.count(), passage_rows(db, "col_del")) == (1, 3) and col.get(["a", "b"])[0].key == "b"
    assert col.delete("b") == 1 and col.count() == 0


BIG = "\n\n".join(f"cats purr and cats nap, cat note {i}" for i in range(50))


@pytest.fixture
def crowded(db):
    """One document whose 50 passages match 'cats' best, and 14 others (tenants a/b, a kind each)."""
    col = db.create_collection("crowd", model="local", dims=64, passages=by_paragraph)
    others = [f"A long note {i} about dogs, birds and gardens.\n\nIt mentions a cat only once." for i in range(14)]
    col.add(
        keys=["big", *[f"d{i}" for i in range(14)]],
        contents=[BIG, *others],
        metadata=[{"kind": "big"}, *[{"kind": "even" if i % 2 == 0 else "odd"} for i in range(14)]],
        tenant=["a", *["a" if i < 10 else "b" for i in range(14)]],
    )
    return col


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_k_distinct_documents_even_when_one_document_has_50_passages_matching_best(crowded, mode):
    result = crowded.search("cats purr and cats nap", k=10, mode=mode)
    assert len(result) == 10 and result.complete
    assert len(set(result.keys)) == 10 and result.keys[0] == "big"
    # the candidates widened past the first 40 passages (all of them the big document's)
    assert len(result[0].passages) == 50 and [p.score for p in result[0].passages] == sorted(
        (p.score for p in result[0].passages), reverse=True
    )
    best = result[0].passages[0]
    assert BIG[best.start : best.end] == best.text == result[0].content and result[0].score == best.score
    assert result[0].metadata == {"kind": "big"}
    if mode == "vector":
        assert result[0].snippet is None
    else:
        assert "<b>" in (result[0].snippet or "")


def test_filtered_and_tenant_searches_return_distinct_documents_too(crowded):
    even = crowded.search("cats", k=5, where={"kind": "even"})
    assert len(set(even.keys)) == 5 and all(h.metadata == {"kind": "even"} for h in even)
    b = crowded.search("cats", k=10, tenant="b")
    assert sorted(b.keys) == ["d10", "d11", "d12", "d13"] and not b.complete  # only 4 documents are b's
    assert crowded.search("cats", k=20, mode="text").keys[0] == "big"
    paged = crowded.search("cats purr", k=5, offset=5)
    assert paged.keys == crowded.search("cats purr", k=10).keys[5:]


def test_passage_level_results_on_request(crowded):
    result = crowded.search("cats purr", k=10, passages=True)
    assert len(result) == 10 and set(result.keys) == {"big"}
    assert all(h.passage is not None and BIG[h.passage.start : h.passage.end] == h.content for h in result)
    assert all(h.metadata == {"kind": "big"} for h in result)
    with pytest.raises(InvalidInputError, match="collection with passages"):
        crowded.db.create_collection("plain", model="local", dims=64).search("x", passages=True)


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_search_many_returns_each_querys_distinct_documents_as_search_does(crowded, mode):
    queries = ["cats purr and cats nap", "dogs, birds and gardens", "cat note 7"]
    many = crowded.search_many(queries, k=10, mode=mode)
    for q, got in zip(queries, many, strict=True):
        want = crowded.search(q, k=10, mode=mode)
        assert [(h.key, h.score, h.passages, h.snippet, h.metadata) for h in got] == [
            (h.key, h.score, h.passages, h.snippet, h.metadata) for h in want
        ]
        assert len(got) == 10 and len(set(got.keys)) == 10 and not any("#" in key for key in got.keys)
    assert many[0].keys[0] == "big" and len(many[0][0].passages) == 50  # widened past 40 passages for query 0 only
    assert (mode == "vector") == all(h.snippet is None for r in many for h in r)
    paged = crowded.search_many(queries[:2], k=5, offset=5, mode=mode, where={"kind": {"$in": ["big", "even"]}})
    for q, got in zip(queries[:2], paged, strict=True):
        assert got.keys == crowded.search(q, k=5, offset=5, mode=mode, where={"kind": {"$in": ["big", "even"]}}).keys


def test_search_many_passages_vectors_and_tenants(crowded):
    [hits] = crowded.search_many(["cats purr"], k=10, passages=True)
    assert hits.keys == ["big"] * 10 and all(h.passage is not None for h in hits)
    assert [h.passage for h in hits] == [h.passage for h in crowded.search("cats purr", k=10, passages=True)]
    q = crowded.embedder.embed(["cats purr and cats nap", "gardens"])
    by_vector = crowded.search_many(vectors=np.asarray(q), k=10)
    assert [r.keys for r in by_vector] == [crowded.search(vector=v, k=10).keys for v in q]
    b = crowded.search_many(["cats", "dogs"], k=10, tenant="b")
    assert [sorted(r.keys) for r in b] == [["d10", "d11", "d12", "d13"]] * 2 and not b[0].complete
    plain = crowded.db.create_collection("plain_many", model="local", dims=64)
    with pytest.raises(InvalidInputError, match="collection with passages"):
        plain.search_many(["x"], passages=True)
    with pytest.raises(InvalidInputError, match="collection with passages"):
        plain.more_like("x", passages=True)


def test_more_like_a_document_is_the_documents_nearest_its_mean_passage_vector(db, crowded):
    result = crowded.more_like("big", k=10)
    assert len(result) == 10 and len(set(result.keys)) == 10 and "big" not in result.keys
    assert not any("#" in key for key in result.keys) and all(h.passages and h.metadata for h in result)
    with db.connection() as conn:
        mean = conn.execute(
            "SELECT avg(embedding::vector) FROM semsearch.col_crowd WHERE metadata @> %s::jsonb",
            ['{"semsearch:passage": {"doc": "big"}}'],
        ).fetchone()[0]
    by_mean = crowded.search(vector=mean.to_numpy(), k=11)  # the same search, the document itself in it
    assert [(h.key, pytest.approx(h.score)) for h in by_mean if h.key != "big"] == [(h.key, h.score) for h in result]
    # its 50 passages are the nearest ones: passages=True leaves them all out too
    near = crowded.more_like("big", k=5, passages=True)
    assert len(near) == 5 and "big" not in near.keys and all(h.passage is not None for h in near)
    assert crowded.more_like("d0", k=3, offset=3).keys == crowded.more_like("d0", k=6).keys[3:]
    odd = crowded.more_like("d0", k=3, where={"kind": "odd"})
    assert len(odd) == 3 and all(h.metadata == {"kind": "odd"} for h in odd)
    assert sorted(crowded.more_like("d10", k=10, tenant="b").keys) == ["d11", "d12", "d13"]
    for key, tenant in (("nope", None), ("big#0", None), ("d0", "b")):
        with pytest.raises(InvalidInputError, match="expected a key stored"):
            crowded.more_like(key, tenant=tenant)
    crowded.add(keys=["later"], contents=["A note added later.\n\nIt waits for its vectors."], defer=True)
    with pytest.raises(InvalidInputError, match="waiting for an embedding"):
        crowded.more_like("later")


def test_the_sql_function_returns_k_distinct_documents_in_every_mode(db, crowded):
    q = crowded.embedder.embed(["cats purr and cats nap"])[0]
    with db.connection() as conn:
        for args, params, mode in (
            ("query => %s", [q], "vector"),
            ("query_text => %s", ["cats purr and cats nap"], "text"),
            ("query => %s, query_text => %s", [q, "cats purr and cats nap"], "hybrid"),
        ):
            stmt = sql.SQL(
                "SELECT key, score, metadata, passages FROM semsearch.search_documents('crowd', {}, k => 10)"
            )
            rows = conn.execute(stmt.format(sql.SQL(args)), params).fetchall()
            assert len({r[0] for r in rows}) == 10 and rows[0][0] == "big"
            assert len(rows[0][3]) == 50 and rows[0][2] == {"kind": "big"}
            py = crowded.search("cats purr and cats nap", k=10, mode=mode)  # Python follows the same rules
            assert [(r[0], pytest.approx(r[1])) for r in rows] == [(h.key, h.score) for h in py]
        tenant_b = conn.execute(
            "SELECT key FROM semsearch.search_documents('crowd', query_text => 'cat', k => 10, tenant => 'b')"
        ).fetchall()
        assert sorted(r[0] for r in tenant_b) == ["d10", "d11", "d12", "d13"]
        filtered = conn.execute(
            "SELECT key FROM semsearch.search_documents('crowd', %s, 3, filter => '{\"kind\": \"odd\"}')", [q]
        ).fetchall()
        assert len(filtered) == 3 and all(int(r[0][1:]) % 2 == 1 for r in filtered)


def test_a_text_longer_than_the_model_embeds_is_refused_before_anything_is_written(db, server):
    emb = OpenAIEmbedder(model=SMALL, dims=256, base_url=server.base_url, api_key="x", max_retries=0)
    col = db.create_collection("whole", embedder=emb)
    long = "pump valve filter " * 4000  # 12,000 tokens
    with pytest.raises(InvalidInputError, match=r"at most 8191 tokens.*row 'long'.*passages=True"):
        col.add(keys=["short", "long"], contents=["a short text", long])
    assert col.count() == 0 and server.requests == []
    with pytest.raises(InvalidInputError, match="passages="):
        col.add_many([{"key": "long", "content": long}])
    split = db.create_collection("split", embedder=emb, passages=True)
    added = split.add(keys=["long"], contents=[long])
    assert added.documents == 1 and added.inserted >= 24  # 12,000 tokens in passages of at most 512
    assert split.get("long")[0].content == long


def test_a_langchain_style_splitter_and_span_splitters_are_taken_as_they_are(db):
    class TextSplitter:  # duck-typed: LangChain's TextSplitter.split_text
        def split_text(self, text: str) -> list[str]:
            return [p.strip() for p in text.split("\n\n")]

    text = "\n\n".join(paragraphs(4))
    col = db.create_collection("lc", model="local", dims=64, passages=TextSplitter())
    assert col.add(keys=["x"], contents=[text]).inserted == 4
    spans = db.create_collection("spans", model="local", dims=64, passages=lambda t: [(0, 20), (15, len(t))])
    spans.add(keys=["x"], contents=[text])
    assert [h.passage.start for h in spans.search("pumps", k=2, passages=True) if h.passage] in ([0, 15], [15, 0])
    assert spans.get("x")[0].content == text
    # a custom splitter is not stored: a handle opened without it searches, but cannot add documents
    again = db.collection("lc")
    assert again.search("pumps", k=1).keys == ["x"]
    with pytest.raises(ConfigurationError, match="expected passages=<the splitter>"):
        again.add(keys=["y"], contents=["more"])
    assert db.collection("lc", passages=TextSplitter()).add(keys=["y"], contents=["more"]).inserted == 1
    stored = db.collection("spans").info.passages or {}
    assert stored["splitter"] == "custom" and stored["name"].startswith("tests.test_passages.test_a_langchain")


def test_a_default_splitter_is_stored_and_reopened(db):
    db.create_collection("stored", model="local", dims=64, passages=Splitter(max_tokens=30, overlap=5))
    col = db.collection("stored")
    assert col.info.passages == {"splitter": "default", "max_tokens": 30, "overlap": 5}
    assert col.add(keys=["d"], contents=["\n\n".join(paragraphs(6))]).inserted >= 6
    with pytest.raises(InvalidInputError, match="no embeddings="):
        col.add(keys=["e"], contents=["x"], embeddings=np.ones((1, 64)))
    with pytest.raises(InvalidInputError, match="reserved key"):
        col.add(keys=["e"], contents=["x"], metadata=[{"semsearch:passage": 1}])


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_documents_are_what_sync_makes(db_url, crowded, anyio_backend):
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.create_collection("acrowd", model="local", dims=64, passages=by_paragraph)
        sync_rows = [
            (r.key, r.content, r.metadata, r.tenant) for r in crowded.get(["big", *[f"d{i}" for i in range(14)]])
        ]
        added = await acol.add(
            keys=[r[0] for r in sync_rows], contents=[r[1] for r in sync_rows],
            metadata=[r[2] for r in sync_rows], tenant=[r[3] for r in sync_rows],
        )  # fmt: skip
        assert (added.documents, added.inserted) == (15, 50 + 14 * 2)
        for mode in ("vector", "text", "hybrid"):
            got = await acol.search("cats purr and cats nap", k=10, mode=mode)
            want = crowded.search("cats purr and cats nap", k=10, mode=mode)
            assert [(h.key, h.score, h.passages, h.snippet) for h in got] == [
                (h.key, h.score, h.passages, h.snippet) for h in want
            ]
        assert (await acol.search("cats", k=3, passages=True)).keys == ["big"] * 3
        for mode in ("vector", "hybrid"):
            got_many = await acol.search_many(["cats purr and cats nap", "gardens"], k=10, mode=mode)
            want_many = crowded.search_many(["cats purr and cats nap", "gardens"], k=10, mode=mode)
            assert [[(h.key, h.score, h.passages, h.snippet) for h in r] for r in got_many] == [
                [(h.key, h.score, h.passages, h.snippet) for h in r] for r in want_many
            ]
        assert (await acol.more_like("big", k=5)).keys == crowded.more_like("big", k=5).keys
        assert [r.content for r in await acol.get(["big"])] == [BIG]
        edited = await acol.add(keys=["big"], contents=[BIG.replace("cat note 7", "dog note 7")])
        assert (edited.passages_embedded, edited.passages_kept) == (1, 49)
        assert await acol.delete(["big"]) == 1 and await acol.count() == 14
        assert await acol.count(tenant="b") == 4


def test_the_readme_example_runs_and_prints_what_it_says(db_url, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    code = compile(readme_python("### Documents and passages"), "README.md", "exec", dont_inherit=True)
    for _ in range(2):  # and again, on what its first run made
        exec(code, {})
        out = capsys.readouterr().out.splitlines()
        assert out[:2] == ["2 5", "pump 1 True"]
        assert "<b>receipt</b>" in out[2]
        assert out[3:] == ["[('pump', 1), ('pump', 0)]", "1 2", "True 2"]


def test_add_many_alter_and_migrate_model_keep_a_collection_of_documents(db):
    col = db.create_collection("kept", model="local", dims=64, passages=by_paragraph)
    records = [{"key": f"r{i}", "content": "\n\n".join(paragraphs(3, i)), "metadata": {"i": i}} for i in range(30)]
    loaded = col.add_many(records, batch_size=7)
    assert (loaded.documents, loaded.inserted, col.count()) == (30, 90, 30)
    assert len(set(col.search("pumps and valves", k=10).keys)) == 10
    db.alter_collection("kept", oversample=3)
    assert db.collection("kept").info.passages == col.info.passages
    semsearch.migrate_model(db, "kept", model="local", dims=128, sample=5, k=5)
    moved = db.collection("kept", passages=by_paragraph)
    assert (moved.info.dims, moved.info.passages, moved.count()) == (128, col.info.passages, 30)
    result = moved.search("pumps and valves", k=10)
    assert len(set(result.keys)) == 10 and all(h.passages for h in result)
    assert moved.get("r4")[0].content == records[4]["content"]
