"""Connect to Postgres (embedded or any URL) and manage collections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from semsearch import ddl, migrate
from semsearch.collection import Collection, CollectionInfo
from semsearch.config import Settings
from semsearch.embedded import embedded_url
from semsearch.embeddings import Embedder
from semsearch.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigurationError,
    DatabaseError,
    ExtensionMissingError,
    InvalidNameError,
    SchemaVersionError,
)
from semsearch.schema import MAX_USER_NAME, check_name

_INFO_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(CollectionInfo))


def schema_version(conn: psycopg.Connection) -> str | None:
    """The applied semsearch migration, or None when the schema is not installed."""
    row = conn.execute("SELECT to_regclass('semsearch.alembic_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    got = conn.execute("SELECT version_num FROM semsearch.alembic_version").fetchone()
    return got[0] if got else None


def _check_server(url: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"could not connect to {_redact(url)}: {str(exc).strip()}") from exc
    if row is None:
        raise ExtensionMissingError(
            "expected the pgvector extension on the server, got none: install it "
            "(https://github.com/pgvector/pgvector#installation, e.g. apt install postgresql-NN-pgvector, "
            "or the pgvector/pgvector docker image) or unset SEMSEARCH_DATABASE_URL to use the embedded server"
        )


def _redact(url: str) -> str:
    try:
        return psycopg.conninfo.make_conninfo(url, password="***")  # noqa: S106 - the redaction mask, not a secret if "password" in url or "@" in url else url
    except psycopg.ProgrammingError:
        return "the database"


def connect(
    url: str | None = None,
    *,
    upgrade: bool | None = None,
    max_connections: int = 4,
) -> Database:
    """Open semsearch on a Postgres server.

    With no ``url`` and no ``SEMSEARCH_DATABASE_URL``, starts (or reuses) the
    embedded PostgreSQL + pgvector and installs semsearch's schema on it. On any
    other server the schema must be current (``semsearch db upgrade``) unless
    ``upgrade=True``.

    Example::

        db = semsearch.connect()                                  # embedded
        db = semsearch.connect("postgresql://app@db.internal/app")
    """
    settings = Settings.from_env()
    url = url or settings.database_url
    embedded = url is None
    if url is None:
        url = embedded_url(settings.data_dir)
    if upgrade is None:
        upgrade = embedded
    _check_server(url)
    with psycopg.connect(url, autocommit=True) as conn:
        current = schema_version(conn)
    if current != migrate.head():
        if not upgrade:
            raise SchemaVersionError(
                f"expected semsearch schema {migrate.head()}, got {current or 'none'}: "
                "run `semsearch db upgrade` (or connect(..., upgrade=True))"
            )
        migrate.upgrade(url)
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_connections,
        kwargs={"autocommit": True},
        configure=register_vector,
        open=False,
        name="semsearch",
    )
    pool.open(wait=True, timeout=30)
    return Database(url, pool)


class Database:
    """A connection pool to one Postgres and the collections in it.

    Example::

        with semsearch.connect() as db:
            col = db.create_collection("movies", dims=1536, compression="bit")
    """

    def __init__(self, url: str, pool: ConnectionPool) -> None:
        self._url = url
        self.pool = pool

    @property
    def url(self) -> str:
        """The connection URL (also of the embedded server, for psql and friends)."""
        return self._url

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection with pgvector's types registered."""
        with self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Database {_redact(self._url)}>"

    def create_collection(
        self,
        name: str,
        *,
        dims: int | None = None,
        model: str | None = None,
        embedder: Embedder | None = None,
        compression: str | None = None,
        storage: str = "vector",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        oversample: float | None = None,
        text_config: str = "english",
    ) -> Collection:
        """Create a collection (its table, HNSW index on the compressed copy, catalog row).

        ``model`` names a built-in embedder (``"local"``, ``"text-embedding-3-small"``,
        ...) or, with precomputed vectors, any label; ``embedder=`` takes any
        :class:`Embedder` instead. ``compression`` is ``bit``, ``halfvec``, ``none``,
        ``mrl:<d>`` or ``mrl-bit:<d>`` (default: ``bit`` from 1024 dims, else ``halfvec``).
        ``storage="halfvec"`` keeps the full vectors at half precision.

        Example::

            db.create_collection("movies", dims=1536, compression="bit", model="text-embedding-3-small")
            db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        """
        if isinstance(name, str) and len(name) > MAX_USER_NAME:
            raise InvalidNameError(f"expected a collection name of at most {MAX_USER_NAME} characters, got {len(name)}")
        info = ddl.make_info(
            name,
            dims=dims,
            model=model,
            embedder=embedder,
            compression=compression,
            storage=storage,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            oversample=oversample,
            text_config=text_config,
        )
        with self.connection() as conn, conn.transaction():
            exists = conn.execute("SELECT 1 FROM semsearch.collections WHERE name = %s", [name]).fetchone()
            if exists:
                raise CollectionExistsError(f"expected a new collection name, got existing {name!r}")
            try:
                conn.execute("SELECT %s::regconfig", [text_config])
            except psycopg.errors.UndefinedObject as exc:
                raise ConfigurationError(f"expected a text search configuration, got {text_config!r}") from exc
            for stmt in ddl.create_statements(info):
                conn.execute(stmt)
        return self.collection(name, embedder=embedder)

    def _info(self, name: str) -> CollectionInfo:
        check_name(name)
        with self.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(sql.SQL("SELECT {} FROM semsearch.collections WHERE name = %s").format(_INFO_COLUMNS), [name])
                .fetchone()
            )
        if row is None:
            raise CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")
        return CollectionInfo.from_row(row)

    def collection(self, name: str, *, embedder: Embedder | None = None) -> Collection:
        """Open an existing collection.

        Example::

            movies = db.collection("movies")
        """
        info = self._info(name)
        if embedder is not None and embedder.dims != info.dims:
            raise ConfigurationError(f"expected an embedder of {info.dims} dims for {name!r}, got {embedder.dims}")
        return Collection(self, info, embedder)

    def collections(self) -> list[CollectionInfo]:
        """Every collection's catalog row, by name."""
        with self.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(sql.SQL("SELECT {} FROM semsearch.collections ORDER BY name").format(_INFO_COLUMNS))
                .fetchall()
            )
        return [CollectionInfo.from_row(r) for r in rows]

    def drop_collection(self, name: str, *, missing_ok: bool = False) -> None:
        """Drop a collection's table and catalog row."""
        check_name(name)
        with self.connection() as conn, conn.transaction():
            if conn.execute("SELECT 1 FROM semsearch.collections WHERE name = %s", [name]).fetchone() is None:
                if missing_ok:
                    return
                raise CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")
            for stmt in ddl.drop_statements(name):
                conn.execute(stmt)

    def alter_collection(
        self,
        name: str,
        *,
        compression: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construction: int | None = None,
        oversample: float | None = None,
        concurrently: bool = True,
    ) -> Collection:
        """Change a collection's compression plan, HNSW parameters or oversampling.

        A new index is built next to the live one (``CREATE INDEX CONCURRENTLY`` by
        default, so writes and searches go on), then one short transaction swaps
        it in together with the catalog's query templates.

        Example::

            db.alter_collection("movies", compression="mrl:512")
        """
        old = self._info(name)
        new = ddl.replan(
            old,
            compression=compression,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            oversample=oversample,
        )
        with self.connection() as conn:
            if ddl.unchanged(old, new):
                conn.execute(ddl.oversample_statement(new))
                return self.collection(name)
            conn.execute(ddl.drop_next_index_statement(new, concurrently=concurrently))
            if concurrently:
                # CREATE INDEX CONCURRENTLY runs outside a transaction: session settings, reset after
                for stmt in ddl.build_settings_statements(local=False):
                    conn.execute(stmt)
                try:
                    conn.execute(ddl.build_index_statement(new, concurrently=True))
                finally:
                    conn.execute("RESET maintenance_work_mem")
                    conn.execute("RESET min_parallel_table_scan_size")
                with conn.transaction():
                    for stmt in ddl.swap_index_statements(new):
                        conn.execute(stmt)
            else:
                with conn.transaction():
                    for stmt in [
                        *ddl.build_settings_statements(local=True),
                        ddl.build_index_statement(new, concurrently=False),
                        *ddl.swap_index_statements(new),
                    ]:
                        conn.execute(stmt)
        return self.collection(name)
