"""What a collection handle holds, sync or async: its catalog row, its embedder, when to check the row again."""

from __future__ import annotations

from semsearch.catalog import CollectionInfo
from semsearch.embeddings import Embedder, embedder_for
from semsearch.errors import ConfigurationError

#: how long a handle trusts its catalog row before a search re-reads it (in the same round trip)
CATALOG_CHECK_SECONDS = 1.0


class Handle:
    """The part :class:`~semsearch.Collection` and :class:`~semsearch.aio.AsyncCollection` share."""

    def __init__(self, info: CollectionInfo, embedder: Embedder | None = None) -> None:
        self.info = info
        self.layout = info.layout
        self._embedder = embedder
        self._own_embedder = embedder is not None
        # the first search checks the catalog row and the index (a killed build leaves none)
        self._checked_until = 0.0
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

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"<{kind} {self.name!r} {self.info.model} dims={self.dims} compression={self.info.compression}>"

    def _adopt(self, info: CollectionInfo) -> None:
        """Take a re-read catalog row; an embedder made from the old model is dropped (one given is kept)."""
        changed = (info.model, info.dims) != (self.info.model, self.dims)
        if self._embedder is not None and changed and not self._own_embedder:
            self._embedder = None
        self.info, self.layout = info, info.layout
        self._checked_until = 0.0
