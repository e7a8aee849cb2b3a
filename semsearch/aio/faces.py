"""What the lower async modules use of the higher ones, as protocols: the import graph stays a tree.

The async twins of :mod:`semsearch.faces` (same names, so the sync modules generated from
the async ones take those): :class:`~semsearch.aio.AsyncDatabase` makes each
:class:`~semsearch.aio.AsyncCollection`, so a collection cannot import the database: it
holds a :class:`Connections`. The helpers (:mod:`semsearch.aio.writes`,
:mod:`semsearch.aio.repairs`) and mixins (:mod:`semsearch.aio.lookups`,
:mod:`semsearch.aio.measuring`) see the collection as a :class:`Stored` or
:class:`Searchable`. mypy checks the concrete classes against them where they meet
(in :mod:`semsearch.aio.database`).

Example::

    def pool_of(col: Searchable) -> Connections:
        return col.db
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import psycopg

from semsearch import guards, paging
from semsearch.collection_info import CollectionInfo
from semsearch.embeddings import Embedder
from semsearch.layout import Layout
from semsearch.results import SearchResult

if TYPE_CHECKING:
    from semsearch import faces

T = TypeVar("T")


class Connections(Protocol):
    """What an async collection uses of its database (:class:`~semsearch.aio.AsyncDatabase` has it)."""

    @property
    def url(self) -> str: ...

    @property
    def search_timeout(self) -> float | None: ...

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

    def read(
        self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]], *, fresh: bool = False
    ) -> Awaitable[T]: ...

    def pinned(self, *, fresh: bool = False) -> AbstractAsyncContextManager[None]: ...

    def revive(self) -> Awaitable[None]: ...

    def replace_index(
        self, info: CollectionInfo, *, concurrently: bool = True, replan: bool = False
    ) -> Awaitable[None]: ...

    def twin(self) -> Awaitable[faces.Connections]: ...


class Stored(Protocol):
    """A collection as the async write path sees it (see :class:`semsearch.faces.Stored`)."""

    _indexed: bool
    _index_checked_until: float
    _own_embedder: bool
    _embedder: Embedder | None

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

    def _reload(self, *, read: bool = False) -> Awaitable[bool]: ...

    def _check(self, found: Any) -> None: ...

    def _answered(self, check: str | None, found: guards.Checked | None) -> bool: ...

    def rebuild_index(self, *, progress: bool = False, concurrently: bool = True) -> Awaitable[float]: ...


class Searchable(Stored, Protocol):
    """A collection as the async lookups see it: also its one search."""

    def _search(
        self, page: paging.Page, fused: tuple[str | None, float | None, float | None], *, fresh: bool, **search: Any
    ) -> Awaitable[SearchResult]: ...
