"""kill -9 at the worst moment, then the documented resume: run the same call again.

Each long operation runs in a subprocess that the test kills with SIGKILL once the
database shows it at the interesting point (rows committed, an index build under way,
a backfill half done). Then the same call runs again here and must finish the job: every
row, one valid HNSW index on the plan's expression that searches use, the catalog in
line. (The kill -9 of a plain backfill is in tests/test_backfill.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
import semsearch.aio
from semsearch import model_switch
from semsearch.demo import stdlib_corpus
from semsearch.embeddings import embedder_for
from semsearch.errors import DatabaseError, UnindexedWarning
from tests.plans import search_plan

ROOT = Path(__file__).resolve().parents[1]


def _spawn(script: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], moment: Callable[[], Any], *, timeout: float = 60) -> Any:
    """SIGKILL ``proc`` as soon as ``moment()`` returns something true (polled); return that."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = moment()
            if found:
                break
            if proc.poll() is not None:
                pytest.fail(f"the subprocess ended (rc {proc.returncode}) before the moment: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"the moment did not come within {timeout} s")
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return found


def _one(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _hnsw_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, bool, str]]:
    """(name, valid, definition) of every HNSW index of a table, valid or not."""
    return conn.execute(
        "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE a.amname = 'hnsw' AND i.indrelid = %s::regclass ORDER BY c.relname",
        [f"semsearch.{table}"],
    ).fetchall()


def _left_over(conn: psycopg.Connection, table: str) -> list[str]:
    """Relations named like a next index of ``table``: none may stay after a finished change."""
    return [r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [f"{table}_hnsw_next%"])]


def _building(conn: psycopg.Connection, table: str, command: str) -> int | None:
    """The pid of the backend building an index of ``table`` with ``command``, once it writes the graph."""
    return _one(
        conn,
        "SELECT pid FROM pg_stat_progress_create_index WHERE relid = %s::regclass AND command = %s "
        "AND phase LIKE 'building index%%'",
        [f"semsearch.{table}", command],
    )


# -- a bulk load into an empty collection -------------------------------------------------

N_BULK = 20_000


def bulk_records(n: int = N_BULK) -> list[dict[str, Any]]:
    vecs = np.random.default_rng(11).normal(size=(n, 32))
    return [{"key": i, "content": f"row {i} of the bulk load", "embedding": vecs[i]} for i in range(n)]


BULK_LOAD = """
    import sys, semsearch
    from tests.test_kill import bulk_records
    with semsearch.connect(sys.argv[1]) as db:
        db.collection("bulk").add_many(bulk_records())
"""


@pytest.mark.parametrize("moment", ["load", "index build"])
def test_bulk_load_killed_then_run_again_has_every_row_and_a_used_index(db, db_url, moment):
    # a small graph (m=8) builds 20k rows in under a second: the test is about the resume, not the graph
    col = db.create_collection(
        "bulk", dims=32, model="label", compression="bit", autotune=False, hnsw_m=8, hnsw_ef_construction=16
    )
    proc = _spawn(BULK_LOAD, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        if moment == "load":
            # a quarter of the batches committed, the index dropped for the load
            _kill_when(proc, lambda: _one(conn, "SELECT count(*) FROM semsearch.col_bulk") >= N_BULK // 4)
        else:
            _kill_when(proc, lambda: _building(conn, "col_bulk", "CREATE INDEX"))
        # the server session of the killed client may still be finishing its statement
        committed = _one(conn, "SELECT count(*) FROM semsearch.col_bulk")
        assert 0 < committed <= N_BULK and (moment == "load") == (committed < N_BULK), committed
        # what it leaves: the committed batches, no index (dropped for the load), so searches scan exactly
        assert _hnsw_indexes(conn, "col_bulk") == []
    records = bulk_records()
    with pytest.warns(UnindexedWarning, match="scanned every row"):
        assert col.search(vector=records[123]["embedding"], k=1).keys == ["123"]
    got = col.add_many(records)  # the documented resume: the same load again
    assert got.inserted + got.unchanged == N_BULK and got.updated == 0 and got.unchanged >= committed
    assert col.count() == N_BULK
    with db.connection() as conn:
        stored = conn.execute("SELECT key, content, embedding::vector FROM semsearch.col_bulk ORDER BY key::int")
        stored = stored.fetchall()
        assert [(int(k), c) for k, c, _ in stored] == [(r["key"], r["content"]) for r in records]
        given = np.array([r["embedding"] for r in records])
        given /= np.linalg.norm(given, axis=1, keepdims=True)
        np.testing.assert_allclose(np.array([v.to_numpy() for _, _, v in stored]), given, atol=1e-6)
        [(name, valid, definition)] = _hnsw_indexes(conn, "col_bulk")
        assert (name, valid) == ("col_bulk_hnsw", True) and "binary_quantize" in definition
        assert _left_over(conn, "col_bulk") == []
    q = records[123]["embedding"]
    assert "Index Scan using col_bulk_hnsw" in col.explain(vector=q, k=10).plan
    assert col.search(vector=q, k=1).keys == ["123"]


def _killed_during_the_bulk_build(db: Any, db_url: str) -> Any:
    """The audit's case: every row committed, the load's index build killed; wait for its session to end."""
    col = db.create_collection(
        "bulk", dims=32, model="label", compression="bit", autotune=False, hnsw_m=8, hnsw_ef_construction=16
    )
    proc = _spawn(BULK_LOAD, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        _kill_when(proc, lambda: _building(conn, "col_bulk", "CREATE INDEX"))
        deadline = time.monotonic() + 60
        # the killed client's server session finishes its CREATE INDEX, then rolls it back
        while col.doctor().busy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _one(conn, "SELECT count(*) FROM semsearch.col_bulk") == N_BULK
        assert _hnsw_indexes(conn, "col_bulk") == []
    return col


@pytest.mark.parametrize("repair", ["add", "doctor", "cli"])
def test_a_bulk_build_killed_is_found_by_searches_and_doctor_and_repaired(db, db_url, run, repair):
    col = _killed_during_the_bulk_build(db, db_url)
    q = bulk_records()[123]["embedding"]
    # searches say so (the handle of before the kill and a new one alike), and scan every row meanwhile
    for handle in (col, db.collection("bulk")):
        with pytest.warns(UnindexedWarning, match=r"'bulk' to have a valid hnsw index, got none.*doctor bulk --repair"):
            got = handle.search(vector=q, k=1)
        assert got.keys == ["123"] and got.unindexed
    assert "Seq Scan" in search_plan(col, q, k=10) and "col_bulk_hnsw" not in search_plan(col, q, k=10)
    found = col.doctor()
    assert (found.healthy, found.indexed, found.busy, found.leftovers) == (False, False, False, ())
    assert found.problems[0].startswith("missing: no col_bulk_hnsw")
    if repair == "add":
        # a later add() notices and builds the index (concurrently) before it writes
        assert col.add(keys=["new"], contents=["a new row"], embeddings=[-q]).inserted == 1
    elif repair == "doctor":
        assert col.doctor(repair=True).repaired == ("built col_bulk_hnsw",)
    else:
        assert "missing: no col_bulk_hnsw" in run("doctor", "bulk", ok=False).output
        assert "bulk: healthy - repaired: built col_bulk_hnsw" in run("doctor", "bulk", "--repair").output
        assert run("doctor").output == "bulk: healthy\n"
    assert col.doctor().healthy and col.doctor(repair=True).repaired == ()
    with db.connection() as conn:
        [(name, valid, definition)] = _hnsw_indexes(conn, "col_bulk")
        assert (name, valid) == ("col_bulk_hnsw", True) and "binary_quantize" in definition
    assert "Index Scan using col_bulk_hnsw" in search_plan(col, q, k=10)
    got = db.collection("bulk").search(vector=q, k=1)  # no warning: warnings are errors in the tests
    assert got.keys == ["123"] and not got.unindexed


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_api_finds_and_repairs_a_killed_bulk_build_too(db, db_url, anyio_backend):
    col = _killed_during_the_bulk_build(db, db_url)
    q = bulk_records()[123]["embedding"]
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.collection("bulk")
        with pytest.warns(UnindexedWarning):
            assert (await acol.search(vector=q, k=1)).unindexed
        assert not (await acol.doctor()).indexed
        assert (await acol.add(keys=["new"], contents=["a new row"], embeddings=[-q])).inserted == 1
        assert (await acol.doctor()).healthy
        assert not (await acol.search(vector=q, k=1)).unindexed
    assert "Index Scan using col_bulk_hnsw" in search_plan(col, q, k=10)


def test_a_writer_that_may_not_build_the_index_still_writes_and_says_so(db, db_url):
    col = db.create_collection("w", dims=8, model="label", compression="bit", autotune=False)
    col.add([str(i) for i in range(8)], [f"r{i}" for i in range(8)], embeddings=np.eye(8))
    with db.connection() as conn:
        conn.execute("DROP INDEX semsearch.col_w_hnsw")  # the state a killed bulk load leaves (above)
    role = f"semsearch_w_{os.getpid()}"
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    db.grant(role, "w", write=True)
    try:
        with semsearch.connect(make_conninfo(db_url, options=f"-c role={role}")) as as_writer:
            writer = as_writer.collection("w")
            # only the table's owner builds indexes: the write goes on, with a warning, not a driver error
            with pytest.warns(UnindexedWarning, match="missing: no col_w_hnsw.*expected to run as the owner of col_w"):
                assert writer.add(["new"], ["new"], embeddings=np.eye(8)[:1]).inserted == 1
            with pytest.raises(DatabaseError, match="expected to run as the owner of col_w to repair its index"):
                writer.doctor(repair=True)
            assert not writer.doctor().indexed
        assert col.doctor(repair=True).repaired == ("built col_w_hnsw",)
    finally:
        with db.connection() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# -- alter_collection: a concurrent index build ------------------------------------------

N_ALTER = 8_000

ALTER = """
    import sys, semsearch
    with semsearch.connect(sys.argv[1]) as db:
        db.alter_collection("alt", compression="none")
"""


@pytest.mark.parametrize("kill", ["client", "client and its server session"])
def test_alter_killed_during_the_concurrent_build_then_run_again_leaves_one_index(db, db_url, kill):
    vecs = np.random.default_rng(12).normal(size=(N_ALTER, 64))
    col = db.create_collection("alt", dims=64, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    proc = _spawn(ALTER, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        pid = _kill_when(proc, lambda: _building(conn, "col_alt", "CREATE INDEX CONCURRENTLY"))
        if kill != "client":
            # the session too, as when the client's host dies: the half-built index stays, invalid
            assert _one(conn, "SELECT pg_terminate_backend(%s, 10000)", [pid])
        # right after the kill the live index still serves searches, on the old plan
        [(name, valid, definition)] = [i for i in _hnsw_indexes(conn, "col_alt") if i[0] == "col_alt_hnsw"]
        assert valid and "halfvec_ip_ops" in definition
        assert db.collection("alt").info.compression == "halfvec"
        assert "Index Scan using col_alt_hnsw" in col.explain(vector=vecs[5], k=10).plan
        assert col.search(vector=vecs[5], k=1).keys == ["5"]
        if kill != "client":
            assert [(i[0], i[1]) for i in _hnsw_indexes(conn, "col_alt")] == [
                ("col_alt_hnsw", True),
                ("col_alt_hnsw_next", False),
            ]
            # doctor finds the leftover (once its session is gone) and drops it; the live index stays
            found = col.doctor()
            assert (found.indexed, found.valid, found.leftovers) == (True, True, ("col_alt_hnsw_next",))
            assert col.doctor(repair=True).repaired == ("dropped col_alt_hnsw_next",)
            assert _left_over(conn, "col_alt") == [] and col.doctor().healthy
    after = db.alter_collection("alt", compression="none")  # the documented resume: the same alter again
    assert after.info.compression == "none" and db.collection("alt").info.compression == "none"
    with db.connection() as conn:
        [(name, valid, definition)] = _hnsw_indexes(conn, "col_alt")
        assert (name, valid) == ("col_alt_hnsw", True)
        # on the new plan's expression (the full vectors): the catalog's plan and the index agree
        assert "vector_cosine_ops" in definition and "halfvec" not in definition
        assert _left_over(conn, "col_alt") == []
    assert "Index Scan using col_alt_hnsw" in after.explain(vector=vecs[5], k=10).plan
    assert after.search(vector=vecs[5], k=1).keys == ["5"]


# -- migrate_model: the backfill of <name>__next ----------------------------------------

N_DOCS = 2000

MIGRATE = """
    import sys, semsearch
    from semsearch.model_switch import migrate_model
    with semsearch.connect(sys.argv[1]) as db:
        migrate_model(db, "docs", model="local", dims=128, batch_size=4, sample=10, k=5)
"""


def test_migrate_model_killed_during_its_backfill_then_run_again_switches_with_every_row(db, db_url):
    corpus = stdlib_corpus(rows=N_DOCS)
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec", autotune=False)
    col.add_many(corpus)
    proc = _spawn(MIGRATE, db_url)

    def half_embedded() -> tuple[str, int] | None:
        table = _one(conn, "SELECT table_name FROM semsearch.collections WHERE name = 'docs__next'")
        if table is None:
            return None
        done = _one(conn, sql.SQL("SELECT count(embedding) FROM {}").format(sql.Identifier("semsearch", table)))
        return (table, done) if done >= N_DOCS // 4 else None

    with psycopg.connect(db_url, autocommit=True) as conn:
        shadow, _ = _kill_when(proc, half_embedded)
        table = sql.Identifier("semsearch", shadow)
        before = dict(conn.execute(sql.SQL("SELECT key, id FROM {} WHERE embedding IS NOT NULL").format(table)))
        assert N_DOCS // 4 <= len(before) < N_DOCS
    # killed before the switch: the collection is still the old one, searchable
    assert db.collection("docs").dims == 64 and len(db.collection("docs").search("read a tar archive", k=3)) == 3
    report = model_switch.migrate_model(db, "docs", model="local", dims=128, sample=10, k=5)
    assert report.switched and (report.old_dims, report.new_dims, report.rows) == (64, 128, N_DOCS)
    live = db.collection("docs")
    # the resumed shadow itself was switched in, and its embedded rows kept
    assert (live.dims, live.info.table_name, live.pending()) == (128, shadow, 0)
    assert sorted(c.name for c in db.collections()) == ["docs", "docs__prev"]
    with db.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT key, id, content, vector_dims(embedding), embedding::vector FROM {}").format(table)
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(r["key"] for r in corpus)
    assert all(r[3] == 128 for r in rows)
    assert {r[0]: r[1] for r in rows if r[0] in before} == before
    expected = embedder_for("local", 128).embed([r[2] for r in rows])
    np.testing.assert_allclose(np.array([r[4].to_numpy() for r in rows]), expected, atol=1e-5)
    assert live.search(corpus[7]["content"], k=1).keys == [corpus[7]["key"]]
