"""What a collection handle holds, sync or async: its catalog row, its embedder, and how it follows the catalog.

A handle's statements are made from its catalog row. Another process may change the row
meanwhile (alter, rebuild, distribute, migrate-model, drop), so every write and search
compares the row it holds with the catalog's, with one statement (:data:`catalog.CHECK`)
and one rule (:meth:`Handle._follow`):

- a write reads the row first in its own transaction (:meth:`Handle._check`); when the
  definition changed, the handle takes the new row and the write runs again from the start
  (its vectors must be the live model's; its statements the new layout's);
- a search reads it in its own round trip, pipelined before its statement, at most once
  per :data:`CATALOG_CHECK_SECONDS` (every time when the SQL functions run), and runs again
  with the new row when it changed;
- a change committed while a write or search ran makes a statement fail (a refused write to
  a switched-out table, a conflict target the distributed table lacks, a query vector of the
  old dims): the row is read again and, when it changed, the call runs again once
  (:func:`rereads` says which failures); otherwise the failure stands.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import psycopg

from semsearch import catalog, guards
from semsearch.collection_info import CollectionInfo
from semsearch.embeddings import Embedder, embedder_for
from semsearch.errors import CollectionError, ConfigurationError, InvalidInputError
from semsearch.passages import splitter

#: how long a handle trusts its catalog row before a search re-reads it (in the same round trip)
CATALOG_CHECK_SECONDS = 1.0


class CatalogChanged(CollectionError):
    """A write found its collection's definition changed since the handle read it (it runs again)."""


def definition(info: CollectionInfo) -> CollectionInfo:
    """What statements are made from: the row without what tuning changes (which a handle takes, and goes on)."""
    # the plan's mode and reason say why, not what: the plan itself is in compression
    return replace(
        info, oversample=0.0, ef_search=None, tuned_rows=None, hybrid=None, autotune=True, plan_mode="",
        plan_reason=None,
    )  # fmt: skip


def rereads(exc: BaseException) -> bool:
    """Whether a failed write or search may have met a changed definition (so the row is read again).

    An error the server reported for a statement (not a lost connection, class 08, nor a
    cancel or shutdown, class 57) or a check of the input against the handle's row (vectors
    of the old dims, a tenant the new layout needs).
    """
    if isinstance(exc, psycopg.Error):
        return exc.sqlstate is not None and not exc.sqlstate.startswith(("08", "57"))
    return isinstance(exc, InvalidInputError)


class Handle:
    """The part :class:`~semsearch.Collection` and :class:`~semsearch.aio.AsyncCollection` share."""

    def __init__(self, info: CollectionInfo, embedder: Embedder | None = None, passages: Any = None) -> None:
        self.info = info
        #: the splitter the caller gave (a custom one is not stored: see :attr:`splitter`)
        self._passages = passages
        self.layout = info.layout
        self._embedder = embedder
        self._own_embedder = embedder is not None
        # the first search checks the catalog row and the index (a killed build leaves none)
        self._checked_until = 0.0
        #: the values :data:`catalog.CHECK` last read: the same again needs no parsing
        self._seen: Any = None
        #: whether the last check found the HNSW index there and valid
        self._indexed = True
        #: until when a write trusts the index it found healthy (see :mod:`semsearch.doctor`)
        self._index_checked_until = 0.0

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dims(self) -> int:
        return self.info.dims

    @property
    def embedder(self) -> Embedder:
        """The embedder for texts, made from the stored model name on first use."""
        if self._embedder is None:
            self._embedder = embedder_for(self.info.model, self.info.dims)
        if self._embedder.dims != self.dims:
            raise ConfigurationError(f"expected an embedder of {self.dims} dims, got {self._embedder.dims}")
        return self._embedder

    @property
    def splitter(self) -> Any:
        """What this collection splits documents with (None: rows are whole texts, no passages)."""
        if self.info.passages is None:
            return None
        found = splitter.from_config(self.info.passages, self.info.model, self._passages)
        if found is None:
            made = self.info.passages.get("name", "a custom splitter")
            raise ConfigurationError(
                f"expected passages=<the splitter> when opening {self.name!r} (made with {made}) to add documents, "
                "got none"
            )
        return found

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"<{kind} {self.name!r} {self.info.model} dims={self.dims} compression={self.info.compression}>"

    @property
    def _check_due(self) -> bool:
        """Whether a search must check its row (trusted for :data:`CATALOG_CHECK_SECONDS` after a check)."""
        return time.monotonic() > self._checked_until

    def _follow(self, info: CollectionInfo | None) -> bool:
        """Take the catalog's row for this name (None: dropped); whether the definition changed.

        True means whatever was made from the old row (statements, vectors, checks) must be
        made again; a row that differs only in tuned values is taken all the same.
        """
        if info is None:
            raise guards.dropped(self.name)
        changed = definition(info) != definition(self.info)
        self._adopt(info)
        return changed

    def _follow_found(self, found: Any) -> bool:
        """:meth:`_follow` the values :data:`catalog.CHECK` read (None: no row); whether the definition changed."""
        if found is not None and found == self._seen:
            self._checked_until = time.monotonic() + CATALOG_CHECK_SECONDS
            return False
        changed = self._follow(catalog.checked(found))
        self._seen = found
        return changed

    def _check(self, found: Any) -> None:
        """A write's check, first in its transaction: ``found`` is what :data:`catalog.CHECK` read.

        Raises :class:`CatalogChanged` (rolling the transaction back) when the definition changed.
        """
        if self._follow_found(found):
            raise CatalogChanged(f"expected the definition of {self.name!r} the handle read, got another one")

    def _answered(self, check: str | None, found: guards.Checked | None) -> bool:
        """Whether a search's rows answer it: unless its round trip's ``check`` found another definition.

        The check also says whether the HNSW index is there and valid (see :mod:`semsearch.doctor`).
        """
        if check is None or found is None:
            return True
        self._indexed = found.indexed
        return not self._follow_found(found.row)

    def _adopt(self, info: CollectionInfo) -> None:
        """Take a re-read catalog row; an embedder made from the old model is dropped (one given is kept)."""
        changed = (info.model, info.dims) != (self.info.model, self.dims)
        if self._embedder is not None and changed and not self._own_embedder:
            self._embedder = None
        self.info, self.layout, self._seen = info, info.layout, None
        self._checked_until = time.monotonic() + CATALOG_CHECK_SECONDS
