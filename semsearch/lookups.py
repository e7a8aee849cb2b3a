"""What :class:`~semsearch.collection.Collection` looks up besides one search: rows, many queries, neighbours.

``get`` sends :mod:`semsearch.stored`' statement; ``search_many`` checks and plans each
query as ``search`` does and sends them all in one round trip (:mod:`semsearch.batch`);
``more_like`` reads a stored row's vector and searches with it, leaving the row out
(:mod:`semsearch.paging`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, cast

import psycopg

from semsearch import batch, guards, ingest, paging, searching, stored
from semsearch.faces import Searchable
from semsearch.handle import rereads
from semsearch.passages import edits
from semsearch.results import SearchResult


class Lookups:
    """The lookups of :class:`~semsearch.collection.Collection` (a mixin; use a collection)."""

    def get(
        self, keys: str | int | Iterable[str | int], *, tenant: str | None = None, fresh: bool = False
    ) -> list[stored.Row]:
        """The stored rows with these keys, in the order asked; a key not stored is simply absent.

        ``tenant`` keeps that tenant's rows only. Each :class:`~semsearch.stored.Row` says
        whether it is ``embedded`` yet (a row added with ``defer=True`` is not, until backfill).

        Example::

            [r.key for r in col.get(["m2", "nope", "m1"])]     # ['m2', 'm1']
            col.get("m1")[0].metadata                         # {'year': 1995}
        """
        col = _collection(self)
        if col.info.passages is not None:  # documents: put together again from their passages
            stmt, params = edits.passages_statement(col.layout, keys, tenant)
            parts = col.db.read(lambda conn: conn.execute(stmt, params).fetchall(), fresh=fresh)
            return edits.as_documents(parts, params["keys"])
        stmt, params = stored.get_statement(col.layout, keys, tenant=tenant)
        found = col.db.read(lambda conn: conn.execute(stmt, params).fetchall(), fresh=fresh)
        return [stored.as_row(r) for r in found]

    def search_many(
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
        fresh: bool = False,
    ) -> list[SearchResult]:
        """One :meth:`search` per query text (or per row of ``vectors``), in one round trip; results in order.

        The options are :meth:`search`'s and apply to every query; the texts are embedded in
        one call. Each result is what ``search`` returns for that query alone.

        Example::

            results = col.search_many(["cats", "dogs"], k=3)
            [r.keys for r in results]                         # [['a', ...], ['b', ...]]
            col.search_many(vectors=q_matrix, k=10, where={"lang": "es"})
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold)
        search = dict(
            k=page.fetch, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact, where=where,
            tenant=tenant,
        )  # fmt: skip
        with col.db.router.pinned(fresh=fresh):
            for attempt in (1, 2, 3):
                requests, todo = batch.check_requests(
                    dims=col.dims, name=col.name, tenant_required=col.info.tenant_required, queries=queries,
                    vectors=vectors, search=search, fusion=(fusion, vector_weight, text_weight),
                )  # fmt: skip
                if todo:
                    embedded = col.embedder.embed([text for _, text in todo])
                    requests = batch.with_embeddings(requests, todo, embedded, dims=col.dims)
                info, timeout = col.info, col.db.search_timeout
                plans = [
                    searching.plan(col.layout, col.name, info.oversample, info.ef_search, r, timeout=timeout)
                    for r in requests
                ]
                try:
                    found, checked = col.db.read(partial(batch.execute, plans=plans, check=col.name), fresh=fresh)
                except psycopg.errors.QueryCanceled as exc:
                    raise guards.timed_out(exc, timeout) from None
                except psycopg.OperationalError as exc:
                    if attempt > 1:
                        raise guards.unanswered(exc) from None
                    col.db.liveness.revive(col.db.pool)
                    continue
                except psycopg.errors.UndefinedObject:
                    raise guards.dropped(col.name) from None
                except psycopg.Error as exc:
                    # made from a row changed meanwhile (a query vector of a switched model's dims)?
                    if attempt > 2 or not rereads(exc) or not col._reload(read=True):
                        raise
                else:
                    if col._answered(col.name, checked):
                        break
                # the definition changed (migrate-model, alter, distribute): search again with the new one
        if guards.asks_for_tenants(info, tenant, next((rows for rows in found if rows), [])):
            any_tenant = col.db.read(lambda conn: conn.execute(guards.any_tenant(info)).fetchone(), fresh=fresh)
            guards.check_tenants(col.name, tenant, any_tenant)
        results = [
            page.cut(searching.hits(rows, r, indexed=col._indexed)) for rows, r in zip(found, requests, strict=True)
        ]
        if any(r.unindexed for r in results):
            guards.warn_unindexed(col.name)
        return results

    def more_like(
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
        fresh: bool = False,
    ) -> SearchResult:
        """The ``k`` rows nearest to the stored row ``key`` (by its vector), the row itself left out.

        A vector :meth:`search` with the row's stored full vector (its options are
        search's); an unknown key, or a row still waiting for its embedding, raises
        :class:`~semsearch.errors.InvalidInputError`. ``tenant`` also requires the row to be
        that tenant's. Two round trips: the row's vector, then the search.

        Example::

            col.more_like("m1", k=5).keys                     # the 5 movies closest to m1
            col.more_like("m1", k=5, where={"year": {"$gte": 2000}}, score_threshold=0.5)
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold, exclude=ingest.check_key(key))
        stmt, params = stored.vector_statement(col.layout, key, tenant=tenant)
        found = col.db.read(lambda conn: conn.execute(stmt, params).fetchone(), fresh=fresh)
        vector = stored.stored_vector(found, cast(str, page.exclude), col.name)
        return col._search(
            page, (None, None, None), fresh=fresh, query=None, vector=vector, mode="vector", oversample=oversample,
            ef_search=ef_search, exact=exact, where=where, tenant=tenant,
        )  # fmt: skip


def _collection(obj: Lookups) -> Searchable:
    return cast(Searchable, obj)
