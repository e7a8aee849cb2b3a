"""A collection: one embedding space in one table; add, delete and search it.

Written once, for asyncio, in ``semsearch/aio/collection.py``; ``semsearch/collection.py``
(the sync :class:`~semsearch.Collection`) is generated from it by ``tools/make_sync.py``. The hot path
(count, add, add_many, delete, search; get, search_many, more_like in
:mod:`semsearch.aio.lookups`; doctor in :mod:`semsearch.aio.upkeep`; pending, quarantined in
:mod:`semsearch.aio.deferred`) is written once, for asyncio; the long maintenance calls (explain,
backfill, evaluate, sweep, tune, tune_hybrid, an index build) run their one sync implementation,
in a worker thread for the async collection (:func:`semsearch.aio.flavour.offload`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from semsearch import catalog, guards, paging, search_request, searching, session_settings, stored
from semsearch.aio import repairs, writes
from semsearch.aio.deferred import AsyncDeferred
from semsearch.aio.faces import Connections
from semsearch.aio.flavour import Records, aembed
from semsearch.aio.lookups import AsyncLookups, any_tenant
from semsearch.aio.measuring import AsyncMeasuring
from semsearch.aio.pending import awaitable
from semsearch.aio.retrying import Trip, answered
from semsearch.aio.search import execute
from semsearch.aio.upkeep import AsyncUpkeep
from semsearch.collection_info import CollectionInfo
from semsearch.embeddings import Embedder
from semsearch.handle import Handle, rereads
from semsearch.passages import edits
from semsearch.results import AddResult, SearchResult

if TYPE_CHECKING:
    pass


class AsyncCollection(Handle, AsyncMeasuring, AsyncLookups, AsyncDeferred, AsyncUpkeep):
    """Rows of text with their embeddings, searchable by meaning.

    Get one from the database's ``create_collection`` or ``collection``.

    Example::

        col = await db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        await col.add(keys=["a", "b"], contents=["cats purr", "dogs bark"])
        (await col.search("kittens", k=1))[0].key     # 'a'
    """

    def __init__(
        self, db: Connections, info: CollectionInfo, embedder: Embedder | None = None, *, passages: Any = None
    ) -> None:
        super().__init__(info, embedder, passages)
        self.db = db

    if True:  # ASYNC
        pass  # no len(): it would be a round trip; `await col.count()`
    else:

        def __len__(self) -> int:
            return self.count()

        def __bool__(self) -> bool:
            # a collection is a handle: ``if col:`` must not run COUNT(*) through __len__
            return True

    @awaitable
    async def count(self, *, where: Mapping[str, Any] | None = None, tenant: str | None = None) -> int:
        """Rows stored (embedded or pending); ``where`` and ``tenant`` count those a search's filter keeps.

        Example::

            await col.count(where={"year": {"$gte": 2000}}, tenant="acme")
        """
        for attempt in (1, 2):
            documents = self.info.passages is not None  # a collection with passages counts its documents
            stmt, params = stored.count_statement(self.layout, where=where, tenant=tenant, documents=documents)
            try:  # the catalog row is checked in the same round trip, as searches do
                async with self.db.connection() as conn, conn.pipeline():
                    found = await conn.execute(guards.CHECK, [self.name])
                    cur = await conn.execute(stmt, params)
                    row = await cur.fetchone()
                    checked = guards.checked(await found.fetchone())
            except psycopg.Error as exc:
                if attempt > 1 or not rereads(exc) or not await self._reload():
                    raise
                continue
            if self._answered(self.name, checked):  # the catalog row and the index's state, as a search's check
                break  # else the definition changed (a model switch): count the live table
        assert row is not None
        return int(row[0])

    @awaitable
    async def add(
        self,
        keys: Sequence[str | int],
        contents: Sequence[str],
        *,
        embeddings: Any = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        tenant: str | Sequence[str | None] | None = None,
        defer: bool = False,
    ) -> AddResult:
        """Insert or update rows by key, in one transaction.

        Without ``embeddings`` the collection's embedder embeds the texts, except
        those whose identical text is already stored (its vector is reused).
        ``defer=True`` calls no embedder: new texts are stored pending, invisible
        to vector search until ``backfill`` embeds them (cheap enough for a
        web request's commit hook).

        Example::

            await col.add(keys=["m1"], contents=["Toy Story"], embeddings=vecs, metadata=[{"year": 1995}])
            await col.add(keys=["t1"], contents=["invoice 42"], tenant="acme")   # one tenant for the batch

        A collection left without its HNSW index by a killed bulk load or build gets it
        back first (see ``doctor``; checked at most every 10 s per handle).
        """
        await repairs.ensure_index(self)
        return await writes.add(self, keys, contents, embeddings, metadata, tenant, defer=defer, copy_first=False)

    @awaitable
    async def add_many(
        self,
        records: Records,
        *,
        batch_size: int = 1000,
        progress: bool = False,
        total: int | None = None,
        bulk: bool | None = None,
        defer: bool = False,
        autotune: bool = True,
    ) -> AddResult:
        """Stream ``{"key", "content", "metadata"?, "embedding"?, "tenant"?}`` records in batches.

        Each batch is one transaction: after a failure the committed batches stay,
        and running the same input again re-embeds nothing that is stored. The async
        collection also takes an async iterable.

        ``bulk`` builds the HNSW index once after loading instead of updating it
        row by row (several times faster; searches during the load scan exactly).
        By default it is on when the collection is empty. ``defer`` stores texts
        without embedding them (see ``add``). Afterwards, a collection created with
        ``autotune=True`` (the default) of at least 1,000 rows is tuned to recall@10 >=
        0.99 after a bulk load, or when it has grown 4x since its last tune
        (:func:`semsearch.tune.autotune`; ``result.tuned`` says what it chose);
        ``autotune=False`` skips that for this call.

        Example::

            await col.add_many(({"key": i, "content": t} for i, t in enumerate(texts)), progress=True)
        """
        return await writes.add_many(
            self, records, batch_size=batch_size, progress=progress, total=total, bulk=bulk, defer=defer,
            autotune=autotune,
        )  # fmt: skip

    @awaitable
    async def delete(
        self,
        keys: str | int | Iterable[str | int] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        all_rows: bool = False,
    ) -> int:
        """Delete rows by key (one key or a list of keys), or every row a filter keeps; return how many.

        ``where`` (a search's filter) and ``tenant`` delete by filter; without keys, a
        non-empty filter or ``all_rows=True``, nothing is deleted and an error says so.

        Example::

            await col.delete("doc1")            # one key, not the keys "d", "o", "c", "1"
            await col.delete(["doc1", 42])
            await col.delete(where={"year": {"$lt": 1990}}, tenant="acme")
        """
        if self.info.passages is not None and keys is not None and where is None and not all_rows:
            return await writes.delete(self, edits.deletion(keys, tenant))  # documents: all their passages
        return await writes.delete(self, stored.deletion(keys, where=where, tenant=tenant, all_rows=all_rows))

    @awaitable
    async def search(
        self,
        query: str | None = None,
        *,
        vector: Any = None,
        k: int = 10,
        mode: str = "vector",
        oversample: float | None = None,
        ef_search: int | None = None,
        exact: bool = False,
        where: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        fusion: str | None = None,
        vector_weight: float | None = None,
        text_weight: float | None = None,
        offset: int = 0,
        score_threshold: float | None = None,
        fresh: bool = False,
        passages: bool = False,
    ) -> SearchResult:
        """The ``k`` rows best matching a text or a vector, best first, in one SQL statement.

        ``mode="vector"`` (default): a coarse HNSW pass over the compressed copy
        fetches ``k * oversample`` candidates that the full vectors rescore exactly (``none`` and
        ``halfvec`` already rank as the full vectors do: unfiltered they fetch ``k`` rows (halfvec ``2k``), the
        oversample widens ``hnsw.ef_search``); scores are cosine similarities. ``exact=True`` scans every row.
        ``mode="text"``: rows with any of the query's words, scored by BM25 (over the
        collection's own statistics). ``mode="hybrid"``: both lists fused in SQL, by
        ``fusion="blend"`` (weighted scores scaled to [0, 1] per list) or ``"rrf"``
        (weighted reciprocal ranks); unset, the setting ``tune_hybrid`` stored, else
        blend with weights 0.3 (vector) / 0.7 (text). :class:`~semsearch.Hit` says what
        ``score`` means in each mode.
        ``where`` filters on metadata (see :mod:`semsearch.filters`); ``tenant``
        keeps one tenant's rows. Filtered searches still return ``k`` rows whenever
        ``k`` rows match.
        With read replicas (``connect(replicas=...)``) a search runs on one of them and sees
        a write only once the replica has replayed it; ``fresh=True`` reads the primary
        (the async database has no replicas: it always reads the primary).
        ``offset`` skips the best rows (the next page: the search runs for ``k + offset``
        rows, see :mod:`semsearch.paging`); ``score_threshold`` drops hits scored below it
        (then ``complete`` is False when fewer than ``k`` reach it).
        In a collection with passages a hit is a document: the best ``k`` distinct documents, each
        with ``passages`` (those found, best first) and, for text and hybrid, a highlighted
        ``snippet``; ``passages=True`` returns the best ``k`` passages (each hit's ``passage``).

        Example::

            await col.search("a toddler movie about cats", k=5)
            await col.search(vector=q, k=5, exact=True, where={"year": {"$gte": 2000}})
            await col.search("sleepy hollow", mode="hybrid", tenant="acme")
            await col.search("cats", k=10, offset=10, score_threshold=0.3)     # page 2, good matches only
        """
        args = dict(
            query=query, vector=vector, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant,
        )  # fmt: skip
        page = paging.check_page(k, offset, score_threshold)
        if self.info.passages is not None or passages:  # documents (see AsyncLookups._documents)
            return await self._documents(
                page, (fusion, vector_weight, text_weight), passages=passages, fresh=fresh, **args
            )
        return await self._search(page, (fusion, vector_weight, text_weight), fresh=fresh, **args)

    async def _search(
        self, page: paging.Page, fused: tuple[str | None, float | None, float | None], *, fresh: bool, **search: Any
    ) -> SearchResult:
        """One search for a page's rows, on one server, following a migrate-model switch."""
        fusion, vector_weight, text_weight = fused
        args = {**search, "k": page.fetch}
        request = search_request.with_fusion(await self._request(**args), fusion, vector_weight, text_weight)

        async def round_trip(changed: bool) -> Trip:
            nonlocal request
            if changed:  # made again from the new definition (a query vector of a switched model's dims)
                request = search_request.with_fusion(await self._request(**args), fusion, vector_weight, text_weight)
            info, timeout = self.info, self.db.search_timeout
            p = searching.plan(self.layout, self.name, info.oversample, info.ef_search, request, timeout=timeout)
            # is this handle's catalog row still the name's, its index there? Checked in the same round trip
            check = searching.check_for(p, self.name, due=self._check_due)
            with session_settings.searching():  # its connection keeps the settings its session carries
                rows, found = await self.db.read(partial(execute, p=p, check=check), fresh=fresh)
            return (rows, info), check, found

        # one server for the whole search: its catalog check and a reload read where its statement runs
        async with self.db.pinned(fresh=fresh):
            rows, info = await answered(self, round_trip)
        if guards.asks_for_tenants(info, request.tenant, rows):  # a tenant in a collection where none has one?
            guards.check_tenants(
                self.name, request.tenant, await self.db.read(partial(any_tenant, info=info), fresh=fresh)
            )
        result = page.cut(searching.hits(rows, request, indexed=self._indexed))
        if result.unindexed:
            guards.warn_unindexed(self.name)
        return result

    async def _request(self, **search: Any) -> search_request.Request:
        """Check a search's arguments (before any round trip), then embed its query text if needed."""
        request = search_request.check_request(
            dims=self.dims, name=self.name, tenant_required=self.info.tenant_required, **search
        )
        if request.mode == "text":
            return request
        given = search["vector"]
        if given is None:
            given = (await aembed(self.embedder, [search["query"]]))[0]
        return search_request.with_vector(request, given, dims=self.dims)

    async def _reload(self, *, read: bool = False) -> bool:
        """Re-read the catalog row (``read``: where searches read); whether the definition changed.

        See :meth:`Handle._follow`: an embedder made from an old model is dropped.
        """
        if read:
            return self._follow(await self.db.read(partial(_read_info, name=self.name)))
        async with self.db.connection() as conn:
            return self._follow(await _read_info(conn, self.name))


async def _read_info(conn: psycopg.AsyncConnection[Any], name: str) -> CollectionInfo:
    """One collection's catalog row (:func:`semsearch.catalog.read`)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(catalog.select_statement(name))
    return catalog.found(await cur.fetchone(), name)
