"""The embedded server's life in a running process: stopped under it, started again; its settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import semsearch
from semsearch import aio
from semsearch.config import Settings
from semsearch.embedded import embedded_status, embedded_url, stop_embedded
from semsearch.embedded_tuning import TUNED, MiB, machine, server_settings
from semsearch.errors import DatabaseError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def own_data_dir() -> Iterator[Path]:
    """An embedded server's data directory of this module's own (one initdb for its tests)."""
    # beside the user's data dir, not in pytest's tmp_path: run as root, postgres runs as its own user and
    # must reach it, and pytest makes its own temporary root private again at each session's start
    parent = Settings.from_env().data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)  # a fresh machine whose test server lives elsewhere has none yet
    data_dir = Path(tempfile.mkdtemp(prefix="ss-own-", dir=parent))
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


def _server_settings(data_dir: Path) -> dict[str, tuple[int, str]]:
    """Each tuned setting's value in bytes (or a count) and as shown."""
    with psycopg.connect(embedded_status(data_dir, "postgres").url, autocommit=True) as conn:
        return {
            name: (conn.execute("SELECT pg_size_bytes(current_setting(%s))", [name]).fetchone()[0],
                   conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0])
            for name in TUNED
        }  # fmt: skip


def _size(value: str) -> int:
    return int(value[: -len("MB")]) * MiB if value.endswith("MB") else int(value)


def _status(data_dir: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "semsearch.cli", "server", "status"],
        env={**env, "SEMSEARCH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_the_embedded_server_is_sized_for_the_machine_and_status_shows_it(own_server):
    stop_embedded(own_server)
    embedded_url(own_server)  # started: shared_buffers needs a start to take effect, so it restarts once
    wanted = server_settings(*machine())
    got = _server_settings(own_server)
    assert {name: size for name, (size, _) in got.items()} == {name: _size(v) for name, v in wanted.items()}
    lines = _status(own_server)
    assert lines[4:] == [f"{name}: {shown} (sized for this machine)" for name, (_, shown) in got.items()]


def test_a_data_dir_keeps_the_profile_it_was_tuned_with(own_server):
    def sizes() -> dict[str, int]:
        return {name: size for name, (size, _) in _server_settings(own_server).items()}

    small = {name: _size(v) for name, v in server_settings(*machine(), profile="small").items()}
    try:
        stop_embedded(own_server)
        embedded_url(own_server, profile="small")  # the test server's profile
        assert sizes() == small
        stop_embedded(own_server)
        embedded_url(own_server)  # a script or `semsearch demo` on the test server does not grow it
        assert sizes() == small
    finally:
        stop_embedded(own_server)
        embedded_url(own_server, profile="default")
    assert sizes() == {name: _size(v) for name, v in server_settings(*machine()).items()}


def test_a_setting_you_made_is_left_alone(own_server):
    embedded_url(own_server)
    url = embedded_status(own_server, "postgres").url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET maintenance_work_mem = '100MB'")
    conf = own_server / "pgdata" / "postgresql.conf"
    before = conf.read_text()
    conf.write_text(before + "\nshared_buffers = '136MB'\n")  # over the value semsearch wrote with ALTER SYSTEM
    try:
        stop_embedded(own_server)
        embedded_url(own_server)
        got = _server_settings(own_server)
        assert got["maintenance_work_mem"][0] == 100 * MiB
        assert got["shared_buffers"][0] == 136 * MiB  # semsearch's ALTER SYSTEM value taken out, or it would win
        lines = _status(own_server)
        assert "maintenance_work_mem: 100MB (set by you: left alone)" in lines
        assert "shared_buffers: 136MB (set by you: left alone)" in lines
    finally:
        conf.write_text(before)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET maintenance_work_mem")
    stop_embedded(own_server)
    embedded_url(own_server)  # both are semsearch's again
    assert {name: size for name, (size, _) in _server_settings(own_server).items()} == {
        name: _size(v) for name, v in server_settings(*machine()).items()
    }


PROBE = """
def test_probe(db):
    assert db.collections() == []
"""


def _test_run(tmp_path: Path, data_dir: Path, *args: str) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("SEMSEARCH_TEST_DATABASE_URL", "PYTEST_XDIST_WORKER")}
    env.update(SEMSEARCH_TEST_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.plugin_postgres", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(tmp_path), "-q", *args, str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_test_run_stops_the_test_server_it_started_and_only_that(own_data_dir, tmp_path):
    # this module's server as the runs' test server: it runs already (started by someone else), so it is left running
    embedded_url(own_data_dir)
    _test_run(tmp_path, own_data_dir, "-n", "0")
    assert embedded_status(own_data_dir).running
    stop_embedded(own_data_dir)
    _test_run(tmp_path, own_data_dir, "-n", "2")  # the workers start it; the controller stops it after them
    assert not embedded_status(own_data_dir).running
    assert list(own_data_dir.glob("test-runs/*")) == []
