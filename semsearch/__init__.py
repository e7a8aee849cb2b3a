"""semsearch: fast, cheap, measurable semantic search in the Postgres you already have."""

from semsearch.collection import Collection, CollectionInfo
from semsearch.db import Database, connect
from semsearch.embeddings import BatchedEmbedder, Embedder
from semsearch.ingest import AddResult
from semsearch.query import Hit, SearchResult

__all__ = [
    "AddResult",
    "BatchedEmbedder",
    "Collection",
    "CollectionInfo",
    "Database",
    "Embedder",
    "Hit",
    "SearchResult",
    "connect",
]
__version__ = "0.1.0"
