"""Which mapped classes are indexed, and how: ``register(Article, text=("title", "body"))``.

A registered class's rows are keyed by ``str(primary key)`` in the collection named
after its table (or ``collection=``), which lives in ``db=`` (a :class:`~semsearch.Database`
or a function returning one) or, by default, in the database the session writes the
rows to: semsearch opens its own pool to the engine's URL on first use.

The registrations are kept in :mod:`semsearch.sqlalchemy.registration` (re-exported here),
which :mod:`semsearch.sqlalchemy.sync`'s hooks read: registering attaches them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from semsearch import indexing
from semsearch.errors import ConfigurationError
from semsearch.layout import check_name
from semsearch.sqlalchemy import sync
from semsearch.sqlalchemy.registration import (
    Registration,
    close,
    is_registered,
    keep,
    registered,
    registration_for,
    registrations,
    unregister,
)

if TYPE_CHECKING:
    from semsearch.db import Database
    from semsearch.embeddings import Embedder

__all__ = ["Registration", "close", "register", "registered", "registration_for", "registrations", "unregister"]

M = TypeVar("M", bound=type)
Text = Callable[[Any], Any] | str | Sequence[str]
Metadata = Callable[[Any], Any] | Sequence[str] | None
Tenant = Callable[[Any], Any] | str | None


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
    passages: Any = None,
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
    ``passages`` (``True``, a :class:`~semsearch.Splitter` or a callable, as
    :meth:`~semsearch.Database.create_collection` takes it) splits each row's text into
    passages: :func:`search` then returns each instance once, its best passage as
    ``semsearch_passage`` (README, "Documents and passages").

    Example::

        from semsearch.sqlalchemy import register

        register(Article, text=("title", "body"), metadata=("lang",), tenant="account_id")
        register(Manual, text="body", passages=Splitter(max_tokens=200))
    """
    mapper: Any = inspect(cls, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(f"expected a mapped class, got {cls!r}")
    if is_registered(cls):
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
    options = {
        "model": None if embedder is not None else model,
        "dims": dims,
        "compression": compression,
        "passages": indexing.check_passages(passages, cls.__qualname__),
    }
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
    keep(reg)
    sync.listen()
    return cls


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
