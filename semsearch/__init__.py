"""semsearch: fast, cheap, measurable semantic search in the Postgres you already have."""

from importlib.metadata import version

from semsearch.collection import Collection
from semsearch.collection_info import CollectionInfo
from semsearch.db import Database, connect
from semsearch.embeddings import BatchedEmbedder, Embedder
from semsearch.model_switch import MigrationReport, migrate_model
from semsearch.model_switch import rollback as rollback_model
from semsearch.passages.splitter import Splitter
from semsearch.results import AddResult, Hit, Passage, SearchResult
from semsearch.stored import Row

__all__ = [
    "AddResult",
    "BatchedEmbedder",
    "Collection",
    "CollectionInfo",
    "Database",
    "Embedder",
    "Hit",
    "MigrationReport",
    "Passage",
    "Row",
    "SearchResult",
    "Splitter",
    "connect",
    "migrate_model",
    "rollback_model",
]
__version__ = version("semsearch")
