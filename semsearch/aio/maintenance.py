"""The async database's maintenance calls: each runs the ONE sync implementation in a worker thread.

``alter_collection``, ``distribute_collection``, ``sync_table``, ``unsync_table``,
``synced_tables``, ``grant``, ``isolate_tenants`` and ``replace_index`` are long DDL (an
index built concurrently, rows moved to shards, triggers made): :class:`~semsearch.Database`'s
code runs on the sync database :meth:`AsyncDatabase.twin` opens on first use
(:func:`semsearch.aio.flavour.offload`), so the checks, statements and errors are the sync
ones; a call that returns a collection returns the async handle of it.

Example::

    col = await db.alter_collection("docs", compression="mrl:512")
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from semsearch import table_sync
from semsearch.aio.collection import AsyncCollection
from semsearch.aio.flavour import offload
from semsearch.aio.pending import awaitable
from semsearch.collection_info import CollectionInfo
from semsearch.db import Database

if TYPE_CHECKING:
    from semsearch.embeddings import Embedder


class _Opens(Protocol):
    """What the maintenance calls use of the async database."""

    def collection(
        self, name: str, *, embedder: Embedder | None = None, passages: Any = None
    ) -> Awaitable[AsyncCollection]: ...

    def twin(self) -> Awaitable[Database]: ...


class AsyncMaintenance:
    """The maintenance calls of :class:`~semsearch.aio.AsyncDatabase` (a mixin; use the database)."""

    @awaitable
    async def alter_collection(
        self,
        name: str,
        *,
        compression: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construction: int | None = None,
        oversample: float | None = None,
        autotune: bool | None = None,
        concurrently: bool = True,
    ) -> AsyncCollection:
        """:meth:`semsearch.Database.alter_collection`, run in a worker thread; the altered collection.

        Example::

            await db.alter_collection("movies", compression="mrl:512")
        """
        await offload(
            _database(self), Database.alter_collection, name, compression=compression, hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction, oversample=oversample, autotune=autotune,
            concurrently=concurrently,
        )  # fmt: skip
        return await _database(self).collection(name)

    @awaitable
    async def distribute_collection(self, name: str, *, by: str = "key") -> AsyncCollection:
        """:meth:`semsearch.Database.distribute_collection` (Citus), run in a worker thread.

        Example::

            await db.distribute_collection("docs", by="key")
        """
        await offload(_database(self), Database.distribute_collection, name, by=by)
        return await _database(self).collection(name)

    @awaitable
    async def sync_table(
        self,
        table: str,
        *,
        collection: str,
        key: str,
        text: str | Sequence[str],
        metadata: Sequence[str] = (),
        tenant: str | None = None,
        model: str | None = None,
        dims: int | None = None,
        compression: str | None = None,
        embedder: Embedder | None = None,
        passages: Any = None,
    ) -> AsyncCollection:
        """:meth:`semsearch.Database.sync_table`, run in a worker thread; the synced collection.

        Example::

            products = await db.sync_table("public.products", collection="products", key="id",
                                           text="description", model="local")
        """
        await offload(
            _database(self), Database.sync_table, table, collection=collection, key=key, text=text, metadata=metadata,
            tenant=tenant, model=model, dims=dims, compression=compression, embedder=embedder, passages=passages,
        )  # fmt: skip
        custom = None if passages is None or isinstance(passages, bool) else passages  # a splitter to open it with
        return await _database(self).collection(collection, embedder=embedder, passages=custom)

    @awaitable
    async def unsync_table(self, table: str, *, drop_collection: bool = False) -> table_sync.SyncedTable:
        """:meth:`semsearch.Database.unsync_table`, run in a worker thread.

        Example::

            await db.unsync_table("products", drop_collection=True)
        """
        return await offload(_database(self), Database.unsync_table, table, drop_collection=drop_collection)

    @awaitable
    async def synced_tables(self) -> list[table_sync.SyncedTable]:
        """:meth:`semsearch.Database.synced_tables`, run in a worker thread.

        Example::

            [s.table for s in await db.synced_tables()]    # ['public.products']
        """
        return await offload(_database(self), Database.synced_tables)

    @awaitable
    async def grant(self, role: str, collection: str, *, write: bool = False) -> None:
        """:meth:`semsearch.Database.grant`, run in a worker thread.

        Example::

            await db.grant("web_reader", "docs")
        """
        await offload(_database(self), Database.grant, role, collection, write=write)

    @awaitable
    async def isolate_tenants(self, collection: str, *, setting: str | None = "app.tenant") -> AsyncCollection:
        """:meth:`semsearch.Database.isolate_tenants`, run in a worker thread.

        Example::

            await db.isolate_tenants("docs")
        """
        await offload(_database(self), Database.isolate_tenants, collection, setting=setting)
        return await _database(self).collection(collection)

    @awaitable
    async def replace_index(self, info: CollectionInfo, *, concurrently: bool = True, replan: bool = False) -> None:
        """:meth:`semsearch.Database.replace_index` (build next to the live index, then swap), in a worker thread.

        Example::

            await db.replace_index((await db.collection("movies")).info)    # what rebuild_index() does
        """
        await offload(_database(self), Database.replace_index, info, concurrently=concurrently, replan=replan)


def _database(obj: AsyncMaintenance) -> _Opens:
    return cast(_Opens, obj)  # a mixin of AsyncDatabase, which has that face
