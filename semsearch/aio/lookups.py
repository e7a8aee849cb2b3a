"""What :class:`~semsearch.aio.AsyncCollection` looks up besides one search, awaited.

The sync API's statements and checks (:mod:`semsearch.stored`, :mod:`semsearch.batch`,
:mod:`semsearch.paging`); see :mod:`semsearch.lookups` for what each call does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import psycopg

from semsearch import batch, guards, ingest, paging, searching, stored
from semsearch.aio.batch import execute
from semsearch.aio.faces import Lookable
from semsearch.aio.pending import awaitable
from semsearch.embeddings import aembed
from semsearch.handle import rereads
from semsearch.passages import edits
from semsearch.results import SearchResult


class AsyncLookups:
    """The lookups of :class:`~semsearch.aio.AsyncCollection` (a mixin; use a collection)."""

    @awaitable
    async def get(self, keys: str | int | Iterable[str | int], *, tenant: str | None = None) -> list[stored.Row]:
        """The stored rows with these keys, in the order asked (see :meth:`semsearch.Collection.get`).

        Example::

            [r.key for r in await col.get(["m2", "nope", "m1"])]     # ['m2', 'm1']
        """
        col = _collection(self)
        if col.info.passages is not None:  # documents: put together again from their passages
            stmt, params = edits.passages_statement(col.layout, keys, tenant)
            async with col.db.connection() as conn:
                parts = await (await conn.execute(stmt, params)).fetchall()
            return edits.as_documents(parts, params["keys"])
        stmt, params = stored.get_statement(col.layout, keys, tenant=tenant)
        async with col.db.connection() as conn:
            found = await (await conn.execute(stmt, params)).fetchall()
        return [stored.as_row(r) for r in found]

    @awaitable
    async def search_many(
        self,
        queries: Sequence[str] | None = None,
        *,
        vectors: Any = None,
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
    ) -> list[SearchResult]:
        """One search per query text or vector, in one round trip (see :meth:`semsearch.Collection.search_many`).

        Example::

            [r.keys for r in await col.search_many(["cats", "dogs"], k=3)]
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold)
        search = dict(
            k=page.fetch, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact, where=where,
            tenant=tenant,
        )  # fmt: skip
        for attempt in (1, 2, 3):
            requests, todo = batch.check_requests(
                dims=col.dims, name=col.name, tenant_required=col.info.tenant_required, queries=queries,
                vectors=vectors, search=search, fusion=(fusion, vector_weight, text_weight),
            )  # fmt: skip
            if todo:
                embedded = await aembed(col.embedder, [text for _, text in todo])
                requests = batch.with_embeddings(requests, todo, embedded, dims=col.dims)
            info, timeout = col.info, col.db.search_timeout
            plans = [
                searching.plan(col.layout, col.name, info.oversample, info.ef_search, r, timeout=timeout)
                for r in requests
            ]
            try:
                async with col.db.connection() as conn:
                    found, checked = await execute(conn, plans, check=col.name)
            except psycopg.errors.QueryCanceled as exc:
                raise guards.timed_out(exc, timeout) from None
            except psycopg.OperationalError as exc:
                if attempt > 1:
                    raise guards.unanswered(exc) from None
                await col.db.revive()
                continue
            except psycopg.errors.UndefinedObject:
                raise guards.dropped(col.name) from None
            except psycopg.Error as exc:
                # made from a row changed meanwhile (a query vector of a switched model's dims)?
                if attempt > 2 or not rereads(exc) or not await col._reload():
                    raise
            else:
                if col._answered(col.name, checked):
                    break
            # the definition changed (migrate-model, alter, distribute): search again with the new one
        if guards.asks_for_tenants(info, tenant, next((rows for rows in found if rows), [])):
            async with col.db.connection() as conn:
                guards.check_tenants(col.name, tenant, await (await conn.execute(guards.any_tenant(info))).fetchone())
        results = [
            page.cut(searching.hits(rows, r, indexed=col._indexed)) for rows, r in zip(found, requests, strict=True)
        ]
        if any(r.unindexed for r in results):
            guards.warn_unindexed(col.name)
        return results

    @awaitable
    async def more_like(
        self,
        key: str | int,
        *,
        k: int = 10,
        oversample: float | None = None,
        ef_search: int | None = None,
        exact: bool = False,
        where: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        offset: int = 0,
        score_threshold: float | None = None,
    ) -> SearchResult:
        """The ``k`` rows nearest to the stored row ``key`` (see :meth:`semsearch.Collection.more_like`).

        Example::

            (await col.more_like("m1", k=5)).keys
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold, exclude=ingest.check_key(key))
        stmt, params = stored.vector_statement(col.layout, key, tenant=tenant)
        async with col.db.connection() as conn:
            found = await (await conn.execute(stmt, params)).fetchone()
        vector = stored.stored_vector(found, cast(str, page.exclude), col.name)
        return await col._search(
            page, (None, None, None), query=None, vector=vector, mode="vector", oversample=oversample,
            ef_search=ef_search, exact=exact, where=where, tenant=tenant,
        )  # fmt: skip


def _collection(obj: AsyncLookups) -> Lookable:
    return cast(Lookable, obj)  # a mixin of AsyncCollection, which has that face (checked there)
