"""A synced table whose rows are documents: triggers queue them, backfill splits and embeds them (issue 20 item 4)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
import semsearch.aio
from semsearch import Splitter, migrate
from semsearch.embeddings.local import LocalEmbedder
from semsearch.errors import ConfigurationError, EmbeddingError
from semsearch.passages import placement

ARTICLES = "CREATE TABLE public.articles (id integer PRIMARY KEY, title text, body text, shop text, year int)"


def paragraphs(n: int, offset: int = 0) -> str:
    topics = ["pumps and valves", "filters and water", "warranty and receipts", "engines and oil", "cats and naps"]
    return "\n\n".join(
        f"Section {i}. This part is about {topics[i % len(topics)]}. It has a second sentence about item {i}."
        for i in range(offset, offset + n)
    )


def by_paragraph(text: str) -> list[str]:
    """One passage per paragraph (a custom splitter)."""
    return [p for p in text.split("\n\n") if p.strip()]


class Counting(LocalEmbedder):
    """The local model, counting the texts it embeds; ``before`` runs ahead of a call, ``fail`` raises instead."""

    def __init__(self) -> None:
        super().__init__(dims=64)
        self.texts: list[str] = []
        self.before: Callable[[], None] | None = None
        self.fail: EmbeddingError | None = None
        #: texts containing this are refused (HTTP 400), one at a time as a provider refuses them
        self.refuse: str | None = None

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if self.before is not None:
            before, self.before = self.before, None
            before()
        if self.fail is not None:
            raise self.fail
        if self.refuse is not None and any(self.refuse in t for t in texts):
            raise EmbeddingError("expected a shorter text, got too long", status=400)
        self.texts += texts
        return super().embed_batch(texts)


def _articles(db, rows) -> None:
    with db.connection() as conn:
        conn.execute(ARTICLES)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO articles (id, title, body, shop, year) VALUES (%s, %s, %s, %s, %s)", rows)


def _write(db, stmt: str, params=None) -> None:
    with db.connection() as conn:
        conn.execute(stmt, params)


def _passages(db, col) -> dict[str, tuple]:
    """passage key -> (content, place, tenant, embedded?)."""
    with db.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT key, content, metadata, tenant, embedding IS NOT NULL FROM {}").format(col.layout.table)
        ).fetchall()
    return {r[0]: (r[1], r[2].get(placement.PASSAGE), r[3], r[4]) for r in rows}


def _queue(db) -> dict[str, str]:
    """document key -> op of the queued entries."""
    with db.connection() as conn:
        return dict(conn.execute("SELECT key, op FROM semsearch.pending_documents").fetchall())


def test_a_long_row_becomes_passages_with_offsets_after_backfill_and_is_searched_as_a_document(db):
    _articles(db, [(1, "Pump manual", paragraphs(12), "a", 2020), (2, "Cat care", paragraphs(3, offset=4), "b", 2021)])
    col = db.sync_table("articles", collection="articles", key="id", text=["title", "body"], metadata=["year"],
                        tenant="shop", model="local", dims=64, passages=Splitter(max_tokens=40, overlap=8))  # fmt: skip
    assert _queue(db) == {"1": "insert", "2": "insert"} and _passages(db, col) == {}
    done = col.backfill()
    assert (done.documents, done.pending) == (2, 0) and done.embedded > 5 and _queue(db) == {}
    stored = _passages(db, col)
    text = "title: Pump manual\nbody: " + paragraphs(12)
    ones = sorted((v for k, v in stored.items() if k.startswith("1#")), key=lambda v: v[1]["seq"])
    assert len(ones) > 3 and all(embedded and tenant == "a" for _, _, tenant, embedded in ones)
    assert [k for k in stored if k.startswith("1#")] and all(text[p["start"] : p["end"]] == c for c, p, _, _ in ones)
    assert ones[0][1]["start"] == 0 and ones[-1][1]["end"] == len(text)
    assert db.synced_tables()[0].text == ("title", "body")
    # a document comes back whole, and a search returns documents with their passages
    assert col.get(["1"])[0].content == text and col.get(["1"])[0].metadata == {"year": 2020}
    hits = col.search("cats and naps", k=2, tenant="b")
    assert [h.key for h in hits] == ["2"] and hits[0].passages[0].end > hits[0].passages[0].start
    # a row that changes tenant moves with all its passages, its vectors kept
    _write(db, "UPDATE articles SET shop = 'a' WHERE id = 2")
    assert col.backfill().embedded == 0
    assert col.search("cats and naps", k=2, tenant="b").hits == ()
    assert {v[2] for k, v in _passages(db, col).items() if k.startswith("2#")} == {"a"}


def test_editing_one_paragraph_embeds_only_its_passages_and_a_delete_removes_passages_at_once(db):
    emb = Counting()
    _articles(db, [(1, "Guide", paragraphs(20), "a", 2020)])
    col = db.sync_table("articles", collection="guide", key="id", text="body", metadata=["year"],
                        embedder=emb, passages=by_paragraph)  # fmt: skip
    assert col.backfill().embedded == 20 and len(emb.texts) == 20
    emb.texts.clear()
    edited = paragraphs(20).replace("item 7.", "item seven, edited.")
    _write(db, "UPDATE articles SET body = %s WHERE id = 1", [edited])
    assert _queue(db) == {"1": "update"}
    done = col.backfill()
    assert (done.documents, done.embedded, len(emb.texts)) == (1, 1, 1) and "item seven, edited." in emb.texts[0]
    assert col.get(["1"])[0].content == edited and all(v[3] for v in _passages(db, col).values())
    # an update of a column the sync does not read queues nothing; a metadata change re-embeds nothing
    _write(db, "UPDATE articles SET title = 'renamed' WHERE id = 1")
    assert _queue(db) == {}
    emb.texts.clear()
    _write(db, "UPDATE articles SET year = 2025, body = %s WHERE id = 1", [edited + "\n\n" + "A new last part."])
    assert col.backfill().documents == 1 and emb.texts == ["A new last part."]
    assert {v[1]["seq"] for v in _passages(db, col).values()} == set(range(21))
    assert col.get(["1"])[0].metadata == {"year": 2025}
    # a delete removes the document's passages in its own statement, and its queued entry
    _write(db, "INSERT INTO articles (id, body, year) VALUES (2, %s, 1999)", [paragraphs(3)])
    _write(db, "UPDATE articles SET body = 'changed' WHERE id = 1")
    assert set(_queue(db)) == {"1", "2"}
    _write(db, "DELETE FROM articles WHERE id = 1")
    assert _queue(db) == {"2": "insert"} and _passages(db, col) == {}
    # a key that moves, or a text set to NULL, removes the old document at once too
    col.backfill()
    assert len(_passages(db, col)) == 3
    _write(db, "UPDATE articles SET id = 3 WHERE id = 2")
    assert _queue(db) == {"3": "update"} and _passages(db, col) == {}
    _write(db, "UPDATE articles SET body = NULL WHERE id = 3")
    assert _queue(db) == {}
    _write(db, "UPDATE articles SET body = %s WHERE id = 3", [paragraphs(2)])
    col.backfill()
    assert sorted(_passages(db, col)) == ["3#0", "3#1"]
    _write(db, "TRUNCATE articles")
    assert _passages(db, col) == {} and _queue(db) == {}


def test_an_edit_while_its_document_is_embedded_stays_queued_and_wins(db):
    emb = Counting()
    _articles(db, [(1, "Guide", paragraphs(4), "a", 2020), (2, "Other", paragraphs(2, offset=9), "a", 2020)])
    col = db.sync_table("articles", collection="guide", key="id", text="body", embedder=emb, passages=by_paragraph)
    newer = paragraphs(4).replace("item 2.", "item two, written during the embedding.")

    def edit() -> None:  # another session edits row 1 while the drain embeds its old text
        with psycopg.connect(db.url, autocommit=True) as other:
            other.execute("UPDATE articles SET body = %s WHERE id = 1", [newer])

    emb.before = edit
    done = col.backfill()
    # row 2 was written; row 1's old text was not (its entry has a newer version), it stays queued
    assert done.documents == 1 and _queue(db) == {"1": "update"}
    assert sorted(_passages(db, col)) == ["2#0", "2#1"]
    assert col.backfill().documents == 1 and _queue(db) == {}
    assert col.get(["1"])[0].content == newer


def test_a_failed_embedding_writes_nothing_of_its_batch_and_leaves_its_documents_queued(db):
    emb = Counting()
    _articles(db, [(i, "t", paragraphs(3, offset=i), "a", 2020) for i in range(1, 4)])
    col = db.sync_table("articles", collection="guide", key="id", text="body", embedder=emb, passages=by_paragraph)
    col.backfill()
    before = _passages(db, col)
    _write(db, "UPDATE articles SET body = body || %s", ["\n\nA last part, new in every row."])
    _write(db, "INSERT INTO articles (id, body) VALUES (4, %s)", [paragraphs(2, offset=30)])
    outage = EmbeddingError("expected the provider up, got 503", status=503)
    emb.fail = outage
    with pytest.raises(EmbeddingError, match="got 503"):
        col.backfill(batch_size=2)
    # the old passages are all still there, nothing of the new texts, every entry queued
    assert _passages(db, col) == before and set(_queue(db)) == {"1", "2", "3", "4"}
    # the provider goes down after the first batch: that batch is written whole, the second not at all
    emb.fail = None
    emb.before = lambda: setattr(emb, "before", lambda: setattr(emb, "fail", outage))  # the 2nd call fails
    with pytest.raises(EmbeddingError, match="got 503"):
        col.backfill(batch_size=2)
    after = _passages(db, col)
    assert set(_queue(db)) == {"3", "4"} and sorted(k for k in after if k[0] in "12") == [
        f"{d}#{s}" for d in (1, 2) for s in range(4)
    ]
    assert {k: v for k, v in after.items() if k[0] == "3"} == {k: v for k, v in before.items() if k[0] == "3"}
    assert not any(k[0] == "4" for k in after)
    emb.fail = None
    done = col.backfill(batch_size=2)
    assert done.documents == 2 and _queue(db) == {} and len(_passages(db, col)) == 3 * 4 + 2
    # a refused text is no outage: the documents are written, the refused passage waits in quarantine
    _write(db, "UPDATE articles SET body = body || %s WHERE id = 4", ["\n\nA refused part."])
    emb.refuse = "refused"
    done = col.backfill()
    assert done.documents == 1 and done.quarantined == 1 and _queue(db) == {}
    assert [k for k, _ in col.quarantined()] == ["4#2"]


def test_sync_table_with_passages_checks_its_arguments_before_anything_is_written(db):
    _articles(db, [(1, "t", "body", "a", 2020)])
    _write(db, 'ALTER TABLE articles ADD COLUMN "semsearch:passage" int')
    db.create_collection("rows", model="local", dims=64)
    db.create_collection("docs", model="local", dims=64, passages=True)
    bad = [
        ({"collection": "rows", "passages": True}, "expected passages=None for existing collection 'rows'"),
        ({"collection": "docs", "passages": False}, "expected passages=None or True for existing collection 'docs'"),
        ({"collection": "new", "passages": 3}, "expected passages=True, a Splitter"),
        ({"collection": "new", "passages": True, "metadata": ["semsearch:passage"]}, "named 'semsearch:passage'"),
    ]
    for args, message in bad:
        with pytest.raises(ConfigurationError, match=message):
            db.sync_table("articles", key="id", text="body", **({"model": "local", "dims": 64} | args))
    assert db.synced_tables() == [] and _queue(db) == {}
    # an existing collection with passages syncs as documents without saying so again
    col = db.sync_table("articles", collection="docs", key="id", text="body")
    assert _queue(db) == {"1": "insert"} and col.backfill().documents == 1 and col.count() == 1


def test_a_custom_splitter_not_given_again_is_named_when_the_queue_is_drained(db):
    _articles(db, [(1, "t", paragraphs(3), "a", 2020)])
    db.sync_table("articles", collection="guide", key="id", text="body", model="local", dims=64, passages=by_paragraph)
    with pytest.raises(ConfigurationError, match="expected passages=<the splitter> when opening 'guide'"):
        db.collection("guide").backfill()
    assert _queue(db) == {"1": "insert"}
    assert db.collection("guide", passages=by_paragraph).backfill().documents == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_database_syncs_documents_as_the_sync_one_does(db, db_url):
    _articles(db, [(1, "Guide", paragraphs(5), "a", 2020)])
    async with await semsearch.aio.connect(db_url) as adb:
        col = await adb.sync_table("articles", collection="guide", key="id", text=["title", "body"],
                                   model="local", dims=64, passages=by_paragraph)  # fmt: skip
        done = await col.backfill()
        assert (done.documents, done.embedded) == (1, 5)
        assert (await col.get(["1"]))[0].content == "title: Guide\nbody: " + paragraphs(5)
        assert [h.key for h in await col.search("cats and naps", k=3)] == ["1"]


@pytest.fixture
def drainer(db):
    """A LOGIN role with no rights: granted --write on collection 'guide' by a test, or only a table's writes."""
    name = f"drainer_{os.getpid()}"
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_writer_of_one_collection_sees_and_drains_only_its_queue(db, drainer):
    _articles(db, [(1, "t", paragraphs(3), "a", 2020)])
    db.sync_table("articles", collection="guide", key="id", text="body", model="local", dims=64, passages=True)
    with db.connection() as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'a note about pumps')")
    db.sync_table("notes", collection="notes", key="id", text="body", model="local", dims=64, passages=True)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.pending_documents").fetchone()[0] == 2
    db.grant(drainer, "guide", write=True)
    with db.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(drainer)))
        seen = conn.execute("SELECT collection, key FROM semsearch.pending_documents").fetchall()
        assert seen == [("guide", "1")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO semsearch.pending_documents (collection, key, content, op) "
                         "VALUES ('guide', '9', 'x', 'insert')")  # fmt: skip
    # and drains it: backfill as that role splits, embeds and writes the queued document
    with semsearch.connect(make_conninfo(db.url, user=drainer)) as as_drainer:
        assert as_drainer.collection("guide").backfill().documents == 1
    with db.connection() as conn:
        assert conn.execute("SELECT collection FROM semsearch.pending_documents").fetchall() == [("notes",)]


def test_the_queue_migration_down_drops_the_document_syncs_and_up_again(db_url):
    with semsearch.connect(db_url) as db:
        _articles(db, [(1, "t", paragraphs(3), "a", 2020)])
        db.sync_table("articles", collection="docs", key="id", text="body", model="local", dims=64, passages=True)
        with db.connection() as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        db.sync_table("notes", collection="notes", key="id", text="body", model="local", dims=64)
    migrate.downgrade(db_url, "0010")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('semsearch.pending_documents')").fetchone()[0] is None
        # the document sync is gone with its triggers (the source's writes work); the whole-row one stays
        assert conn.execute("SELECT collection FROM semsearch.synced_tables").fetchall() == [("notes",)]
        conn.execute("INSERT INTO articles (id, body) VALUES (2, 'written while not synced')")
        conn.execute("INSERT INTO notes VALUES (1, 'still synced')")
    migrate.upgrade(db_url)
    with semsearch.connect(db_url) as db:
        col = db.sync_table("articles", collection="docs", key="id", text="body")
        assert col.backfill().documents == 2 and col.count() == 2
        assert db.collection("notes").pending() == 1


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_watcher_is_woken_by_a_queued_document_and_writes_its_passages(db):
    _articles(db, [])
    col = db.sync_table("articles", collection="guide", key="id", text="body", model="local", dims=64,
                        passages=by_paragraph)  # fmt: skip
    stop, out = threading.Event(), []
    thread = threading.Thread(target=lambda: out.append(col.backfill(watch=True, stop=stop, poll=3600)), daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # listening (a row written before that is found by its first drain anyway)
        _write(db, "INSERT INTO articles (id, body) VALUES (1, %s)", [paragraphs(3)])
        _eventually(lambda: len(_passages(db, col)) == 3 and all(v[3] for v in _passages(db, col).values()))
        assert _queue(db) == {}
    finally:
        stop.set()
        thread.join(timeout=30)
    assert out[0].documents == 1 and out[0].embedded == 3


def test_a_writer_without_rights_on_semsearch_queues_documents_through_the_triggers(db, drainer):
    """The sync's functions are SECURITY DEFINER: the table's writer needs no right on the queue or the collection."""
    _articles(db, [(1, "t", paragraphs(3), "a", 2020)])
    col = db.sync_table("articles", collection="guide", key="id", text="body", model="local", dims=64,
                        passages=by_paragraph)  # fmt: skip
    col.backfill()
    with db.connection() as conn:
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON articles TO {}").format(sql.Identifier(drainer)))
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(drainer)))
            conn.execute("INSERT INTO articles (id, body) VALUES (2, %s)", [paragraphs(2)])
            conn.execute("DELETE FROM articles WHERE id = 1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT * FROM semsearch.pending_documents")
    assert _queue(db) == {"2": "insert"} and _passages(db, col) == {}
    assert col.backfill().documents == 1 and sorted(_passages(db, col)) == ["2#0", "2#1"]
