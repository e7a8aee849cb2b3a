"""A registered model's :class:`Registration`, and the registrations kept.

:mod:`semsearch.django.registry` (``register``) adds to them and connects
:mod:`semsearch.django.sync`'s signals; :mod:`semsearch.django.search` and the
management commands look them up. All import this module, which imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from semsearch import indexing
from semsearch.collection import Collection
from semsearch.django import client
from semsearch.django.conf import SemsearchSettings
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError

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
    #: documents split into passages: what ``create_collection(passages=...)`` takes (None: one row per instance)
    passages: Any = None

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
        """The model's collection; ``create=True`` makes it from ``SEMSEARCH`` settings (and ``passages``) when missing.

        Example::

            registration_for(Article).collection().count()
        """
        db, embedder = client.database(), client.embedder()
        try:
            col = db.collection(self.collection_name, embedder=embedder, passages=self.passages)
            return indexing.opened(col, self.passages, self.label)
        except CollectionNotFoundError:
            if not create:
                raise CollectionNotFoundError(
                    f"expected collection {self.collection_name!r} for {self.label}, got none: "
                    "run `python manage.py semsearch_index` or add CreateCollection to a migration"
                ) from None
        compression = SemsearchSettings.load().compression
        try:
            return db.create_collection(
                self.collection_name, embedder=embedder, compression=compression, passages=self.passages
            )
        except CollectionExistsError:  # another process created it meanwhile
            col = db.collection(self.collection_name, embedder=embedder, passages=self.passages)
            return indexing.opened(col, self.passages, self.label)


def is_registered(cls: type[models.Model]) -> bool:
    """Whether ``cls`` itself is registered (:func:`~semsearch.django.register` takes a model once)."""
    return cls in _registry


def keep(reg: Registration) -> None:
    """Keep ``reg`` as its model's registration (what :func:`~semsearch.django.register` made)."""
    _registry[reg.model] = reg


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
