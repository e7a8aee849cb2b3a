"""backfill --watch: a service that embeds rows as writers add them, and survives losing the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from semsearch.embeddings.local import LocalEmbedder


class CountingLocal(LocalEmbedder):
    """The real local model, counting the texts it embeds (across threads)."""

    def __init__(self, dims: int) -> None:
        super().__init__(dims)
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def embed(self, texts):  # type: ignore[no-untyped-def]
        with self._lock:
            self.texts += list(texts)
        return super().embed(texts)


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a state of the database that another thread or process brings about."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.05)


def _products(db) -> None:
    with db.connection() as conn:
        conn.execute("CREATE TABLE products (id bigint PRIMARY KEY, description text)")
        conn.execute("INSERT INTO products VALUES (1, 'an electric kettle'), (2, 'a camping tent')")


def _watcher(col, **kw) -> tuple[threading.Event, threading.Thread, list]:
    stop, out = threading.Event(), []
    thread = threading.Thread(target=lambda: out.append(col.backfill(watch=True, stop=stop, **kw)), daemon=True)
    thread.start()
    return stop, thread, out


def test_a_watcher_embeds_rows_written_by_raw_sql_and_survives_losing_its_connections(db_url):
    # the watcher's connections carry a name, so the test can cut exactly them
    watched = make_conninfo(db_url, application_name="semsearch_watcher")
    with semsearch.connect(db_url) as db, semsearch.connect(watched) as wdb:
        _products(db)
        db.sync_table("products", collection="products", key="id", text="description", model="local", dims=64)
        col = db.collection("products")
        stop, thread, out = _watcher(wdb.collection("products"), poll=3600)
        _eventually(lambda: col.pending() == 0)  # the rows queued at sync time
        with db.connection() as conn:
            conn.execute("INSERT INTO products VALUES (3, 'a detective novel set in london')")
            _eventually(lambda: col.pending() == 0)
            assert col.search("a crime book", k=1).keys == ["3"]
            # the server drops every connection of the watcher: it reconnects, listens again, drains
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'semsearch_watcher' "
                "AND datname = current_database()"
            )
            conn.execute("INSERT INTO products VALUES (4, 'a paper map of the alps')")
            _eventually(lambda: col.pending() == 0)
            assert col.search("mountain map", k=1).keys == ["4"]
            # deferred adds wake it too
            col.add(keys=["x"], contents=["a woollen hat"], defer=True)
            _eventually(lambda: col.pending() == 0)
        stop.set()
        thread.join(10)
        assert not thread.is_alive() and out[0].embedded == 5


def test_the_poll_finds_rows_written_with_triggers_off(db):
    col = db.create_collection("d", model="local", dims=64, compression="halfvec")
    stop, thread, out = _watcher(col, poll=0.2)
    with db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # no trigger fires: no notification
        conn.execute(sql.SQL("INSERT INTO {} (key, content) VALUES ('a', 'quiet row')").format(col.layout.table))
    _eventually(lambda: col.pending() == 0)
    stop.set()
    thread.join(10)
    assert out[0].embedded == 1


def test_two_watchers_never_embed_a_row_twice(db_url):
    with semsearch.connect(db_url) as db:
        _products(db)
        emb = CountingLocal(64)
        db.sync_table("products", collection="products", key="id", text="description", embedder=emb)
        col = db.collection("products", embedder=emb)
        watchers = [_watcher(db.collection("products", embedder=emb), batch_size=16, poll=0.5) for _ in range(2)]
        with db.connection() as conn:
            for start in range(10, 400, 40):  # statements landing while the other watcher embeds
                conn.execute(
                    "INSERT INTO products SELECT i, 'product number ' || i FROM generate_series(%s::int, %s::int) i",
                    [start, start + 39],
                )
        _eventually(lambda: col.pending() == 0)
        for stop, thread, _ in watchers:
            stop.set()
            thread.join(10)
        assert sum(out[0].embedded for _, _, out in watchers) == len(col) == 402
        assert len(emb.texts) == len(set(emb.texts)) == 402


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_semsearch_backfill_watch_exits_cleanly_on_a_signal(db_url, sig):
    with semsearch.connect(db_url) as db:
        db.create_collection("d", model="local", dims=64, compression="halfvec")
    command = [sys.executable, "-m", "semsearch.cli", "--url", db_url, "backfill", "d", "--watch", "--poll", "3600"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None and proc.stderr.readline().startswith("watching d for pending rows")
    with semsearch.connect(db_url) as db:
        col = db.collection("d")
        col.add(keys=["a"], contents=["a row to embed"], defer=True)
        _eventually(lambda: col.pending() == 0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.startswith("embedded 1 rows in 1 batches") and out.endswith("; stopped\n")
    assert "embedded 1 rows, 0 to quarantine" in err and "Traceback" not in err


def test_watch_refuses_what_a_service_cannot_do(db):
    col = db.create_collection("d", model="local", dims=64, compression="halfvec")
    with pytest.raises(semsearch.errors.ConfigurationError, match="expected watch=True without dry_run"):
        col.backfill(watch=True, dry_run=True)
    with pytest.raises(semsearch.errors.ConfigurationError, match="expected poll= seconds"):
        col.backfill(watch=True, poll=0, stop=threading.Event())
    failed: list[BaseException] = []

    def outside_main() -> None:
        try:
            col.backfill(watch=True)
        except semsearch.errors.ConfigurationError as exc:
            failed.append(exc)

    thread = threading.Thread(target=outside_main)
    thread.start()
    thread.join(10)
    assert "expected stop=" in str(failed[0])


def test_a_provider_outage_leaves_rows_pending_until_it_ends(db):
    from semsearch.embeddings.openai import OpenAIEmbedder
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        emb = OpenAIEmbedder(model="text-embedding-3-small", dims=64, base_url=server.base_url, api_key="k",
                             max_retries=0)  # fmt: skip
        col = db.create_collection("d", embedder=emb, compression="halfvec")
        server.fail_always(status=503)
        stop, thread, out = _watcher(col, poll=3600)
        col.add(keys=["a"], contents=["a row"], defer=True)
        _eventually(lambda: len(server.requests) >= 2)  # tried, failed, tried again: the watcher lives on
        assert col.pending() == 1 and thread.is_alive()
        server.fail_always(None)
        _eventually(lambda: col.pending() == 0)
        stop.set()
        thread.join(10)
        assert out[0].embedded == 1


def test_spoofed_notifications_from_an_unrelated_role_are_harmless(db, db_url, monkeypatch):
    """Any role may NOTIFY the watchers' channel: a flood embeds nothing, costs one drain, and the watcher goes on."""
    import uuid

    from semsearch import watch

    drains: list[int] = []
    real_backfill = watch.backfill

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        drains.append(1)
        return real_backfill(*args, **kwargs)

    monkeypatch.setattr(watch, "backfill", counting)
    emb = CountingLocal(64)
    col = db.create_collection("notes", embedder=emb, compression="none")
    col.add(["a"], ["an electric kettle"])
    stranger = f"ss_spoofer_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    stop, thread, _ = _watcher(col, poll=3600)
    try:
        _eventually(lambda: len(drains) >= 1)
        started = time.monotonic()
        with psycopg.connect(make_conninfo(db_url, user=stranger), autocommit=True) as spoof:
            # one transaction each: Postgres folds identical notifications of one transaction into one
            for payload in ["notes"] * 500 + ["nope", "x" * 7000, "'; DROP TABLE x; --"] * 10:
                spoof.execute("SELECT pg_notify('semsearch_pending', %s)", [payload])
        flood = time.monotonic() - started
        _eventually(lambda: len(drains) >= 2)
        time.sleep(1.0)
        # 530 notifications: drains at most every MIN_DRAIN_INTERVAL while they came, not one each
        assert len(drains) <= 3 + flood / watch.MIN_DRAIN_INTERVAL < 530, (len(drains), flood)
        assert emb.texts == ["an electric kettle"]  # nothing embedded for them
        col.add(["b"], ["a camping tent"], defer=True)  # a real pending row is still picked up
        _eventually(lambda: col.pending() == 0)
        assert emb.texts == ["an electric kettle", "a camping tent"]
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        with db.connection() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))
