"""``semsearch.aio.connect`` and :class:`AsyncDatabase`: collections on psycopg's ``AsyncConnectionPool``.

Everything a call sends is what the sync :class:`~semsearch.Database` sends: the
statements come from :mod:`semsearch.ddl` and :mod:`semsearch.catalog`, only the
driver calls are awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from semsearch import catalog, changes, ddl
from semsearch.aio.collection import AsyncCollection
from semsearch.aio.pending import Pending, awaitable
from semsearch.catalog import CollectionInfo
from semsearch.config import FROM_ENV, FromEnv, check_search_timeout
from semsearch.ddl import new_info
from semsearch.errors import ConfigurationError, NotAwaitedError
from semsearch.layout import check_name
from semsearch.server import Liveness, closed, denied, embedded_dir, pool_options, prepare, redact

if TYPE_CHECKING:
    from semsearch.aio.faces import Lookable
    from semsearch.embeddings import Embedder

    # what AsyncLookups' methods see of their collection (AsyncCollection(self, ...) below checks Connections)
    _: type[Lookable] = AsyncCollection


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


class AsyncDatabase:
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

    @awaitable
    async def create_collection(
        self, name: str, *, embedder: Embedder | None = None, **settings: Any
    ) -> AsyncCollection:
        """Create a collection; the arguments are :meth:`semsearch.Database.create_collection`'s.

        Example::

            col = await db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        """
        info = new_info(name, embedder=embedder, **settings)
        # two creators of one name: the second waits for the lock, then finds the first one's row
        async with self.connection() as conn, _ddl_lock(conn, name), conn.transaction():
            ddl.check_new(info, await (await conn.execute(ddl.TABLES)).fetchall())
            try:
                await conn.execute(ddl.TEXT_CONFIG_CHECK, [info.text_config])
            except psycopg.errors.UndefinedObject as exc:
                raise ddl.unknown_text_config(info.text_config) from exc
            for stmt in ddl.create_statements(info):
                await conn.execute(stmt)
        return await self.collection(name, embedder=embedder, passages=settings.get("passages"))

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
        """Drop a collection's table and catalog row."""
        check_name(name)
        async with self.connection() as conn, conn.transaction():
            if await (await conn.execute(catalog.EXISTS, [name])).fetchone() is None:
                if missing_ok:
                    return
                raise catalog.not_found(name)
            for stmt in ddl.drop_statements(name):
                await conn.execute(stmt)

    async def rebuild_index(self, info: CollectionInfo) -> None:
        """Build ``info``'s HNSW index next to the live one and swap it in, in one transaction.

        What :meth:`semsearch.Database.replace_index` does with ``concurrently=False``
        (after a bulk load): the build blocks writes, not searches.
        """
        steps = ddl.index_build(info, concurrently=False)
        async with self.connection() as conn, _ddl_lock(conn, info.name), conn.transaction():
            for stmt in [*steps.prepare, *steps.build, *steps.restore, *steps.swap]:
                await conn.execute(stmt)


@asynccontextmanager
async def _ddl_lock(conn: psycopg.AsyncConnection[Any], name: str) -> AsyncIterator[None]:
    """One DDL change of a collection at a time, as :func:`semsearch.changes.ddl_lock` (polled, see there)."""
    while not (await (await conn.execute(changes.TRY_LOCK, [name])).fetchone())[0]:  # type: ignore[index]
        await asyncio.sleep(changes.LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        await conn.execute(changes.UNLOCK, [name])
