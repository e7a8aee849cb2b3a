"""Postgres fixtures: pytest-postgresql against the embedded server (or SEMSEARCH_TEST_DATABASE_URL).

``postgresql_noproc`` is used because ``postgresql_proc`` runs ``pg_ctl``, which
refuses to run as root (CI does). The template database gets semsearch's
migrations once; each test gets a fresh clone of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories

import semsearch
from semsearch import migrate
from semsearch.config import Settings


def _server_url() -> str:
    url = os.environ.get("SEMSEARCH_TEST_DATABASE_URL")
    if url:
        return url
    from semsearch.embedded import embedded_url

    return embedded_url(Settings.from_env().data_dir, database="postgres")


SERVER_URL = _server_url()
_params = conninfo_to_dict(SERVER_URL)


def _load_schema(**kwargs: Any) -> None:
    migrate.upgrade(make_conninfo(SERVER_URL, dbname=kwargs["dbname"]))


postgresql_server = factories.postgresql_noproc(
    host=_params.get("host"),
    port=_params.get("port") or 5432,
    user=_params.get("user"),
    password=_params.get("password"),
    dbname=f"semsearch_test_{os.getpid()}",
    load=[_load_schema],
)
pg_conn = factories.postgresql("postgresql_server")


@pytest.fixture(scope="session", autouse=True)
def _server_reachable() -> None:
    """Fail the whole run at once, with the reason, when the server is unreachable."""
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.exit(f"test database unreachable at {SERVER_URL}: {exc}", returncode=3)


@pytest.fixture
def db_url(pg_conn: psycopg.Connection) -> str:
    """URL of a fresh database with semsearch's schema installed."""
    return make_conninfo(SERVER_URL, dbname=pg_conn.info.dbname)


@pytest.fixture
def db(db_url: str) -> Iterator[semsearch.Database]:
    """semsearch connected to a fresh database."""
    database = semsearch.connect(db_url)
    try:
        yield database
    finally:
        database.close()
