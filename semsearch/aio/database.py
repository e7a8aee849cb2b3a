"""``semsearch.aio.connect`` and :class:`AsyncDatabase`: collections on psycopg's ``AsyncConnectionPool``.

Opening collections and reading the catalog are awaited here; the DDL and maintenance
calls (create, drop, alter, grant, sync_table, distribute, isolate_tenants, index builds)
run the ONE sync implementation of :class:`~semsearch.Database` in a worker thread, on
the sync database :meth:`AsyncDatabase.twin` opens on first use: the same checks, the
same statements, the same errors (an async copy of them drifted: it skipped the Citus
check and the refusal to drop a synced table's collection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from semsearch import catalog, session_settings
from semsearch.aio.collection import AsyncCollection
from semsearch.aio.flavour import offload
from semsearch.aio.maintenance import AsyncMaintenance
from semsearch.aio.pending import Pending, awaitable
from semsearch.collection_info import CollectionInfo
from semsearch.config import FROM_ENV, FromEnv, check_search_timeout
from semsearch.db import Database
from semsearch.db import connect as connect_sync
from semsearch.errors import ConfigurationError, NotAwaitedError
from semsearch.replicas import ReplicaStatus
from semsearch.server import Liveness, closed, denied, embedded_dir, pool_options, prepare, redact

if TYPE_CHECKING:
    from semsearch.aio.faces import Searchable
    from semsearch.embeddings import Embedder

    # what the mixins' and helpers' methods see of their collection (AsyncCollection(self, ...) checks Connections)
    _: type[Searchable] = AsyncCollection

T = TypeVar("T")


def connect(
    url: str | None = None,
    *,
    upgrade: bool | None = None,
    max_connections: int = 4,
    search_timeout: float | FromEnv | None = FROM_ENV,
) -> Connecting:
    """Open semsearch on a Postgres server, for asyncio (FastAPI, aiohttp, ...).

    The same URL resolution as :func:`semsearch.connect`: ``url``, else
    ``SEMSEARCH_DATABASE_URL``, else the embedded server (started, or reused, once, in
    a worker thread: it is a blocking start). Searches and writes then run on an
    ``AsyncConnectionPool`` of ``max_connections``; ``search_timeout`` is :func:`semsearch.connect`'s.
    Await it, or use it in ``async with`` (which closes the pool at the end).

    Example::

        async with await semsearch.aio.connect() as db:
            col = await db.collection("docs")
            hits = await col.search("kittens", k=3)
    """
    return Connecting(_connect(url, upgrade, max_connections, search_timeout), "semsearch.aio.connect(...)")


async def _connect(
    url: str | None, upgrade: bool | None, max_connections: int, search_timeout: float | FromEnv | None
) -> AsyncDatabase:
    timeout = check_search_timeout(search_timeout)
    embedded = embedded_dir(url)
    url = await asyncio.to_thread(prepare, url, upgrade=upgrade)
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        url, configure=register_vector_async, **pool_options(max_connections)
    )
    await pool.open(wait=True, timeout=30)
    return AsyncDatabase(url, pool, embedded=embedded, search_timeout=timeout)


class Connecting(Pending["AsyncDatabase"]):
    """:func:`connect` before it is awaited: ``await`` it, or ``async with`` it."""

    _db: AsyncDatabase

    async def __aenter__(self) -> AsyncDatabase:
        self._db = await self
        return self._db

    async def __aexit__(self, *exc: object) -> None:
        await self._db.close()

    def __enter__(self) -> NoReturn:
        self._coro.close()
        raise NotAwaitedError(f"expected `async with {self._call}` or `await {self._call}`, got `with`")


class AsyncDatabase(AsyncMaintenance):
    """A pool of async connections to one Postgres and the collections in it.

    Example::

        db = await semsearch.aio.connect()
        col = await db.create_collection("docs", model="local", dims=256)
        await db.close()
    """

    def __init__(
        self,
        url: str,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        *,
        embedded: Path | None = None,
        search_timeout: float | FromEnv | None = FROM_ENV,
    ) -> None:
        self._url = url
        self.pool = pool
        #: whether a connection broke, and how to start the embedded server (``embedded``, its data dir) again
        self.liveness = Liveness(url, embedded)
        #: seconds one search statement may run (None: no limit), see :func:`semsearch.connect`
        self.search_timeout = check_search_timeout(search_timeout)
        self._twin: Database | None = None
        self._twin_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The connection URL (also of the embedded server)."""
        return self._url

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled autocommit async connection with pgvector's types registered (see :meth:`revive`)."""
        if self.pool.closed:
            raise closed()  # not the pool's PoolClosed: a user sees semsearch's errors only
        if self.liveness.lost:
            await self.revive()
        async with self.pool.connection() as conn:
            try:
                if session_settings.lent(conn):
                    await conn.execute(session_settings.RESET)  # a search's time limit is not this use's
                yield conn
            except psycopg.errors.InsufficientPrivilege as exc:
                raise denied(exc) from exc
            except psycopg.OperationalError:
                if conn.broken:
                    await asyncio.to_thread(self.liveness.broke)
                raise

    async def revive(self) -> None:
        """After a connection broke: the server answers (the embedded one started again), else DatabaseError at once.

        Then the pool's dead connections are replaced (:attr:`semsearch.Database.liveness`'s ``revive``).

        Example::

            await db.revive()
        """
        await asyncio.to_thread(self.liveness.revive)
        await self.pool.check()

    @awaitable
    async def close(self) -> None:
        """Close the pool (and the sync database of the maintenance calls, when one was opened)."""
        twin, self._twin = self._twin, None
        if twin is not None:
            await asyncio.to_thread(twin.close)
        await self.pool.close()

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> NoReturn:
        raise NotAwaitedError("expected `async with` on an AsyncDatabase, got `with`")

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"<AsyncDatabase {redact(self._url)}>"

    @asynccontextmanager
    async def pinned(self, *, fresh: bool = False) -> AsyncIterator[None]:
        """Every :meth:`read` inside the block on one server: the primary (the async database has no replicas).

        Example::

            async with db.pinned():
                await col.search("cats")
        """
        yield

    async def read(self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]], *, fresh: bool = False) -> T:
        """``await fn(conn)`` on a pooled connection of the primary (``fresh`` changes nothing: no replicas here).

        ``fn`` must only read (as for :meth:`semsearch.Database.read`, which may run it on a replica).

        Example::

            async def in_recovery(conn):
                return (await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone())[0]

            await db.read(in_recovery)     # False
        """
        async with self.connection() as conn:
            return await fn(conn)

    @property
    def replicas(self) -> tuple[ReplicaStatus, ...]:
        """The read replicas: none (an async database reads its primary; :func:`semsearch.connect` routes reads)."""
        return ()

    async def twin(self) -> Database:
        """The sync :class:`~semsearch.Database` on the same server that runs the long maintenance calls.

        Opened on first use (two connections), closed with this database: ``alter_collection``,
        ``tune``, ``evaluate``, ``backfill``, index builds, ... run their one sync implementation
        on it in a worker thread (:func:`semsearch.aio.flavour.offload`).

        Example::

            (await db.twin()).collections()
        """
        async with self._twin_lock:
            if self._twin is None:
                self._twin = await asyncio.to_thread(
                    connect_sync, self.url, upgrade=False, max_connections=2, replicas=(),
                    search_timeout=self.search_timeout,
                )  # fmt: skip
            return self._twin

    @awaitable
    async def create_collection(
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
        autotune: bool = True,
        tenant_required: bool = False,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        distribute_by: str | None = None,
        passages: Any = None,
    ) -> AsyncCollection:
        """Create a collection: :meth:`semsearch.Database.create_collection`, run in a worker thread.

        The one implementation of the checks and DDL (the Citus check, the lock between two
        creators of one name) is the sync one; the arguments and errors are its.

        Example::

            col = await db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        """
        await offload(
            self, Database.create_collection, name, dims=dims, model=model, embedder=embedder,
            compression=compression, storage=storage, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction,
            oversample=oversample, text_config=text_config, autotune=autotune, tenant_required=tenant_required,
            bm25_k1=bm25_k1, bm25_b=bm25_b, distribute_by=distribute_by, passages=passages,
        )  # fmt: skip
        return await self.collection(name, embedder=embedder, passages=passages)

    @awaitable
    async def info(self, name: str) -> CollectionInfo:
        """One collection's catalog row (:class:`~semsearch.errors.CollectionNotFoundError` if none)."""
        async with self.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            return catalog.found(await (await cur.execute(catalog.select_statement(name))).fetchone(), name)

    @awaitable
    async def collection(self, name: str, *, embedder: Embedder | None = None, passages: Any = None) -> AsyncCollection:
        """Open an existing collection (``passages``: the splitter of one made with a custom splitter).

        Example::

            movies = await db.collection("movies")
        """
        info = await self.info(name)
        if embedder is not None and embedder.dims != info.dims:
            raise ConfigurationError(f"expected an embedder of {info.dims} dims for {name!r}, got {embedder.dims}")
        return AsyncCollection(self, info, embedder, passages=passages)

    @awaitable
    async def collections(self) -> list[CollectionInfo]:
        """Every collection's catalog row, by name."""
        async with self.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(catalog.SELECT_ALL)).fetchall()
        return [CollectionInfo.from_row(r) for r in rows]

    @awaitable
    async def drop_collection(self, name: str, *, missing_ok: bool = False) -> None:
        """Drop a collection: :meth:`semsearch.Database.drop_collection` (not one a table is synced to), in a thread.

        Example::

            await db.drop_collection("docs", missing_ok=True)
        """
        await offload(self, Database.drop_collection, name, missing_ok=missing_ok)
