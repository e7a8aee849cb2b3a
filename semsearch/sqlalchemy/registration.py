"""A mapped class's :class:`Registration`, and the registrations kept: the store the session hooks read.

:mod:`semsearch.sqlalchemy.registry` (``register``) adds to it and attaches
:mod:`semsearch.sqlalchemy.sync`'s hooks, which look registrations up here: both
import this module, which imports neither.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper

from semsearch import indexing
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError
from semsearch.sqlalchemy.urls import libpq_url

if TYPE_CHECKING:
    from semsearch.collection import Collection
    from semsearch.db import Database
    from semsearch.embeddings import Embedder

_registry: dict[type, Registration] = {}
_opened: dict[str, Database] = {}  # semsearch pools opened from engine URLs, shared by registrations
_lock = threading.Lock()


@dataclass(eq=False)
class Registration:
    """How one mapped class is indexed: its collection, where it lives, and a row's document.

    Example::

        reg = registration_for(Article)
        reg.document(article)       # ('Green tea\\n\\nBrew it at 80 °C', {'lang': 'en'}, None)
        reg.collection().count()
    """

    model: type
    collection_name: str
    text: Callable[[Any], Any]
    metadata: Callable[[Any], Any] | None
    tenant: Callable[[Any], Any] | None
    #: attribute keys whose change re-indexes a row (``None``: any change, as with a callable ``text``)
    watched: frozenset[str] | None
    db: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    embedder: Embedder | None = None
    defer: bool = False

    @property
    def label(self) -> str:
        return f"{self.model.__module__}.{self.model.__qualname__}"

    @property
    def mapper(self) -> Mapper[Any]:
        return inspect(self.model)

    def key(self, obj: Any) -> str:
        """The collection key of an instance: its primary key as a string."""
        (pk,) = self.mapper.primary_key_from_instance(obj)
        return str(pk)

    def pk_value(self, key: str) -> Any:
        """A collection key back as a primary key value (``ValueError`` if it cannot be one)."""
        (column,) = self.mapper.primary_key
        try:
            kind = column.type.python_type
        except NotImplementedError:
            return key
        if kind is int:
            return int(key)
        if kind is uuid.UUID:
            return uuid.UUID(key)
        return key

    def document(self, obj: Any) -> indexing.Document:
        """``(text, metadata, tenant)`` of one instance, as stored in the collection."""
        meta = self.metadata(obj) if self.metadata is not None else None
        tenant = self.tenant(obj) if self.tenant is not None else None
        return indexing.document(self.text(obj), meta, tenant)

    def database(self, bind: Engine | Connection | None = None) -> Database:
        """The semsearch database: ``db=`` as given, else a pool on ``bind``'s server (opened once)."""
        if self.db is not None:
            return self.db() if callable(self.db) else self.db
        if bind is None:
            raise ConfigurationError(f"expected db= at register() or a session bound to an engine for {self.label}")
        engine = bind.engine if isinstance(bind, Connection) else bind
        if engine.dialect.name != "postgresql":
            raise ConfigurationError(f"expected a postgresql engine for {self.label}, got {engine.dialect.name}")
        url = libpq_url(engine.url)
        with _lock:
            if url not in _opened:
                from semsearch.db import connect

                _opened[url] = connect(url)
            return _opened[url]

    def collection(self, bind: Engine | Connection | None = None, *, create: bool = True) -> Collection:
        """The class's collection; ``create=True`` makes it from ``register``'s settings when missing.

        Example::

            registration_for(Article).collection(engine).search("green tea", k=3).keys
        """
        db = self.database(bind)
        passages = self.options.get("passages")
        try:
            col = db.collection(self.collection_name, embedder=self.embedder, passages=passages)
        except CollectionNotFoundError:
            if not create:
                raise
            try:
                col = db.create_collection(self.collection_name, embedder=self.embedder, **self.options)
            except CollectionExistsError:  # another process created it meanwhile
                col = db.collection(self.collection_name, embedder=self.embedder, passages=passages)
        return indexing.opened(col, passages, self.label)


def is_registered(cls: type) -> bool:
    """Whether ``cls`` itself is registered (:func:`register` takes a class once)."""
    return cls in _registry


def keep(reg: Registration) -> None:
    """Keep ``reg`` as its class's registration (what :func:`~semsearch.sqlalchemy.register` made)."""
    _registry[reg.model] = reg


def unregister(model: type) -> None:
    """Stop indexing ``model`` (its collection stays). Example: ``unregister(Article)``."""
    _registry.pop(model, None)


def registration_for(model: type | Any) -> Registration:
    """The registration of a mapped class (or of an instance's class, or of the nearest registered base).

    Example::

        registration_for(Article).collection_name      # 'articles'
    """
    reg = registered(model if isinstance(model, type) else type(model))
    if reg is not None:
        return reg
    known = sorted(r.label for r in _registry.values())
    raise ConfigurationError(
        f"expected a class registered with semsearch ({', '.join(known) or 'none'}), got {model!r}"
    )


def registrations() -> list[Registration]:
    """Every registration, by label (what ``flask semsearch reindex`` goes through)."""
    return sorted(_registry.values(), key=lambda r: r.label)


def registered(cls: type) -> Registration | None:
    """The registration covering ``cls``, or none (the session hooks ask this for every flushed object)."""
    for klass in cls.__mro__:
        reg = _registry.get(klass)
        if reg is not None:
            return reg
    return None


def close() -> None:
    """Close the pools semsearch opened to engines' servers (the next use opens them again)."""
    with _lock:
        for db in _opened.values():
            db.close()
        _opened.clear()
