"""Postgres fixtures: pytest-postgresql against the embedded server (or SEMSEARCH_TEST_DATABASE_URL).

``postgresql_noproc`` is used because ``postgresql_proc`` runs ``pg_ctl``, which
refuses to run as root (CI does). The server is found (and the embedded one started)
only when a test asks for a database: ``tests/unit/`` runs with no Postgres at all.
The template database gets semsearch's migrations once; each test gets a fresh clone,
and ``module_db`` is one clone shared by a module's tests (for read-only tests over a
collection that takes seconds to build).

A run that started the embedded test server stops it when it ends (``pytest_sessionfinish``;
with pytest-xdist in the controller, after every worker is done), unless another run on the
same server is still going: the last one out stops it.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

import semsearch
from semsearch.config import Settings


def server_data_dir() -> Path:
    """The embedded test server's own data directory, beside the user's (``SEMSEARCH_TEST_DATA_DIR`` sets it)."""
    own = os.environ.get("SEMSEARCH_TEST_DATA_DIR")
    if own:
        return Path(own).expanduser()
    data_dir = Settings.from_env().data_dir
    return data_dir.with_name(data_dir.name + "-test")


#: a server that holds only throwaway test databases need not survive a power cut: with these
#: off, a test's CREATE DATABASE and commits wait for no disk (the suite ran 11% faster, interleaved runs)
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _throwaway(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        current = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(THROWAWAY)]))
        if current != THROWAWAY:
            for name, value in THROWAWAY.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            conn.execute("SELECT pg_reload_conf()")


#: ``config.stash``: whether this run found the embedded test server running, None when it does not manage one
_FOUND_RUNNING = pytest.StashKey[bool | None]()


def _sessions() -> Path:
    """Where each run managing the embedded test server leaves its pid (``make test`` next to a single file's run)."""
    return server_data_dir() / "test-runs"


def _live_sessions(sessions: Path) -> list[Path]:
    live = []
    for path in sessions.glob("[0-9]*"):
        try:
            os.kill(int(path.name), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)  # a run that was killed
            continue
        except PermissionError:
            pass  # another user's run
        live.append(path)
    return live


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    config.stash[_FOUND_RUNNING] = None
    if hasattr(config, "workerinput") or os.environ.get("SEMSEARCH_TEST_DATABASE_URL"):
        return  # an xdist worker (its controller decides), or a server the tests do not manage
    from semsearch.embedded import embedded_status

    sessions = _sessions()
    sessions.mkdir(parents=True, exist_ok=True)
    (sessions / str(os.getpid())).touch()
    config.stash[_FOUND_RUNNING] = embedded_status(server_data_dir()).running


def pytest_sessionfinish(session: pytest.Session) -> None:
    found_running = session.config.stash.get(_FOUND_RUNNING, None)
    if found_running is None:
        return
    from semsearch.embedded import embedded_status, stop_embedded

    sessions = _sessions()
    (sessions / str(os.getpid())).unlink(missing_ok=True)
    handed_over = sessions / "stop"  # a run that started the server ended while others still ran
    if _live_sessions(sessions):
        if not found_running:
            handed_over.touch()
        return
    stop = not found_running or handed_over.exists()
    handed_over.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        sessions.rmdir()
    if stop and embedded_status(server_data_dir()).running:
        stop_embedded(server_data_dir())


@pytest.fixture(scope="session")
def server_url() -> str:
    """The test server's URL; the whole run stops at once, with the reason, when it is unreachable.

    Without ``SEMSEARCH_TEST_DATABASE_URL``: an embedded server of the tests' own (never the one
    ``semsearch demo`` and scripts use), set up for throwaway data.
    """
    url = os.environ.get("SEMSEARCH_TEST_DATABASE_URL")
    if not url:
        from semsearch.embedded import embedded_url

        # the small profile: a test server holds tiny throwaway databases, beside other work on the machine
        url = embedded_url(server_data_dir(), database="postgres", profile="small")
        _throwaway(url)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.exit(f"test database unreachable at {url}: {exc}", returncode=3)
    return url


@pytest.fixture(scope="session")
def semsearch_server(server_url: str) -> SimpleNamespace:
    """The server as pytest-postgresql's noproc factory takes it (``depends_on``)."""
    params = conninfo_to_dict(server_url)
    return SimpleNamespace(
        host=params.get("host"),
        port=params.get("port") or 5432,
        user=params.get("user"),
        password=params.get("password"),
        options="",
        maintenance_dbname="postgres",
        template_dbname=None,
    )


def _load_schema(**kwargs: Any) -> None:
    from semsearch import migrate

    url = make_conninfo(
        "", host=kwargs["host"], port=kwargs["port"], user=kwargs["user"], password=kwargs.get("password"),
        dbname=kwargs["dbname"],
    )  # fmt: skip
    migrate.upgrade(url)


postgresql_server = factories.postgresql_noproc(
    dbname=f"semsearch_test_{os.getpid()}", load=[_load_schema], depends_on="semsearch_server"
)
pg_conn = factories.postgresql("postgresql_server")


@pytest.fixture
def db_url(server_url: str, pg_conn: psycopg.Connection) -> str:
    """URL of a fresh database with semsearch's schema installed."""
    return make_conninfo(server_url, dbname=pg_conn.info.dbname)


@pytest.fixture
def db(db_url: str) -> Iterator[semsearch.Database]:
    """semsearch connected to a fresh database."""
    database = semsearch.connect(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="module")
def module_db(server_url: str, postgresql_server: Any, request: pytest.FixtureRequest) -> Iterator[semsearch.Database]:
    """semsearch connected to a fresh database shared by the tests of one module (build once, only read)."""
    name = f"{postgresql_server.dbname}_m{zlib.crc32(request.module.__name__.encode()):08x}"
    janitor = DatabaseJanitor(
        user=postgresql_server.user, host=postgresql_server.host, port=postgresql_server.port,
        password=postgresql_server.password, dbname=name, template_dbname=postgresql_server.template_dbname,
    )  # fmt: skip
    with janitor:
        database = semsearch.connect(make_conninfo(server_url, dbname=name))
        try:
            yield database
        finally:
            database.close()
