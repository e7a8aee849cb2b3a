"""The exceptions semsearch raises.

Every error is a :class:`SemsearchError`, so one ``except`` catches them all::

    SemsearchError
    ├── ConfigurationError      settings or arguments that cannot work together
    ├── DatabaseError           the server is unusable for semsearch
    │   ├── PermissionDeniedError   the role lacks the rights (ask the collection's owner for a grant)
    │   ├── ExtensionMissingError   pgvector is not installed on the server
    │   ├── ExtensionVersionError   pgvector is older than semsearch writes with (MIN_PGVECTOR)
    │   └── SchemaVersionError      semsearch's schema is missing or behind
    ├── CollectionError
    │   ├── CollectionNotFoundError
    │   ├── CollectionExistsError
    │   └── InvalidNameError
    ├── InvalidInputError       rows, vectors, filters or queries that are malformed
    ├── CompressionPlanError    a compression plan the dimensions do not allow
    ├── EmbeddingError          the embedding provider failed or answered nonsense
    ├── BackfillRunningError    another backfill of the collection is running
    ├── SearchTimeoutError      a search ran longer than its search_timeout (or was canceled)
    ├── WriteConflictError      concurrent writers of the same rows deadlocked, also on the retry
    └── NotAwaitedError         a semsearch.aio call used without ``await`` or ``async with``

Messages are lowercase and say what was expected and what arrived.

Warnings (not errors: the call did its work) are :class:`SemsearchWarning` subclasses::

    SemsearchWarning
    └── UnindexedWarning        a vector search scanned every row: no valid HNSW index
"""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every semsearch error."""


class ConfigurationError(SemsearchError):
    """Settings or arguments that cannot work together."""


class DatabaseError(SemsearchError):
    """The database server cannot be used for semsearch."""


class PermissionDeniedError(DatabaseError, PermissionError):
    """The role lacks a right the call needs (its owner grants it: ``semsearch grant ROLE NAME [--write]``)."""


class ExtensionMissingError(DatabaseError):
    """The pgvector extension is not available on the server."""


class ExtensionVersionError(DatabaseError):
    """The server's pgvector is older than ``semsearch.server.MIN_PGVECTOR``."""


class SchemaVersionError(DatabaseError):
    """semsearch's schema is missing or older than this library expects."""


class CollectionError(SemsearchError):
    """A problem with a collection as a whole."""


class CollectionNotFoundError(CollectionError):
    """No collection has that name."""


class CollectionExistsError(CollectionError):
    """A collection with that name already exists."""


class InvalidNameError(CollectionError, ValueError):
    """A collection name that is not a plain lowercase identifier."""


class InvalidInputError(SemsearchError, ValueError):
    """Rows, vectors, filters or queries that are malformed."""


class CompressionPlanError(SemsearchError, ValueError):
    """A compression plan that the collection's dimensions do not allow."""


class EmbeddingError(SemsearchError):
    """The embedding provider failed or returned unusable vectors.

    ``status`` is the provider's HTTP status when one arrived. ``refused_input`` is
    true when the provider refused the texts themselves (400, 413, 422: too long,
    unacceptable content) rather than failed: sending them again cannot help.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused_input(self) -> bool:
        return self.status in (400, 413, 422)


class BackfillRunningError(SemsearchError):
    """Another backfill of the same collection holds its lock."""


class SearchTimeoutError(SemsearchError, TimeoutError):
    """A search statement ran past ``search_timeout`` (or an operator canceled it); the server stopped it."""


class WriteConflictError(SemsearchError):
    """A batch met a deadlock or serialization failure twice; nothing of it was written."""


class NotAwaitedError(SemsearchError, AttributeError, TypeError):
    """A ``semsearch.aio`` call used without ``await`` (or with ``with`` instead of ``async with``)."""


class SemsearchWarning(UserWarning):
    """Base class of every semsearch warning."""


class UnindexedWarning(SemsearchWarning):
    """A vector search scanned every row: the collection has no valid HNSW index (see ``semsearch doctor``)."""
