"""The embedded server's life in a running process: stopped under it, started again; its settings."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import semsearch
from semsearch import aio
from semsearch.config import Settings
from semsearch.embedded import embedded_status, stop_embedded
from semsearch.errors import DatabaseError


@pytest.fixture(scope="module")
def own_data_dir() -> Iterator[Path]:
    """An embedded server's data directory of this module's own (one initdb for its tests)."""
    # beside the user's data dir, not in pytest's tmp_path: run as root, postgres runs as its own user and
    # must reach it, and pytest makes its own temporary root private again at each session's start
    data_dir = Path(tempfile.mkdtemp(prefix="ss-own-", dir=Settings.from_env().data_dir.parent))
    os.chmod(data_dir, 0o755)
    try:
        yield data_dir
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def own_server(own_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``own_data_dir`` as the user's default (no URL configured)."""
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(own_data_dir))
    monkeypatch.delenv("SEMSEARCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("SEMSEARCH_REPLICA_URLS", raising=False)
    return own_data_dir


def _collection(db: semsearch.Database) -> semsearch.Collection:
    db.drop_collection("notes", missing_ok=True)
    col = db.create_collection("notes", dims=3, model="label", compression="none")
    col.add(["a", "b"], ["alpha", "beta"], embeddings=[[1, 0, 0], [0, 1, 0]])
    return col


def _pool_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The pool's failed reconnects (it logs one per attempt while the server is down; the dead connections it
    discards are worth their one line each)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("psycopg.pool") and "error connecting" in r.getMessage()
    ]


def test_connect_after_the_embedded_server_was_stopped_starts_it_again(own_server, caplog):
    db = semsearch.connect()
    try:
        col = _collection(db)
        stop_embedded(own_server)
        assert not embedded_status(own_server).running
        start = time.monotonic()
        with semsearch.connect() as again:  # the same process: it used to raise psycopg's "No such file"
            assert [h.key for h in again.collection("notes").search(vector=[1, 0, 0], k=1)] == ["a"]
        # the handle opened before the stop answers too: its dead connections are replaced
        assert [h.key for h in col.search(vector=[0, 1, 0], k=1)] == ["b"]
        assert time.monotonic() - start < 10
    finally:
        db.close()
    assert _pool_errors(caplog) == []


def test_a_handle_of_the_stopped_embedded_server_starts_it_again_on_its_next_search(own_server, caplog):
    with semsearch.connect() as db:
        col = _collection(db)
        stop_embedded(own_server)
        start = time.monotonic()
        assert [h.key for h in col.search(vector=[1, 0, 0], k=1)] == ["a"]
        assert [h.key for h in col.search(vector=[0, 1, 0], k=1)] == ["b"]
        assert time.monotonic() - start < 10, "it waited for the pool's timeout"
        assert embedded_status(own_server).running
    assert _pool_errors(caplog) == []


def test_searches_on_a_server_that_stopped_fail_at_once_with_a_semsearch_error(own_server):
    url = semsearch.connect().url  # start it; then use it as any server given by URL (never started by semsearch)
    with semsearch.connect(url) as db:
        col = _collection(db)
        stop_embedded(own_server)
        for _ in range(3):  # the first search finds the dead connection, the next ones an empty pool
            start = time.monotonic()
            with pytest.raises(DatabaseError, match="could not connect to"):
                col.search(vector=[1, 0, 0], k=1)
            assert time.monotonic() - start < 5, "it waited for the pool's timeout"
        assert not embedded_status(own_server).running


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_async_handle_of_the_stopped_embedded_server_starts_it_again(own_server):
    with semsearch.connect() as db:
        _collection(db)
    async with await aio.connect() as adb:
        col = await adb.collection("notes")
        stop_embedded(own_server)
        start = time.monotonic()
        assert [h.key for h in await col.search(vector=[1, 0, 0], k=1)] == ["a"]
        assert time.monotonic() - start < 10, "it waited for the pool's timeout"
