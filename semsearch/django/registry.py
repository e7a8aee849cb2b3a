"""Which models are indexed, and how: ``register(Model, fields=(...))``.

Registering connects ``post_save`` / ``post_delete`` (see :mod:`semsearch.django.sync`)
and adds ``Model.semsearch`` (see :mod:`semsearch.django.search`). A model's rows
are keyed by ``str(pk)`` in the collection ``<app_label>_<model_name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from semsearch import indexing
from semsearch.collection import Collection
from semsearch.django import client
from semsearch.django.conf import SemsearchSettings
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError
from semsearch.layout import check_name

M = TypeVar("M", bound=type[models.Model])
_registry: dict[type[models.Model], Registration] = {}


@dataclass(frozen=True, eq=False)
class Registration:
    """How one model is indexed: its collection, and functions giving a row's text, metadata and tenant.

    Example::

        reg = registration_for(Article)
        reg.document(article)        # ('Green tea\\n\\nBrew it at 80 °C ...', {'lang': 'en'}, None)
    """

    model: type[models.Model]
    collection_name: str
    text: Callable[[Any], str]
    metadata: Callable[[Any], dict[str, Any]] | None = None
    tenant: Callable[[Any], Any] | None = None
    queryset: Any = None

    @property
    def label(self) -> str:
        return self.model._meta.label

    def get_queryset(self) -> models.QuerySet[Any]:
        """The rows that belong in the collection (``queryset=`` at registration, else all)."""
        source = self.queryset if self.queryset is not None else self.model._default_manager
        return source.all()

    def document(self, obj: models.Model) -> indexing.Document:
        """``(text, metadata, tenant)`` of one row, as stored in the collection."""
        meta = self.metadata(obj) if self.metadata is not None else None
        tenant = self.tenant(obj) if self.tenant is not None else None
        # dates, decimals and uuids become strings, as Django's own JSON fields store them
        return indexing.document(self.text(obj), meta, tenant, encoder=DjangoJSONEncoder)

    def collection(self, *, create: bool = False) -> Collection:
        """The model's collection; ``create=True`` makes it from ``SEMSEARCH`` settings when missing.

        Example::

            registration_for(Article).collection().count()
        """
        db, embedder = client.database(), client.embedder()
        try:
            return db.collection(self.collection_name, embedder=embedder)
        except CollectionNotFoundError:
            if not create:
                raise CollectionNotFoundError(
                    f"expected collection {self.collection_name!r} for {self.label}, got none: "
                    "run `python manage.py semsearch_index` or add CreateCollection to a migration"
                ) from None
        compression = SemsearchSettings.load().compression
        try:
            return db.create_collection(self.collection_name, embedder=embedder, compression=compression)
        except CollectionExistsError:  # another process created it meanwhile
            return db.collection(self.collection_name, embedder=embedder)


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
) -> M | Callable[[M], M]:
    """Index ``model`` in a collection, kept in sync on commit; also a class decorator.

    ``fields`` (joined by blank lines) or ``text`` (a function of the instance, or
    the name of a method or attribute) give the text to embed. ``metadata`` (a
    function returning a dict, or field names) is stored for ``where=`` filters;
    ``tenant`` (a function or a field name) for ``tenant=``. ``queryset`` limits
    which rows are indexed (a row leaving it is removed on its next save). Rows
    with empty text are not indexed.

    Example::

        @register(fields=("title", "body"), metadata=("lang",))
        class Article(models.Model): ...

        register(Ticket, text="search_text", tenant="account_id", queryset=Ticket.objects.filter(open=True))
    """

    def apply(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, models.Model)):
            raise ConfigurationError(f"expected a django model class, got {cls!r}")
        if cls in _registry:
            raise ConfigurationError(f"expected {cls._meta.label} to be registered once, got it twice")
        # imported here: sync and search import this module
        from semsearch.django import sync
        from semsearch.django.search import SemanticAccessor

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
        )
        _registry[cls] = reg
        sync.connect_signals(reg)
        setattr(cls, "semsearch", SemanticAccessor(reg))  # noqa: B010 - a class attribute, on purpose
        return cls

    return apply(model) if model is not None else apply


def registration_for(model: type[models.Model] | models.Model | str) -> Registration:
    """The registration of a model class, an instance, or an ``"app_label.Model"`` label.

    Example::

        registration_for("articles.Article").collection_name     # 'articles_article'
    """
    cls: Any = model
    if isinstance(model, str):
        try:
            cls = apps.get_model(model)
        except (LookupError, ValueError):
            cls = None  # not a model at all: reported below as not registered
    elif isinstance(model, models.Model):
        cls = type(model)
    reg = _registry.get(cls)
    if reg is None and getattr(getattr(cls, "_meta", None), "proxy", False):
        reg = _registry.get(cls._meta.concrete_model)  # a proxy shares its model's rows and collection
    if reg is None:
        known = sorted(r.label for r in _registry.values())
        raise ConfigurationError(
            f"expected a model registered with semsearch ({', '.join(known) or 'none'}), got {model!r}"
        )
    return reg


def registrations() -> list[Registration]:
    """Every registration, by model label."""
    return sorted(_registry.values(), key=lambda r: r.label)


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
