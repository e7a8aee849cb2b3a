"""The Postgres server: which URL, is it reachable with a recent enough pgvector, and how to print its URL safely."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from semsearch import catalog
from semsearch.config import Settings
from semsearch.errors import DatabaseError, ExtensionMissingError, ExtensionVersionError, PermissionDeniedError


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


def embedded_dir(url: str | None) -> Path | None:
    """The embedded server's data directory when ``url`` resolves to it (none given, none configured), else None."""
    settings = Settings.from_env()
    return settings.data_dir if url is None and settings.database_url is None else None


def revive(url: str, data_dir: Path | None) -> None:
    """Return once the server of ``url`` answers; the embedded one (``data_dir``) is started again if it stopped.

    For after a connection failed: a server that does not answer raises :class:`DatabaseError`
    at once (a pool would retry it until its timeout, logging every attempt).

    Example::

        revive(db.url, None)     # DatabaseError("could not connect to ...") while the server is down
    """
    failure = _probe(url)
    if failure is not None and data_dir is not None:
        from semsearch.embedded import embedded_status, embedded_url

        if not embedded_status(data_dir).running:
            embedded_url(data_dir)  # `semsearch server stop` (or a reboot) stopped it: start it again
            failure = _probe(url)
    if failure is not None:
        raise DatabaseError(f"could not connect to {redact(url)}: {failure}")


class Liveness:
    """A pool's server as its users last found it: whether a connection broke, and how to revive it.

    Example::

        live = Liveness(url, embedded=None)
        live.broke()      # a connection broke: the next checkout calls live.revive() first
    """

    def __init__(self, url: str, embedded: Path | None) -> None:
        self.url = url
        #: the embedded server's data directory, when ``url`` is that server's (started again if it stops)
        self.embedded = embedded
        #: a connection broke: probe the server before waiting on the pool again
        self.lost = False

    def broke(self) -> None:
        """Called before the pool sees the dead connection (it would reconnect at once, log it, and back off)."""
        self.lost = True
        if self.embedded is not None:
            with suppress(DatabaseError):
                revive(self.url, self.embedded)

    @contextmanager
    def watch(self, conn: psycopg.Connection) -> Iterator[None]:
        """Around a sync connection's use, inside the pool's ``connection()``: :meth:`broke` when it breaks."""
        try:
            yield
        except psycopg.OperationalError:
            if conn.broken:
                self.broke()
            raise

    def revive(self, pool: ConnectionPool | None = None) -> None:
        """:func:`revive` this server (:class:`DatabaseError` at once when it does not answer); then check ``pool``."""
        revive(self.url, self.embedded)
        self.lost = False
        if pool is not None:
            pool.check()  # its dead connections replaced


def _probe(url: str) -> str | None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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


#: the oldest pgvector semsearch writes with: 0.8.2 fixed CVE-2026-3172, a buffer overflow in
#: parallel HNSW index builds, which bulk loads and index rebuilds run (0.8.3/0.8.4 then fixed HNSW
#: vacuum corruption; the embedded server and docker-compose.yml have 0.8.5)
MIN_PGVECTOR = (0, 8, 2)
#: pgvector's version as packaged on the server and as installed in the database, and whether the
#: server only reads (a standby, or read-only transactions by default)
EXTENSION = sql.SQL(
    "SELECT default_version, installed_version, "
    "pg_is_in_recovery() OR current_setting('transaction_read_only')::bool "
    "FROM pg_available_extensions WHERE name = 'vector'"
)


def check_server(url: str) -> None:
    """Raise :class:`DatabaseError` unless the server answers and offers pgvector >= :data:`MIN_PGVECTOR`."""
    if redact(url) == "the database":
        # the driver's message would quote the string, password included
        raise DatabaseError("expected a postgresql:// URL or key=value connection string, got one that does not parse")
    failure = None
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(EXTENSION).fetchone()
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
    check_pgvector(row[0], row[1], read_only=bool(row[2]))


def pgvector_version(text: str | None) -> tuple[int, int, int] | None:
    """``"0.8.5"`` as ``(0, 8, 5)``; None for a version that does not read as numbers.

    >>> pgvector_version("0.8.2"), pgvector_version("0.10"), pgvector_version("0.9.0-dev")
    ((0, 8, 2), (0, 10, 0), (0, 9, 0))
    >>> pgvector_version("dev") is None
    True
    """
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if found is None:
        return None
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch or 0)


def check_pgvector(packaged: str | None, installed: str | None, *, read_only: bool = False) -> None:
    """Refuse pgvector older than :data:`MIN_PGVECTOR` (``packaged``: the server's files; ``installed``:
    the database's ``extversion``, None before ``CREATE EXTENSION``); on a read-only server, warn.

    Example::

        check_pgvector("0.8.5", "0.8.1")   # ExtensionVersionError: ... ALTER EXTENSION vector UPDATE
    """
    least = ".".join(map(str, MIN_PGVECTOR))
    old_files = (pgvector_version(packaged) or (0,)) < MIN_PGVECTOR
    if old_files:
        got = packaged
        fix = (
            f"install pgvector >= {least} on the server (e.g. the pgvector/pgvector:0.8.5-pg18 image, or "
            "apt install postgresql-NN-pgvector), then run ALTER EXTENSION vector UPDATE in each database"
        )
    elif installed is not None and (pgvector_version(installed) or (0,)) < MIN_PGVECTOR:
        got, fix = installed, f"run ALTER EXTENSION vector UPDATE in this database (the server has {packaged})"
    else:
        return
    message = (
        f"expected pgvector >= {least}, got {got}: upgrade pgvector to >= {least} ({fix}); {least} fixed "
        "CVE-2026-3172, a buffer overflow in the parallel HNSW index builds semsearch's bulk loads run"
    )
    if not read_only:
        raise ExtensionVersionError(message)
    warnings.warn(f"{message} (a read-only server: searching it is allowed)", UserWarning, stacklevel=5)


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


def denied(exc: Exception) -> PermissionDeniedError:
    """A statement the server refused for want of a privilege, as semsearch's error with the way out.

    >>> str(denied(Exception("permission denied for table synced_tables")))  # doctest: +ELLIPSIS
    "expected this role to hold the privileges the call needs, got: permission denied for table synced_tables: ..."
    """
    return PermissionDeniedError(
        f"expected this role to hold the privileges the call needs, got: {str(exc).strip()}: "
        "the owner of semsearch's schema grants them (semsearch grant ROLE COLLECTION [--write]; "
        "create, alter and drop stay the owner's)"
    )
