"""A warm search sends its statement alone; the settings it leaves in the session never reach other uses.

``hnsw.ef_search`` and the search's time limit are made the session's on an idle pooled connection
and remembered (:mod:`semsearch.session_settings`): the next search on it sends only what changed.
Any other use of that connection first gets ``RESET statement_timeout``; a failed round trip, or a
search inside a transaction, leaves nothing remembered that a rollback took back.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

import semsearch
import semsearch.aio
from semsearch import searching, session_settings
from semsearch.errors import SearchTimeoutError
from semsearch.search_request import Request
from tests.test_aio import round_trips, sent, traced

#: 511 conditions compared on every row of an exact scan (as tests/test_limits.py): far past 50 ms on 5,000 rows
SLOW = {"$or": [{"n": i, "tag": f"t{i}"} for i in range(-255, 0)]}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def vectors():
    return np.random.default_rng(3).normal(size=(5000, 8))


@pytest.fixture
def loaded(db, vectors):
    col = db.create_collection("warm", dims=8, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"r{i}", "embedding": v, "metadata": {"n": i}} for i, v in enumerate(vectors))
    return col


def _executed(path) -> list[str]:
    return [x for x in sent(path) if "\tExecute" in x]


def _raw(db):
    """The pool's one connection, without the checkout's reset (what the next search gets)."""
    return db.pool.connection()


def _show(conn, name: str) -> str:
    return conn.execute(psycopg.sql.SQL("SHOW {}").format(psycopg.sql.Identifier(name))).fetchone()[0]


def test_a_warm_search_sends_only_its_statement_and_a_changed_setting(db_url, loaded, vectors, tmp_path):
    with semsearch.connect(db_url, max_connections=1, search_timeout=5) as db:
        col = db.collection("warm")
        col.search(vector=vectors[0], k=5)  # the first: settings, catalog check, statement
        with _raw(db) as conn:
            pgconn = conn.pgconn
            assert (_show(conn, "hnsw.ef_search"), _show(conn, "statement_timeout")) == ("40", "5s")
        with traced(pgconn, tmp_path / "warm") as path:
            hits = col.search(vector=vectors[1], k=5)
        # before: a set_config statement pipelined ahead of every search (two Executes)
        assert len(_executed(path)) == 1 and round_trips(path) == 1 and hits.keys[0] == "1"
        assert not any("set_config" in line for line in sent(path))

        with traced(pgconn, tmp_path / "changed") as path:
            assert col.search(vector=vectors[2], k=5, ef_search=77).keys[0] == "2"
        settings = [x for x in sent(path) if "set_config" in x]
        assert len(_executed(path)) == 2 and len(settings) == 1 and "77" in path.read_text()
        with _raw(db) as conn:
            assert (_show(conn, "hnsw.ef_search"), _show(conn, "statement_timeout")) == ("77", "5s")

        db.search_timeout = 2.5  # a changed time limit is sent once
        col.search(vector=vectors[3], k=5, ef_search=77)
        with _raw(db) as conn:
            assert _show(conn, "statement_timeout") == "2500ms"


def test_other_uses_of_the_connection_never_run_under_a_searchs_time_limit(db_url, loaded, vectors, tmp_path):
    with semsearch.connect(db_url, max_connections=1, search_timeout=5) as db:
        col = db.collection("warm")
        col.search(vector=vectors[0], k=5)
        with db.connection() as conn:  # a write, a user's query: the session's own limit (none here)
            assert _show(conn, "statement_timeout") == "0"
            pgconn = conn.pgconn
        # that use may have changed anything: the next search sends its settings again
        with traced(pgconn, tmp_path / "after") as path:
            col.search(vector=vectors[1], k=5)
        assert len(_executed(path)) == 2
        with _raw(db) as conn:
            assert _show(conn, "statement_timeout") == "5s"  # the search above set it again...
        assert db.collection("warm").count() == 5000
        with _raw(db) as conn:
            assert _show(conn, "statement_timeout") == "0"  # ...and the library's own count reset it


def test_after_a_search_times_out_the_next_sends_its_settings_and_others_get_no_limit(db_url, loaded, vectors):
    with semsearch.connect(db_url, search_timeout=0.05, max_connections=1) as db:
        col = db.collection("warm")
        col.search(vector=vectors[0], k=5)  # the session carries the 50 ms limit now
        with pytest.raises(SearchTimeoutError):
            col.search(vector=vectors[0], k=5, exact=True, where=SLOW)
        with db.connection() as conn:
            assert _show(conn, "statement_timeout") == "0"
        assert col.search(vector=vectors[3], k=1).keys == ["3"]
        with pytest.raises(SearchTimeoutError):  # the limit is still there for the next search
            col.search(vector=vectors[0], k=5, exact=True, where=SLOW)


def test_a_search_in_a_transaction_leaves_nothing_a_rollback_would_take_back(db_url, loaded, vectors):
    with semsearch.connect(db_url, max_connections=1, search_timeout=5) as db:
        col = db.collection("warm")
        request = Request(mode="vector", k=5, vector=vectors[4].astype(np.float32))
        p = searching.plan(col.layout, col.name, col.info.oversample, None, request, timeout=5)
        with _raw(db) as conn:
            with conn.transaction():  # a Flask request's borrowed connection, in the user's transaction
                rows, _ = searching.execute(conn, p)
                assert rows[0][0] == "4" and _show(conn, "statement_timeout") == "5s"
                raise psycopg.Rollback
            assert _show(conn, "statement_timeout") == "0" and session_settings.carried(conn) == {}
        assert col.search(vector=vectors[4], k=1).keys == ["4"]
        with _raw(db) as conn:
            assert _show(conn, "statement_timeout") == "5s"


@pytest.mark.anyio
async def test_a_warm_async_search_sends_only_its_statement_too(db_url, loaded, vectors, tmp_path):
    async with await semsearch.aio.connect(db_url, max_connections=1, search_timeout=5) as adb:
        col = await adb.collection("warm")
        await col.search(vector=vectors[0], k=5)
        async with adb.pool.connection() as conn:
            pgconn = conn.pgconn
        with traced(pgconn, tmp_path / "warm") as path:
            assert (await col.search(vector=vectors[1], k=5)).keys[0] == "1"
        assert len(_executed(path)) == 1 and round_trips(path) == 1
        async with adb.connection() as conn:
            assert (await (await conn.execute("SHOW statement_timeout")).fetchone())[0] == "0"
