"""What a helper may use of a database or a collection: the narrow faces, as :class:`typing.Protocol`.

The write path (:mod:`semsearch.writes`, :mod:`semsearch.backfill`, :mod:`semsearch.watch`,
:mod:`semsearch.doctor`, :mod:`semsearch.table_sync`) and the measuring one
(:mod:`semsearch.workload`, :mod:`semsearch.evaluate`, :mod:`semsearch.tune`,
:mod:`semsearch.fusion`, :mod:`semsearch.lookups`) take these, never
:class:`~semsearch.Collection` or :class:`~semsearch.Database`: the layers point one way
(the API imports its helpers, no helper imports the API), and each face lists exactly what
a helper touches. ``Collection`` and ``Database`` satisfy them as they are (mypy checks it
where they are passed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from semsearch.collection_info import CollectionInfo
from semsearch.embeddings import Embedder
from semsearch.guards import Checked
from semsearch.layout import Layout
from semsearch.paging import Page
from semsearch.replicas import Router
from semsearch.results import SearchResult
from semsearch.server import Liveness

T = TypeVar("T")


class Connections(Protocol):
    """A :class:`~semsearch.Database` as its helpers see it: connections, reads, index builds."""

    @property
    def url(self) -> str: ...

    @property
    def pool(self) -> ConnectionPool: ...

    @property
    def router(self) -> Router: ...

    @property
    def liveness(self) -> Liveness: ...

    @property
    def search_timeout(self) -> float | None: ...

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...

    def read(self, fn: Callable[[psycopg.Connection[Any]], T], *, fresh: bool = False) -> T: ...

    def pinned(self, *, fresh: bool = False) -> AbstractContextManager[None]: ...

    def revive(self) -> None: ...

    def replace_index(self, info: CollectionInfo, *, concurrently: bool = True, replan: bool = False) -> None: ...

    def collection(self, name: str, *, embedder: Embedder | None = None) -> Searchable: ...


class Stored(Protocol):
    """A collection as the write path sees it: its row, its table, its embedder, its catalog check."""

    #: whether the last check found the HNSW index there and valid (see :mod:`semsearch.doctor`)
    _indexed: bool
    #: until when a write trusts the index it found healthy
    _index_checked_until: float

    @property
    def db(self) -> Connections: ...

    @property
    def info(self) -> CollectionInfo: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def name(self) -> str: ...

    @property
    def dims(self) -> int: ...

    @property
    def embedder(self) -> Embedder: ...

    @property
    def _check_due(self) -> bool: ...

    @property
    def splitter(self) -> Any: ...

    def _reload(self, *, read: bool = False) -> bool: ...

    def _check(self, found: Any) -> None: ...

    def _answered(self, check: str | None, found: Checked | None) -> bool: ...

    def rebuild_index(self, *, progress: bool = False, concurrently: bool = True) -> float: ...


class Searchable(Stored, Protocol):
    """A collection as the measuring helpers see it: also its public search and count."""

    def search(
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
    ) -> SearchResult: ...

    def count(self, *, where: Mapping[str, Any] | None = None, tenant: str | None = None) -> int: ...

    def _search(
        self, page: Page, fused: tuple[str | None, float | None, float | None], *, fresh: bool, **search: Any
    ) -> SearchResult: ...
