"""Which models are indexed, and how: ``register(Model, fields=(...))``.

Registering connects ``post_save`` / ``post_delete`` (see :mod:`semsearch.django.sync`)
and adds ``Model.semsearch`` (see :mod:`semsearch.django.search`). A model's rows
are keyed by ``str(pk)`` in the collection ``<app_label>_<model_name>``. The registrations
are kept in :mod:`semsearch.django.registration` (re-exported here), which sync and search read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from semsearch import indexing
from semsearch.django import sync
from semsearch.django.registration import Registration, is_registered, keep, registration_for, registrations
from semsearch.django.search import SemanticAccessor
from semsearch.errors import ConfigurationError
from semsearch.layout import check_name

__all__ = ["Registration", "register", "registration_for", "registrations"]

M = TypeVar("M", bound=type[models.Model])
TextSpec = Callable[[Any], str] | str | None
MetadataSpec = Callable[[Any], dict[str, Any]] | Sequence[str] | None
TenantSpec = Callable[[Any], Any] | str | None


@overload
def register(
    model: M,
    *,
    collection: str | None = None,
    fields: Sequence[str] | None = None,
    text: TextSpec = None,
    metadata: MetadataSpec = None,
    tenant: TenantSpec = None,
    queryset: Any = None,
    passages: Any = None,
) -> M: ...
@overload
def register(
    model: None = None,
    *,
    collection: str | None = None,
    fields: Sequence[str] | None = None,
    text: TextSpec = None,
    metadata: MetadataSpec = None,
    tenant: TenantSpec = None,
    queryset: Any = None,
    passages: Any = None,
) -> Callable[[M], M]: ...
def register(
    model: M | None = None,
    *,
    collection: str | None = None,
    fields: Sequence[str] | None = None,
    text: TextSpec = None,
    metadata: MetadataSpec = None,
    tenant: TenantSpec = None,
    queryset: Any = None,
    passages: Any = None,
) -> M | Callable[[M], M]:
    """Index ``model`` in a collection, kept in sync on commit; also a class decorator.

    ``fields`` (joined by blank lines) or ``text`` (a function of the instance, or
    the name of a method or attribute) give the text to embed. ``metadata`` (a
    function returning a dict, or field names) is stored for ``where=`` filters;
    ``tenant`` (a function or a field name) for ``tenant=``. ``queryset`` limits
    which rows are indexed (a row leaving it is removed on its next save). Rows
    with empty text are not indexed. ``passages`` (``True``, a :class:`~semsearch.Splitter`
    or a callable, as :meth:`~semsearch.Database.create_collection` takes it) splits each
    row's text into passages: a search then returns each instance once, with its best
    passage as ``semsearch_passage`` (README, "Documents and passages").

    Example::

        @register(fields=("title", "body"), metadata=("lang",))
        class Article(models.Model): ...

        register(Ticket, text="search_text", tenant="account_id", queryset=Ticket.objects.filter(open=True))
        register(Manual, fields=("title", "body"), passages=Splitter(max_tokens=200))
    """

    def apply(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, models.Model)):
            raise ConfigurationError(f"expected a django model class, got {cls!r}")
        if is_registered(cls):
            raise ConfigurationError(f"expected {cls._meta.label} to be registered once, got it twice")
        # a registered parent's accessor is inherited: the subclass gets its own
        if hasattr(cls, "semsearch") and not isinstance(cls.semsearch, SemanticAccessor):
            raise ConfigurationError(f"expected no attribute 'semsearch' on {cls._meta.label}, got one")
        meta = cls._meta
        name = check_name(collection or f"{meta.app_label}_{meta.model_name}".lower())
        reg = Registration(
            model=cls,
            collection_name=name,
            text=_text_function(cls, fields, text),
            metadata=_metadata_function(cls, metadata),
            tenant=_value_function(cls, tenant, "tenant") if tenant is not None else None,
            queryset=queryset,
            passages=indexing.check_passages(passages, meta.label),
        )
        keep(reg)
        sync.connect_signals(reg)
        setattr(cls, "semsearch", SemanticAccessor(reg))  # noqa: B010 - a class attribute, on purpose
        return cls

    return apply(model) if model is not None else apply


def _field(cls: type[models.Model], name: str, what: str) -> models.Field[Any, Any]:
    try:
        field = cls._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if not isinstance(field, models.Field):  # reverse relations have no value of their own
        raise ConfigurationError(f"expected {what} to name fields of {cls._meta.label}, got {name!r}")
    return field


def _text_function(cls: type[models.Model], fields: Sequence[str] | None, text: Any) -> Callable[[Any], str]:
    if (fields is None) == (text is None):
        raise ConfigurationError(
            f"expected fields=(...) or text=... for {cls._meta.label}, got {'both' if text else 'neither'}"
        )
    if fields is not None:
        if isinstance(fields, str):
            raise ConfigurationError(f"expected fields as a tuple of names, got the string {fields!r}")
        for name in fields:
            _field(cls, name, "fields")
        return indexing.joined_text(fields)
    return _value_function(cls, text, "text")


def _value_function(cls: type[models.Model], spec: Any, what: str) -> Callable[[Any], Any]:
    return indexing.value_function(cls, spec, what, label=cls._meta.label)


def _metadata_function(cls: type[models.Model], spec: Any) -> Callable[[Any], dict[str, Any]] | None:
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, str):
        raise ConfigurationError(f"expected metadata as a function or a tuple of field names, got {spec!r}")
    fields = [_field(cls, name, "metadata") for name in spec]
    # value_from_object: a foreign key gives its id, not the related row
    return lambda obj: {f.name: f.value_from_object(obj) for f in fields}
