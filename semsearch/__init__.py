"""semsearch: fast, cheap, measurable semantic search in the Postgres you already have."""

from importlib.metadata import version

from semsearch.catalog import CollectionInfo
from semsearch.collection import Collection
from semsearch.db import Database, connect
from semsearch.embeddings import BatchedEmbedder, Embedder
from semsearch.ingest import AddResult
from semsearch.results import Hit, SearchResult
from semsearch.rows import Row

__all__ = [
    "AddResult",
    "BatchedEmbedder",
    "Collection",
    "CollectionInfo",
    "Database",
    "Embedder",
    "Hit",
    "Row",
    "SearchResult",
    "connect",
]
__version__ = version("semsearch")
