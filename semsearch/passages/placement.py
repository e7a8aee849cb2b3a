"""How a passage is stored: one row of the collection's table, its place kept in its metadata.

A passage's row has the key ``<document key>#<seq>`` and the document's metadata plus one
reserved entry, :data:`PASSAGE` (``"semsearch:passage"``): ``{"doc": key, "seq": n, "start": s,
"end": e}``, with ``"lead"`` (the document's text before passage 0) and ``"gap"`` (the text
between this passage's end and the next one's start) when a splitter left text out, so the
document is put together again exactly. The row's content hash is the table's generated
``content_hash``. Stored so, every statement, SQL function, filter, tenant rule and BM25
statistic of a collection carries passages unchanged.

Example::

    entry(metadata)      # {'doc': 'doc1', 'seq': 3, 'start': 1200, 'end': 1890}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the metadata key holding a passage's place (refused in the caller's own metadata)
PASSAGE = "semsearch:passage"


def key(document: str, seq: int) -> str:
    """A passage row's key.

    >>> key("doc1", 3)
    'doc1#3'
    """
    return f"{document}#{seq}"


def entry(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The passage's place stored in a row's metadata (None: the row is no passage)."""
    if not metadata:
        return None
    found = metadata.get(PASSAGE)
    return found if isinstance(found, dict) else None


def document_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A row's metadata without the passage's entry: the document's own.

    >>> document_metadata({"year": 1995, PASSAGE: {"doc": "d", "seq": 0, "start": 0, "end": 4}})
    {'year': 1995}
    """
    return {k: v for k, v in (metadata or {}).items() if k != PASSAGE}
