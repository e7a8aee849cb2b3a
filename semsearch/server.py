"""The Postgres server: which URL, is it reachable with pgvector, and how to print its URL safely."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from semsearch import catalog
from semsearch.config import Settings
from semsearch.errors import DatabaseError, ExtensionMissingError


def resolve_url(url: str | None = None) -> tuple[str, bool]:
    """``(url, embedded)``: the given URL, ``SEMSEARCH_DATABASE_URL``, or the embedded server's.

    Example::

        url, embedded = resolve_url()     # starts the embedded server when nothing is configured
    """
    settings = Settings.from_env()
    url = url or settings.database_url
    if url is not None:
        return url, False
    from semsearch.embedded import embedded_url

    return embedded_url(settings.data_dir), True


def redact(url: str) -> str:
    """The URL with its password masked; one that cannot be parsed is not printed at all.

    >>> redact("postgresql://app:secret@db/app")
    'user=app password=*** dbname=app host=db'
    >>> redact("postgresql://app@db/app")
    'postgresql://app@db/app'
    >>> redact("app:secret@db/app")
    'the database'
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database"
    if not params.get("password"):
        return url
    return make_conninfo(url, password="***")  # noqa: S106 - the redaction mask, not a secret


def check_server(url: str) -> None:
    """Raise :class:`DatabaseError` unless the server answers and offers pgvector."""
    if redact(url) == "the database":
        # the driver's message would quote the string, password included
        raise DatabaseError("expected a postgresql:// URL or key=value connection string, got one that does not parse")
    failure = None
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.Error as exc:
        failure = str(exc).strip()
    if failure is not None:
        raise DatabaseError(f"could not connect to {redact(url)}: {failure}")
    if row is None:
        raise ExtensionMissingError(
            "expected the pgvector extension on the server, got none: install it "
            "(https://github.com/pgvector/pgvector#installation, e.g. apt install postgresql-NN-pgvector, "
            "or the pgvector/pgvector docker image) or unset SEMSEARCH_DATABASE_URL to use the embedded server"
        )


def prepare(url: str | None, *, upgrade: bool | None) -> str:
    """The server's URL, once it answers with pgvector and semsearch's current schema (upgraded if asked).

    Starts the embedded server when no URL is configured (see :func:`connect`); shared
    by the sync and async APIs.
    """
    url, embedded = resolve_url(url)
    if upgrade is None:
        upgrade = embedded
    check_server(url)
    with psycopg.connect(url, autocommit=True) as conn:
        current = catalog.schema_version(conn)
    if current != catalog.SCHEMA_HEAD:
        if not upgrade:
            catalog.check_schema_version(current, fix="run `semsearch db upgrade` (or connect(..., upgrade=True))")
        from semsearch import migrate  # alembic and SQLAlchemy only when there is a migration to run

        migrate.upgrade(url)
    return url


def pool_options(max_connections: int) -> dict[str, Any]:
    """The pool's settings (sync or async): autocommit connections, opened by the caller."""
    return {
        "min_size": 1,
        "max_size": max_connections,
        "kwargs": {"autocommit": True},
        "open": False,
        "name": "semsearch",
    }


def closed() -> DatabaseError:
    """What every call on a closed ``Database`` (or ``AsyncDatabase``) raises, reads and writes alike."""
    return DatabaseError("expected an open database, got it closed (close() was called)")
