"""A collection's upkeep: its HNSW index rebuilt, checked and repaired, and what a search runs explained.

``rebuild_index`` builds the index next to the live one and swaps it in (the database's
``replace_index``); ``doctor`` finds what a killed bulk load or build leaves and, with
``repair=True``, fixes it (:mod:`semsearch.doctor`, :mod:`semsearch.aio.repairs`); ``explain``
shows the SQL a search runs and its plan (:mod:`semsearch.explaining`, the one sync
implementation, in a worker thread for the async collection). Written once, for asyncio, in
``semsearch/aio/upkeep.py``; ``semsearch/upkeep.py`` is generated from it (``tools/make_sync.py``).

Example::

    if not (await col.doctor()).healthy:
        await col.doctor(repair=True)
    print(await col.explain("jet engines", k=10))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

import psycopg
from tqdm import tqdm

from semsearch import explaining, search_request
from semsearch.aio import repairs
from semsearch.aio.faces import Stored
from semsearch.aio.flavour import offload
from semsearch.aio.pending import awaitable
from semsearch.doctor import DoctorReport


class AsyncUpkeep:
    """The upkeep of a collection: its index and what a search runs (a mixin; use a collection)."""

    @awaitable
    async def rebuild_index(self, *, progress: bool = False, concurrently: bool = True) -> float:
        """(Re)build the HNSW index on the compressed copy next to the live one and swap it in; return seconds.

        Searches go on during the build (and writes too with ``concurrently``); see
        the database's ``replace_index``.

        Example::

            await col.rebuild_index()
        """
        col = _collection(self)
        started = time.perf_counter()
        if progress:
            tqdm.write(f"building the hnsw index of {col.name} ...")
        await col._reload()  # the index the catalog defines now, on the table it names now
        await col.db.replace_index(col.info, concurrently=concurrently)
        return time.perf_counter() - started

    @awaitable
    async def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check the HNSW index for what a killed bulk load or build leaves; ``repair`` fixes it.

        A missing or invalid index is built next to the live one and swapped in (writes and
        searches go on); a leftover ``_hnsw_next`` is dropped. Nothing is done while another
        session builds or bulk-loads the collection (``report.busy``). See :mod:`semsearch.doctor`.

        Example::

            report = await col.doctor()
            if not report.healthy:
                print(await col.doctor(repair=True))    # docs: healthy - repaired: built col_docs_hnsw
        """
        col = _collection(self)
        found = await repairs.diagnose(col)
        return await repairs.repair(col, found) if repair else found

    @awaitable
    async def explain(
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
        settings: Mapping[str, str] | None = None,
        fresh: bool = False,
        fusion: str | None = None,
        vector_weight: float | None = None,
        text_weight: float | None = None,
    ) -> explaining.Explained:
        """The SQL a search runs, its settings and ``EXPLAIN (ANALYZE, BUFFERS)`` of it (nothing is changed).

        ``settings`` adds ``SET LOCAL`` planner settings for this explain only, e.g.
        ``{"enable_seqscan": "off"}`` to see whether the index *can* serve the query.
        It runs where the search would (a read replica, or the primary with ``fresh=True``);
        the async collection runs the sync explain in a worker thread. A hybrid search shows the fusion
        of its two lists, as ``semsearch.hybrid_search()`` runs it.

        Example::

            print(await col.explain(vector=q, k=10))     # look for "Index Scan using col_movies_hnsw"
            (await col.explain("jet engines", mode="text")).plan
            (await col.explain("jet engines", mode="hybrid", fusion="rrf")).sql
        """
        args = dict(
            query=query, vector=vector, k=k, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant, fusion=fusion, vector_weight=vector_weight, text_weight=text_weight,
        )  # fmt: skip
        return await offload(self, _explain, args, settings or {}, fresh)


def _collection(obj: AsyncUpkeep) -> Stored:
    return cast(Stored, obj)  # a mixin of the collection, which has that face (checked there)


def _explain(col: Any, args: dict[str, Any], settings: Mapping[str, str], fresh: bool) -> explaining.Explained:
    """``explain`` on a sync collection: the request checked and embedded, then EXPLAIN where a search reads."""
    fusion, vector_weight, text_weight = (args.pop(name) for name in ("fusion", "vector_weight", "text_weight"))
    request = search_request.with_fusion(col._request(**args), fusion, vector_weight, text_weight)
    if col._check_due:
        col._reload(read=True)  # what a search would run now

    def run(conn: psycopg.Connection[Any]) -> explaining.Explained:
        info = col.info
        return explaining.explain(
            conn, col.layout, info.oversample, info.ef_search, request, extra=settings,
            bm25=(info.bm25_k1, info.bm25_b), hybrid=info.hybrid,
        )  # fmt: skip

    return col.db.read(run, fresh=fresh)
