"""A LlamaIndex vector store over a semsearch collection: add, delete, get and query nodes, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from pydantic import PrivateAttr

from semsearch.aio import AsyncCollection
from semsearch.collection import Collection
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.llama_index import node_rows
from semsearch.llama_index.metadata_filters import to_where
from semsearch.results import SearchResult

#: most nodes ``get_nodes`` returns for a filter (a search's largest ``k``)
MAX_LISTED = 10000
#: ``$in`` values sent at once when node ids and filters select together
_IDS_AT_ONCE = 1000


class SemsearchVectorStore(BasePydanticVectorStore):
    """LlamaIndex's vector store on a semsearch collection: its HNSW plans, BM25 and fusion.

    ``collection`` is a :class:`~semsearch.Collection` for the sync calls; ``async_collection``
    (the same collection opened with :mod:`semsearch.aio`) makes ``async_add``, ``aquery``,
    ``adelete``, ``adelete_nodes``, ``aget_nodes`` and ``aclear`` await semsearch.aio; without
    it they run the sync call in a worker thread. ``tenant`` keeps every call to one tenant.

    A node is a row keyed by its id (see :mod:`semsearch.llama_index.node_rows`), with the
    embedding LlamaIndex's embed model gave it (a node without one is embedded by the
    collection's embedder). Query modes:

    - ``DEFAULT``: vector search with ``query_embedding`` (or ``query_str`` embedded by the
      collection), cosine similarities as scores;
    - ``TEXT_SEARCH``: BM25 over ``query_str`` (``mode="text"``);
    - ``HYBRID``: ``query_str`` and ``query_embedding`` fused in SQL (``mode="hybrid"``).
      ``alpha`` is the vector list's weight and ``1 - alpha`` the text list's
      (``vector_weight``/``text_weight``); ``alpha=1`` is a pure vector search and ``alpha=0``
      a pure text search; unset, the collection's tuned fusion (``tune_hybrid``) or its
      default. ``hybrid_top_k``, when set, is the number of results.

    ``filters`` (:mod:`semsearch.llama_index.metadata_filters`), ``doc_ids`` and ``node_ids``
    filter every mode in the same statement, and ``k`` results come back whenever ``k`` match.

    Example::

        store = SemsearchVectorStore(db.collection("docs"))
        index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store))
        index.as_retriever(vector_store_query_mode="text_search").retrieve("tax deadline")
    """

    stores_text: bool = True
    flat_metadata: bool = False
    tenant: str | None = None

    _collection: Collection | None = PrivateAttr(default=None)
    _async_collection: AsyncCollection | None = PrivateAttr(default=None)

    def __init__(
        self,
        collection: Collection | None = None,
        *,
        async_collection: AsyncCollection | None = None,
        tenant: str | None = None,
    ) -> None:
        if collection is None and async_collection is None:
            raise ConfigurationError("expected collection= or async_collection=, got neither")
        if collection is not None and not isinstance(collection, Collection):
            raise ConfigurationError(f"expected a semsearch Collection, got {type(collection).__name__}")
        if async_collection is not None and not isinstance(async_collection, AsyncCollection):
            raise ConfigurationError(
                f"expected a semsearch.aio AsyncCollection for async_collection=, got {type(async_collection).__name__}"
            )
        if collection is not None and async_collection is not None and collection.name != async_collection.name:
            raise ConfigurationError(
                f"expected one collection's two handles, got {collection.name!r} and {async_collection.name!r}"
            )
        # pydantic's mypy plugin types the base's __init__ with the base's fields; ``tenant`` is this class's
        super().__init__(tenant=tenant)  # type: ignore[call-arg]
        self._collection = collection
        self._async_collection = async_collection

    @classmethod
    def class_name(cls) -> str:
        return "SemsearchVectorStore"

    @property
    def client(self) -> Collection | AsyncCollection:
        """The semsearch collection (the sync one when both were given)."""
        found = self._collection or self._async_collection
        assert found is not None
        return found

    def _sync(self, call: str) -> Collection:
        if self._collection is None:
            raise ConfigurationError(
                f"expected a sync collection for {call}(): SemsearchVectorStore(collection=...), "
                f"got only async_collection= (await {'async_add' if call == 'add' else 'a' + call} instead)"
            )
        return self._collection

    # --- writes

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Store nodes by id (insert or replace, one transaction); return their ids."""
        if not nodes:
            return []
        keys, contents, metadata, embeddings = node_rows.rows(nodes)
        self._sync("add").add(keys, contents, embeddings=embeddings, metadata=metadata, tenant=self.tenant)
        return keys

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """:meth:`add`, awaited."""
        if self._async_collection is None:
            return await asyncio.to_thread(self.add, nodes)
        if not nodes:
            return []
        keys, contents, metadata, embeddings = node_rows.rows(nodes)
        await self._async_collection.add(keys, contents, embeddings=embeddings, metadata=metadata, tenant=self.tenant)
        return keys

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        self._sync("delete").delete(where=_of_document(ref_doc_id), tenant=self.tenant)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """:meth:`delete`, awaited."""
        if self._async_collection is None:
            return await asyncio.to_thread(self.delete, ref_doc_id)
        await self._async_collection.delete(where=_of_document(ref_doc_id), tenant=self.tenant)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes with these ids, or those the filters keep, or those with both (neither: nothing)."""
        col = self._sync("delete_nodes")
        for keys, where in _selections(node_ids, filters, by_key=self.tenant is None):
            col.delete(keys, where=where, tenant=self.tenant)

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """:meth:`delete_nodes`, awaited."""
        if self._async_collection is None:
            return await asyncio.to_thread(self.delete_nodes, node_ids, filters)
        for keys, where in _selections(node_ids, filters, by_key=self.tenant is None):
            await self._async_collection.delete(keys, where=where, tenant=self.tenant)

    def clear(self) -> None:
        """Delete every node (of the store's tenant, when it has one)."""
        col = self._sync("clear")
        col.delete(tenant=self.tenant, all_rows=self.tenant is None)

    async def aclear(self) -> None:
        """:meth:`clear`, awaited."""
        if self._async_collection is None:
            return await asyncio.to_thread(self.clear)
        await self._async_collection.delete(tenant=self.tenant, all_rows=self.tenant is None)

    # --- reads

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The nodes with these ids (in that order), or those the filters keep (at most :data:`MAX_LISTED`)."""
        col = self._sync("get_nodes")
        if filters is None and node_ids is not None:
            return [node_rows.node(r.key, r.content, r.metadata) for r in col.get(node_ids, tenant=self.tenant)]
        found: list[BaseNode] = []
        for _, where in _selections(node_ids, filters, listing=True):
            result = col.search(**_listing(col.dims, where, self.tenant))
            if result.complete and col.count(where=where, tenant=self.tenant) > MAX_LISTED:
                raise InvalidInputError(_too_many())
            found += _nodes(result)
        return found

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """:meth:`get_nodes`, awaited."""
        acol = self._async_collection
        if acol is None:
            return await asyncio.to_thread(self.get_nodes, node_ids, filters)
        if filters is None and node_ids is not None:
            return [node_rows.node(r.key, r.content, r.metadata) for r in await acol.get(node_ids, tenant=self.tenant)]
        found: list[BaseNode] = []
        for _, where in _selections(node_ids, filters, listing=True):
            result = await acol.search(**_listing(acol.dims, where, self.tenant))
            if result.complete and await acol.count(where=where, tenant=self.tenant) > MAX_LISTED:
                raise InvalidInputError(_too_many())
            found += _nodes(result)
        return found

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` best nodes (``hybrid_top_k`` in hybrid mode), best first."""
        return _result(self._sync("query").search(**search_args(query, self.tenant)))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """:meth:`query`, awaited."""
        if self._async_collection is None:
            return await asyncio.to_thread(self.query, query)
        return _result(await self._async_collection.search(**search_args(query, self.tenant)))


def search_args(query: VectorStoreQuery, tenant: str | None) -> dict[str, Any]:
    """The arguments of ``Collection.search`` that run ``query`` (checked before any round trip)."""
    mode, alpha = query.mode, query.alpha
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1):
        raise InvalidInputError(f"expected alpha between 0 and 1, got {alpha!r}")
    k = query.hybrid_top_k if mode == VectorStoreQueryMode.HYBRID and query.hybrid_top_k else query.similarity_top_k
    args: dict[str, Any] = {"k": k, "where": _where(query), "tenant": tenant}
    if mode == VectorStoreQueryMode.HYBRID and alpha in (0, 1):  # one list only: that list's own search
        mode = VectorStoreQueryMode.DEFAULT if alpha == 1 else VectorStoreQueryMode.TEXT_SEARCH
    if mode == VectorStoreQueryMode.DEFAULT:
        if query.query_embedding is not None:
            return {**args, "vector": query.query_embedding}
        if query.query_str:
            return {**args, "query": query.query_str}
        raise InvalidInputError("expected query_embedding or query_str for a vector query, got neither")
    if mode not in (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.HYBRID):
        raise InvalidInputError(f"expected query mode default, text_search or hybrid, got {mode.value!r}")
    if not query.query_str:
        raise InvalidInputError(f"expected query_str for a {mode.value} query, got {query.query_str!r}")
    if mode == VectorStoreQueryMode.TEXT_SEARCH:
        return {**args, "query": query.query_str, "mode": "text"}
    weights = {} if alpha is None else {"vector_weight": float(alpha), "text_weight": 1.0 - alpha}
    return {**args, "query": query.query_str, "vector": query.query_embedding, "mode": "hybrid", **weights}


def _where(query: VectorStoreQuery) -> dict[str, Any] | None:
    parts = [to_where(query.filters)]
    if query.doc_ids:
        parts.append({"ref_doc_id": {"$in": list(query.doc_ids)}})
    if query.node_ids:
        parts.append({node_rows.NODE_ID: {"$in": list(query.node_ids)}})
    kept = [p for p in parts if p is not None]
    return None if not kept else kept[0] if len(kept) == 1 else {"$and": kept}


def _of_document(ref_doc_id: str) -> dict[str, Any]:
    if not isinstance(ref_doc_id, str) or not ref_doc_id:
        raise InvalidInputError(f"expected ref_doc_id as a non-empty str, got {ref_doc_id!r}")
    return {"ref_doc_id": ref_doc_id}


def _selections(
    node_ids: list[str] | None, filters: MetadataFilters | None, *, listing: bool = False, by_key: bool = False
) -> list[tuple[list[str] | None, dict[str, Any] | None]]:
    """(keys, where) pairs whose union is the nodes selected; none when nothing is ("delete nothing").

    ``by_key``: ids alone select by key; else (a tenant's store: a key names a row of any tenant)
    by the ``_node_id`` field, with the tenant.
    """
    where = to_where(filters)
    if node_ids is None:
        return [(None, where)] if where is not None or listing else []
    ids = list(node_ids)
    if where is None and by_key:
        return [(ids, None)] if ids else []
    chunks = [ids[i : i + _IDS_AT_ONCE] for i in range(0, len(ids), _IDS_AT_ONCE)]
    return [(None, _both({node_rows.NODE_ID: {"$in": c}}, where)) for c in chunks]


def _both(first: dict[str, Any], second: dict[str, Any] | None) -> dict[str, Any]:
    return first if second is None else {"$and": [first, second]}


def _listing(dims: int, where: dict[str, Any] | None, tenant: str | None) -> dict[str, Any]:
    """The search that lists every row a filter keeps: exact, for any unit vector, ``k`` at its largest."""
    vector = np.zeros(dims, dtype=np.float32)
    vector[0] = 1.0
    return {"vector": vector, "k": MAX_LISTED, "exact": True, "where": where, "tenant": tenant}


def _too_many() -> str:
    return f"expected filters keeping at most {MAX_LISTED} nodes for get_nodes, got more; narrow the filters"


def _nodes(result: SearchResult) -> list[BaseNode]:
    return [node_rows.node(h.key, h.content, h.metadata) for h in result]


def _result(result: SearchResult) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=_nodes(result), similarities=[h.score for h in result], ids=[h.key for h in result]
    )
