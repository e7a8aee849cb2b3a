"""Read replicas on a real streaming standby (tests/replica_cluster.py): where each call runs.

The proof of where a call ran is what it sees: with the standby's replay paused, a row
written on the primary exists there and not on the replica.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

import semsearch
from semsearch import errors
from tests.replica_cluster import ReplicaCluster

#: a filter every row matches: the search runs through the SQL functions, which check the catalog every time
ANY_ROW = {"n": {"$gte": 0}}
#: the replica's first back-off is 1 s: coming back is seen well within this
BACK_SECONDS = 30


@pytest.fixture
def cluster(replica_cluster: ReplicaCluster) -> Iterator[ReplicaCluster]:
    yield replica_cluster
    # whatever a test did: the standby runs, replays, and has caught up for the next one
    if not (replica_cluster.standby.data / "postmaster.pid").exists():
        replica_cluster.start_server(replica_cluster.standby)
    replica_cluster.resume_replay()
    replica_cluster.wait_caught_up()


@pytest.fixture
def db(cluster: ReplicaCluster) -> Iterator[semsearch.Database]:
    database = semsearch.connect(cluster.primary_url, replicas=[cluster.standby_url])
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def col(db, cluster, movies, request):
    """61 of the movies (256-dim vectors) on the primary, replayed by the standby; the 62nd is kept back."""
    name = re.sub(r"\W", "_", request.node.name)[:40].lower()
    titles, _, vectors = movies
    c = db.create_collection(name, dims=256, model="text-embedding-3-small", compression="halfvec")
    c.add(keys=titles[:-1], contents=titles[:-1], embeddings=vectors[:-1], metadata=[{"n": i} for i in range(61)])
    cluster.wait_caught_up()
    yield c
    db.drop_collection(name, missing_ok=True)


@contextmanager
def replay_paused(cluster: ReplicaCluster) -> Iterator[None]:
    cluster.pause_replay()
    try:
        yield
    finally:
        cluster.resume_replay()


def _add_last(col, movies) -> tuple[str, object]:
    titles, _, vectors = movies
    col.add(keys=[titles[-1]], contents=[titles[-1]], embeddings=vectors[-1:], metadata=[{"n": 61}])
    return titles[-1], vectors[-1]


def test_a_write_reaches_the_replica_after_catch_up_and_fresh_reads_the_primary(col, cluster, movies):
    with replay_paused(cluster):
        key, v = _add_last(col, movies)  # a write: on the primary (the replica is read-only)
        with psycopg.connect(cluster.primary_url) as conn:
            on_primary = conn.execute(f"SELECT count(*) FROM semsearch.{col.layout.table_name}").fetchone()[0]
        assert on_primary == 62
        assert col.search(vector=v, k=1).keys != [key]  # the replica has not replayed it
        assert col.search(vector=v, k=1, fresh=True).keys == [key]
        assert col.search(vector=v, k=1, where=ANY_ROW, fresh=True).keys == [key]  # the SQL functions' path too
    cluster.wait_caught_up()
    assert col.search(vector=v, k=1).keys == [key]
    assert col.db.replicas[0].up and col.db.replicas[0].reads >= 2


def test_the_cli_searches_the_replica_and_fresh_reads_the_primary(col, cluster, movies, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from semsearch.cli import main

    monkeypatch.setenv("SEMSEARCH_REPLICA_URLS", cluster.standby_url)
    with replay_paused(cluster):
        key, v = _add_last(col, movies)
        query = tmp_path / "q.json"
        query.write_text(json.dumps([float(x) for x in v]))

        def top(*extra: str) -> str:
            args = ["--url", cluster.primary_url, "search", col.name, "--vector-file", str(query), "-k", "1"]
            out = CliRunner().invoke(main, [*args, "--json", *extra])
            assert out.exit_code == 0, out.output
            return json.loads(out.output.splitlines()[0])["key"]

        assert top() != key  # the replica has not replayed the write
        assert top("--fresh") == key


def test_explain_and_evaluation_read_the_replica_and_tune_reads_and_writes_the_primary(col, cluster, movies):
    with replay_paused(cluster):
        _, v = _add_last(col, movies)
        assert _scanned(col.explain(vector=v, k=1, exact=True).plan) == 61
        assert _scanned(col.explain(vector=v, k=1, exact=True, fresh=True).plan) == 62
        # evaluate/sweep sample the rows they query from where they search
        assert col.evaluate(sample=100, repeat=1).queries == 61
        assert [r.queries for r in col.sweep(sample=100, oversamples=[1, 2], repeat=1)] == [61, 61]
        tuned = col.tune(sample=100)
        assert tuned.queries == 62
    cluster.wait_caught_up()
    with psycopg.connect(cluster.standby_url) as conn:
        stored = conn.execute("SELECT tuning FROM semsearch.collections WHERE name = %s", [col.name]).fetchone()[0]
    assert stored["queries"] == 62  # written on the primary, replayed here


def _scanned(plan: str) -> int:
    """Rows the exact plan's sequential scan read (PostgreSQL 18 prints ``rows=61.00``)."""
    found = re.search(r"Seq Scan on \S+ .*?actual .*?rows=(\d+)", plan)
    assert found, plan
    return int(found.group(1))


def test_a_stopped_replica_does_not_fail_searches_and_is_used_again_when_back(col, cluster, movies):
    with replay_paused(cluster):
        key, v = _add_last(col, movies)
        assert col.search(vector=v, k=1).keys != [key]
    cluster.stop_server(cluster.standby)
    # the pooled connection is dead and the server refuses new ones: the primary answers
    assert col.search(vector=v, k=1).keys == [key]
    assert col.search(vector=v, k=1, where=ANY_ROW).keys == [key]
    assert col.explain(vector=v, k=1).plan
    status = col.db.replicas[0]
    assert not status.up and status.failures >= 1

    cluster.start_server(cluster.standby)
    cluster.wait_caught_up()
    with replay_paused(cluster):
        col.delete(key)  # gone from the primary, still on the paused replica
        deadline = time.monotonic() + BACK_SECONDS
        # the primary answers until the replica's back-off has passed and a probe finds it up
        while col.search(vector=v, k=1).keys != [key]:
            assert time.monotonic() < deadline, "the replica was not used again after it came back"
            time.sleep(0.05)
    assert col.db.replicas[0].up and col.db.replicas[0].failures == 0


def test_a_collection_the_replica_has_not_replayed_yet_is_searched_on_the_primary(db, cluster, movies):
    titles, _, vectors = movies
    with replay_paused(cluster):
        col = db.create_collection("not_replayed", dims=256, model="text-embedding-3-small", compression="halfvec")
        col.add(keys=titles[:3], contents=titles[:3], embeddings=vectors[:3], metadata=[{"n": i} for i in range(3)])
        assert col.search(vector=vectors[1], k=1).keys == [titles[1]]
        assert col.search(vector=vectors[1], k=1, where=ANY_ROW).keys == [titles[1]]
        assert col.explain(vector=vectors[1], k=1).plan
        assert db.replicas[0].up and db.replicas[0].failures == 0
    db.drop_collection("not_replayed")


def test_a_replica_that_refuses_connections_leaves_searches_on_the_primary(cluster, movies):
    with semsearch.connect(cluster.primary_url, replicas=["postgresql://postgres@127.0.0.1:1/semsearch"]) as db:
        titles, _, vectors = movies
        col = db.create_collection("refused", dims=256, model="text-embedding-3-small", compression="halfvec")
        try:
            col.add(keys=titles[:3], contents=titles[:3], embeddings=vectors[:3])
            assert col.search(vector=vectors[1], k=1).keys == [titles[1]]
            (status,) = db.replicas
            assert not status.up and status.failures == 1 and status.retry_in is not None
            assert status.url == "postgresql://postgres@127.0.0.1:1/semsearch"
        finally:
            db.drop_collection("refused")


def test_the_catalog_check_reads_where_the_search_runs(col, cluster, movies):
    titles, _, vectors = movies
    with replay_paused(cluster):
        col.db.drop_collection(col.name)
        assert col.name not in [c.name for c in col.db.collections()]  # the primary's catalog
        # the replica still has the collection: a search there checks the replica's catalog (every
        # time on this path), which names the table the handle knows, so the handle is not reloaded
        for _ in range(3):
            assert col.search(vector=vectors[0], k=1, where=ANY_ROW).keys == [titles[0]]


def test_replicas_come_from_the_environment_and_bad_ones_are_refused(cluster, movies, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_REPLICA_URLS", f" {cluster.standby_url} ,")
    with semsearch.connect(cluster.primary_url) as db:
        assert [s.url for s in db.replicas] == [cluster.standby_url]
        assert db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]) is True
        assert db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0], fresh=True) is False
    with semsearch.connect(cluster.primary_url, replicas=[]) as db:
        assert db.replicas == ()
    with pytest.raises(errors.ConfigurationError, match="expected replicas as a list of URLs"):
        semsearch.connect(cluster.primary_url, replicas=cluster.standby_url)  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError, match="does not parse") as info:
        semsearch.connect(cluster.primary_url, replicas=["replica:secret@host/db"])
    assert "secret" not in str(info.value)


def test_a_query_canceled_by_a_recovery_conflict_runs_again_on_the_primary(db, col, cluster):
    table = f"semsearch.{col.layout.table_name}"
    with psycopg.connect(cluster.standby_url, autocommit=True) as conn:
        # the standby cancels a query holding up replay at once instead of after 30 s
        conn.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        conn.execute("SELECT pg_reload_conf()")
    try:

        def count(conn: psycopg.Connection) -> str:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                return "primary"
            with conn.transaction():
                conn.execute(f"SELECT count(*) FROM {table}")  # holds a lock on the table
                with psycopg.connect(cluster.primary_url, autocommit=True) as primary, primary.transaction():
                    primary.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # replayed: a conflict
                conn.execute("SELECT pg_sleep(30)")  # canceled by the replay of that lock
            return "replica"

        assert db.read(count) == "primary"
        assert db.replicas[0].failures == 1
    finally:
        with psycopg.connect(cluster.standby_url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            conn.execute("SELECT pg_reload_conf()")


def test_the_readme_recipe_starts_a_primary_and_a_replica_and_stops_them():
    base = Path(tempfile.mkdtemp(prefix="semsearch-recipe-"))  # the postgres user must reach it: not tmp_path
    script = Path(__file__).with_name("replica_cluster.py")
    env = {**os.environ, "PYTHONPATH": str(script.parents[1])}
    started = subprocess.run([sys.executable, script, "start", base], env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stderr
        urls = dict(line.split("=", 1) for line in started.stdout.splitlines())
        assert sorted(urls) == ["SEMSEARCH_DATABASE_URL", "SEMSEARCH_REPLICA_URLS"]
        with semsearch.connect(urls["SEMSEARCH_DATABASE_URL"], replicas=[urls["SEMSEARCH_REPLICA_URLS"]]) as db:
            assert db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]) is True
            assert db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0], fresh=True) is False
    finally:
        stopped = subprocess.run([sys.executable, script, "stop", base], env=env, capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    assert not base.exists()
