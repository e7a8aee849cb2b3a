"""Which mapped classes are indexed, and how: ``register(Article, text=("title", "body"))``.

A registered class's rows are keyed by ``str(primary key)`` in the collection named
after its table (or ``collection=``), which lives in ``db=`` (a :class:`~semsearch.Database`
or a function returning one) or, by default, in the database the session writes the
rows to: semsearch opens its own pool to the engine's URL on first use.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper

from semsearch import indexing
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError
from semsearch.layout import check_name
from semsearch.sqlalchemy.urls import libpq_url

if TYPE_CHECKING:
    from semsearch.collection import Collection
    from semsearch.db import Database
    from semsearch.embeddings import Embedder

M = TypeVar("M", bound=type)
Text = Callable[[Any], Any] | str | Sequence[str]
Metadata = Callable[[Any], Any] | Sequence[str] | None
Tenant = Callable[[Any], Any] | str | None

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
        """The class's collection; ``create=True`` makes it (``model``, ``dims``, ``compression``) when missing.

        Example::

            registration_for(Article).collection(engine).search("green tea", k=3).keys
        """
        db = self.database(bind)
        try:
            return db.collection(self.collection_name, embedder=self.embedder)
        except CollectionNotFoundError:
            if not create:
                raise
        try:
            return db.create_collection(self.collection_name, embedder=self.embedder, **self.options)
        except CollectionExistsError:  # another process created it meanwhile
            return db.collection(self.collection_name, embedder=self.embedder)


def register(
    cls: M,
    /,
    *,
    text: Text,
    metadata: Metadata = None,
    tenant: Tenant = None,
    collection: str | None = None,
    db: Database | Callable[[], Database] | None = None,
    model: str | None = "local",
    dims: int | None = None,
    compression: str | None = None,
    embedder: Embedder | None = None,
    defer: bool = False,
) -> M:
    """Keep the mapped class ``cls`` searchable: its committed rows are indexed after each commit.

    ``cls`` needs a one-column primary key. ``text``: an attribute name, a tuple of
    them (joined by blank lines) or a function of the instance. ``metadata``:
    attribute names or a function returning a dict (for ``where=``); ``tenant``: an
    attribute name or a function. Rows with empty text are not indexed. ``db``: a
    :class:`~semsearch.Database` or a function returning one; default: a pool of
    semsearch's own to the server of the session's engine. A missing collection is
    created with ``model``, ``dims`` and ``compression`` (or ``embedder``).
    ``defer=True`` stores rows pending at commit, for ``backfill`` to embed.

    Example::

        from semsearch.sqlalchemy import register

        register(Article, text=("title", "body"), metadata=("lang",), tenant="account_id")
    """
    mapper: Any = inspect(cls, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(f"expected a mapped class, got {cls!r}")
    if cls in _registry:
        raise ConfigurationError(f"expected {cls.__qualname__} to be registered once, got it twice")
    if len(mapper.primary_key) != 1:
        raise ConfigurationError(
            f"expected {cls.__qualname__} to have a one-column primary key, got {len(mapper.primary_key)} columns"
        )
    watched: set[str] | None = set()
    text_fn = _text_function(cls, text)
    if isinstance(text, str):
        text = (text,)
    watched = _watch(watched, None if callable(text) else text)
    meta_fn = None
    if metadata is not None:
        if isinstance(metadata, str) or not (callable(metadata) or isinstance(metadata, Sequence)):
            raise ConfigurationError(f"expected metadata as a function or a tuple of attribute names, got {metadata!r}")
        meta_fn = metadata if callable(metadata) else _attributes(cls, metadata)
        watched = _watch(watched, None if callable(metadata) else metadata)
    tenant_fn = None
    if tenant is not None:
        tenant_fn = indexing.value_function(cls, tenant, "tenant")
        watched = _watch(watched, None if callable(tenant) else (tenant,))
    if watched is not None and not watched <= set(mapper.attrs.keys()):
        watched = None  # a property or method: which columns it reads is unknown, so any change counts
    name = collection or getattr(cls, "__tablename__", None) or mapper.local_table.description
    options = {"model": None if embedder is not None else model, "dims": dims, "compression": compression}
    reg = Registration(
        model=cls,
        collection_name=check_name(str(name).lower()),
        text=text_fn,
        metadata=meta_fn,
        tenant=tenant_fn,
        watched=frozenset(watched) if watched is not None else None,
        db=db,
        options=options,
        embedder=embedder,
        defer=defer,
    )
    from semsearch.sqlalchemy import sync  # sync imports this module

    _registry[cls] = reg
    sync.listen()
    return cls


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


def _watch(watched: set[str] | None, names: Sequence[str] | None) -> set[str] | None:
    if watched is None or names is None:
        return None
    return watched | set(names)


def _check_attributes(model: type, names: Sequence[str], what: str) -> None:
    if isinstance(names, str) or not names:
        raise ConfigurationError(f"expected {what} as a tuple of attribute names, got {names!r}")
    for name in names:
        if not isinstance(name, str) or not hasattr(model, name):
            raise ConfigurationError(f"expected {what} to name attributes of {model.__qualname__}, got {name!r}")


def _text_function(model: type, text: Any) -> Callable[[Any], Any]:
    if callable(text):
        return text
    names = (text,) if isinstance(text, str) else text
    if not isinstance(names, Sequence):
        raise ConfigurationError(f"expected text as an attribute name, a tuple of them or a function, got {text!r}")
    _check_attributes(model, names, "text")
    return indexing.joined_text(names) if len(names) > 1 else indexing.value_function(model, names[0], "text")


def _attributes(model: type, names: Sequence[str]) -> Callable[[Any], dict[str, Any]]:
    _check_attributes(model, names, "metadata")
    names = tuple(names)
    return lambda obj: {n: getattr(obj, n) for n in names}
