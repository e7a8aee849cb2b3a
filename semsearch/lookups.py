# generated from semsearch/aio/lookups.py by tools/make_sync.py: do not edit (edit the source, then `make sync`)
"""What a collection looks up besides one search: rows, many queries, neighbours.

``get`` sends :mod:`semsearch.stored`' statement; ``search_many`` checks and plans each
query as ``search`` does and sends them all in one round trip (:mod:`semsearch.batch`);
``more_like`` reads a stored row's vector and searches with it, leaving the row out
(:mod:`semsearch.paging`).
Written once, for asyncio, in ``semsearch/aio/lookups.py``;
``semsearch/lookups.py`` is generated from it (``tools/make_sync.py``).

Example::

    [r.keys for r in col.search_many(["cats", "dogs"], k=3)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import psycopg

from semsearch import batch, guards, ingest, paging, search_request, searching, stored
from semsearch.batch import execute
from semsearch.errors import InvalidInputError
from semsearch.faces import Searchable
from semsearch.flavour import embed
from semsearch.passages import edits, grouping
from semsearch.planner import MAX_K
from semsearch.results import SearchResult
from semsearch.retrying import Trip, answered

if TYPE_CHECKING:
    from semsearch.collection_info import CollectionInfo


class Lookups:
    """The lookups of a collection (a mixin; use a collection)."""

    def get(
        self, keys: str | int | Iterable[str | int], *, tenant: str | None = None, fresh: bool = False
    ) -> list[stored.Row]:
        """The stored rows with these keys, in the order asked; a key not stored is simply absent.

        ``tenant`` keeps that tenant's rows only. Each :class:`~semsearch.stored.Row` says
        whether it is ``embedded`` yet (a row added with ``defer=True`` is not, until backfill).

        Example::

            [r.key for r in col.get(["m2", "nope", "m1"])]     # ['m2', 'm1']
        """
        col = _collection(self)
        documents = col.info.passages is not None  # put together again from their passages
        get = edits.passages_statement if documents else stored.get_statement
        stmt, params = get(col.layout, keys, tenant=tenant)
        found = col.db.read(partial(_fetch, stmt=stmt, params=params), fresh=fresh)
        return edits.as_documents(found, params["keys"]) if documents else [stored.as_row(r) for r in found]

    def _documents(
        self, page: paging.Page, fused: tuple[str | None, float | None, float | None], *, passages: bool,
        fresh: bool, own: int = 0, **search: Any,
    ) -> SearchResult:  # fmt: skip
        """A search of a collection with passages: the best distinct documents, or passages (``passages``).

        Passages are searched, more of them until ``k`` distinct documents are found when they
        exist (:mod:`semsearch.passages.grouping`); text and hybrid hits get their snippet. The
        document ``page.exclude`` (``more_like``'s, with ``own`` passages) is left out.
        """
        col = _collection(self)
        if col.info.passages is None:
            raise InvalidInputError(f"expected a collection with passages for passages=True, got {col.name!r}")
        want = page.fetch
        fetch = min(MAX_K, page.k + page.offset + own) if passages else grouping.first_fetch(want)
        # text and hybrid documents: the page's snippets come in the search's own statement
        snippets = None if passages or search.get("mode") == "vector" else (page.offset, page.k)
        while True:
            lists = None if passages else grouping.lists_for(fetch)
            found = col._search(paging.Page(k=fetch), fused, fresh=fresh, lists_for=lists, snippets=snippets, **search)
            more = grouping.widen(fetch, got=len(found), distinct=grouping.distinct(found), want=want)
            if passages or more is None:
                break
            fetch = more
        result = grouping.ranked(found, page, passages=passages)
        if snippets is None:
            [result] = self._snippets([result], [search.get("query")], search.get("mode"), fresh=fresh)
        return result

    def _snippets(
        self, results: list[SearchResult], queries: Sequence[str | None], mode: Any, *, fresh: bool
    ) -> list[SearchResult]:
        """Text and hybrid documents' hits with their best passage's snippet, all in one round trip."""
        col = _collection(self)
        if mode not in ("text", "hybrid") or not any(r.hits for r in results):
            return results
        asked = [(q, h.content) for r, q in zip(results, queries, strict=True) for h in r.hits if q]
        if not asked:
            return results
        stmt, params = grouping.snippet_statement(col.info.text_config, [q for q, _ in asked], [t for _, t in asked])
        lit = iter([r[0] for r in col.db.read(partial(_fetch, stmt=stmt, params=params), fresh=fresh)])
        return [
            grouping.with_snippets(r, [next(lit) for _ in r.hits]) if q else r
            for r, q in zip(results, queries, strict=True)
        ]

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
        passages: bool = False,
    ) -> list[SearchResult]:
        """One search per query text (or per row of ``vectors``), in one round trip; results in order.

        The options are ``search``'s and apply to every query; the texts are embedded in
        one call. Each result is what ``search`` returns for that query alone: in a collection
        with passages, its best ``k`` distinct documents (one more round trip for the queries
        whose passages must be widened, all of them together, and one for the snippets of text
        and hybrid hits), or its best ``k`` passages (``passages=True``).

        Example::

            [r.keys for r in col.search_many(["cats", "dogs"], k=3)]
            col.search_many(vectors=q_matrix, k=10, where={"lang": "es"})
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold)
        documents = col.info.passages is not None
        if passages and not documents:
            raise InvalidInputError(f"expected a collection with passages for passages=True, got {col.name!r}")
        want = page.fetch
        search = dict(
            k=want if passages or not documents else grouping.first_fetch(want), mode=mode, oversample=oversample,
            ef_search=ef_search, exact=exact, where=where, tenant=tenant,
            lists_for=grouping.lists_for(grouping.first_fetch(want)) if documents and not passages else None,
        )  # fmt: skip
        made: list[Any] = []  # the embedder and the query texts' vectors: embedded once, unless it changes

        def requests() -> list[search_request.Request]:
            requests, todo = batch.check_requests(
                dims=col.dims, name=col.name, tenant_required=col.info.tenant_required, queries=queries,
                vectors=vectors, search=search, fusion=(fusion, vector_weight, text_weight),
            )  # fmt: skip
            if todo:
                if not made or made[0] is not col.embedder:
                    made[:] = [col.embedder, embed(col.embedder, [text for _, text in todo])]
                requests = batch.with_embeddings(requests, todo, made[1], dims=col.dims)
            return requests

        found = self._many(requests, None, fresh=fresh)
        while documents and not passages:  # each query's search widened until it has its documents
            more = {}
            for i, r in found.items():
                wider = grouping.widen(r.k, got=len(r), distinct=grouping.distinct(r), want=want)
                if wider is not None:
                    more[i] = wider
            if not more:
                break
            found.update(self._many(requests, more, fresh=fresh))
        results = [found[i] for i in range(len(found))]
        if any(r.unindexed for r in results):
            guards.warn_unindexed(col.name)
        if not documents:
            return [page.cut(r) for r in results]
        results = [grouping.ranked(r, page, passages=passages) for r in results]
        return self._snippets(results, list(queries) if queries is not None else [None] * len(results), mode,
                                    fresh=fresh)  # fmt: skip

    def _many(self, requests: Any, ks: Mapping[int, int] | None, *, fresh: bool) -> dict[int, SearchResult]:
        """The searches ``requests()`` makes, in one round trip: those at ``ks`` (position: its ``k``), or all."""
        col = _collection(self)

        def round_trip(changed: bool) -> Trip:
            made = requests()  # each time: its vectors are embedded again only if the embedder changed
            asked = {i: _widened(made[i], k) for i, k in ks.items()} if ks else dict(enumerate(made))
            info, timeout = col.info, col.db.search_timeout
            plans = [
                searching.plan(col.layout, col.name, info.oversample, info.ef_search, r, timeout=timeout)
                for r in asked.values()
            ]
            found, checked = col.db.read(partial(execute, plans=plans, check=col.name), fresh=fresh)
            return (found, asked, info), col.name, checked

        with col.db.pinned(fresh=fresh):
            found, asked, info = answered(col, round_trip)
        tenant = next(iter(asked.values())).tenant
        if guards.asks_for_tenants(info, tenant, next((rows for rows in found if rows), [])):
            guards.check_tenants(col.name, tenant, col.db.read(partial(any_tenant, info=info), fresh=fresh))
        return {
            i: searching.hits(rows, r, indexed=col._indexed) for (i, r), rows in zip(asked.items(), found, strict=True)
        }

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
        passages: bool = False,
    ) -> SearchResult:
        """The ``k`` rows nearest to the stored row ``key`` (by its vector), the row itself left out.

        A vector search with the row's stored full vector (its options are search's); an
        unknown key, or a row still waiting for its embedding, raises
        :class:`~semsearch.errors.InvalidInputError`. ``tenant`` also requires the row to be
        that tenant's. Two round trips: the row's vector, then the search.
        In a collection with passages ``key`` is a document's: the ``k`` documents most like it
        (a documents search with the mean of its embedded passages' vectors), never the document
        itself; ``passages=True`` returns the nearest passages of other documents.

        Example::

            col.more_like("m1", k=5).keys                     # the 5 movies closest to m1
            col.more_like("m1", k=5, where={"year": {"$gte": 2000}}, score_threshold=0.5)
        """
        col = _collection(self)
        page = paging.check_page(k, offset, score_threshold, exclude=ingest.check_key(key))
        documents = col.info.passages is not None
        if passages and not documents:
            raise InvalidInputError(f"expected a collection with passages for passages=True, got {col.name!r}")
        if documents:
            stmt, params = grouping.document_vector_statement(
                col.layout, cast(str, page.exclude), tenant=stored.check_tenant(tenant)
            )
        else:
            stmt, params = stored.vector_statement(col.layout, key, tenant=tenant)

        def row(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            cur = conn.execute(stmt, params)
            return cur.fetchone()

        found = col.db.read(row, fresh=fresh)
        vector = stored.stored_vector(found, cast(str, page.exclude), col.name)
        search = dict(
            query=None, vector=vector, mode="vector", oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant,
        )  # fmt: skip
        if documents:  # leaving out the document's own passages (at most as many as it has)
            return self._documents(
                page, (None, None, None), passages=passages, fresh=fresh, own=cast(Any, found)[1], **search
            )
        return col._search(page, (None, None, None), fresh=fresh, **search)


def _widened(request: search_request.Request, k: int) -> search_request.Request:
    """A documents search's request for ``k`` passages (a hybrid one's lists sized for them)."""
    return replace(request, k=k, lists_for=None if request.lists_for is None else grouping.lists_for(k))


def _fetch(conn: psycopg.Connection[Any], *, stmt: Any, params: Any) -> list[tuple[Any, ...]]:
    cur = conn.execute(stmt, params)
    return cur.fetchall()


def _collection(obj: Lookups) -> Searchable:
    return cast(Searchable, obj)  # a mixin of the collection, which has that face (checked there)


def any_tenant(conn: psycopg.Connection[Any], *, info: CollectionInfo) -> Any:
    """Whether any row of the collection has a tenant (:func:`semsearch.guards.any_tenant`), read on ``conn``."""
    return (conn.execute(guards.any_tenant(info))).fetchone()
