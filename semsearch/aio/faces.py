"""What the lower async modules use of the higher ones, as protocols: the import graph stays a tree.

:class:`~semsearch.aio.AsyncDatabase` makes each :class:`~semsearch.aio.AsyncCollection`, so
a collection cannot import the database: it holds a :class:`Connections` (what it uses of its
database). :class:`~semsearch.aio.lookups.AsyncLookups` is a mixin of the collection, so it
sees its collection as a :class:`Lookable`. The concrete classes have these faces
structurally; mypy checks it where they meet (both in :mod:`semsearch.aio.database`, which imports
every class: ``AsyncCollection(self, ...)`` and an assignment under ``TYPE_CHECKING``).

Example::

    def pool_of(col: Lookable) -> Connections:
        return col.db
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg

from semsearch import guards, paging
from semsearch.catalog import CollectionInfo
from semsearch.embeddings import Embedder
from semsearch.layout import Layout
from semsearch.results import SearchResult


class Connections(Protocol):
    """What an async collection uses of its database (:class:`~semsearch.aio.AsyncDatabase` has it)."""

    @property
    def url(self) -> str: ...

    @property
    def search_timeout(self) -> float | None: ...

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

    async def revive(self) -> None: ...

    async def rebuild_index(self, info: CollectionInfo) -> None: ...

    def info(self, name: str) -> Awaitable[CollectionInfo]: ...


class Lookable(Protocol):
    """What :class:`~semsearch.aio.lookups.AsyncLookups` uses of the collection it is mixed into."""

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
    def _indexed(self) -> bool: ...

    def _answered(self, check: str | None, found: guards.Checked | None) -> bool: ...

    async def _reload(self) -> bool: ...

    async def _search(
        self, page: paging.Page, fused: tuple[str | None, float | None, float | None], **search: Any
    ) -> SearchResult: ...
