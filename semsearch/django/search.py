"""Search registered models and get model instances back, best first.

Example::

    from semsearch.django import semantic_search

    for article in semantic_search(Article, "brewing green tea", k=5, where={"lang": "en"}):
        print(article.semsearch_score, article.title)

    Article.semsearch.search("brewing green tea", k=5, mode="hybrid")   # the same, from the model
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models

from semsearch.django.registration import Registration, registration_for
from semsearch.indexing import in_score_order
from semsearch.results import SearchResult

if TYPE_CHECKING:
    from semsearch.collection import Collection
    from semsearch.indexing import IndexReport


def semantic_search(
    model: type[models.Model] | models.QuerySet[Any] | str,
    query: str,
    *,
    k: int = 10,
    mode: str = "vector",
    where: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    **options: Any,
) -> list[Any]:
    """The ``k`` instances best matching ``query``, best first, each with ``.semsearch_score``.

    ``model`` is a registered model (or its ``"app_label.Model"``) or a queryset of one: the hits are then
    fetched through it, so rows it excludes (or rows deleted since they were
    indexed) are skipped and fewer than ``k`` may come back; filter with ``where=``
    (metadata) or ``tenant=`` to keep ``k``. ``options`` go to
    :meth:`semsearch.Collection.search` (``oversample``, ``exact``, ...). A model registered
    with ``passages=`` still comes back once per instance, scored by its best passage, which
    it carries as ``semsearch_passage`` (``start``/``end``: offsets into its text).

    Example::

        semantic_search(Article, "green tea", k=3, mode="hybrid", where={"lang": "en"})
        semantic_search(Article.objects.filter(published=True), "green tea")
    """
    queryset = model if isinstance(model, models.QuerySet) else None
    reg = registration_for(queryset.model if queryset is not None else model)
    result = reg.collection().search(query, k=k, mode=mode, where=where, tenant=tenant, **options)
    return instances(reg, result, queryset=queryset)


def instances(reg: Registration, result: SearchResult, *, queryset: models.QuerySet[Any] | None = None) -> list[Any]:
    """The instances of ``result``'s hits in score order, one query; rows no longer there are skipped."""
    pk_field = reg.model._meta.pk
    assert pk_field is not None
    pks = []
    for hit in result:
        try:
            pks.append(pk_field.to_python(hit.key))
        except ValidationError:
            continue  # a key this model cannot have (written by other code): not one of its rows
    source = queryset if queryset is not None else reg.get_queryset()
    return in_score_order(result, {str(obj.pk): obj for obj in source.filter(pk__in=pks)})


class SemanticAccessor:
    """``Model.semsearch``: search a registered model, reach its collection, reindex it.

    Example::

        Article.semsearch.search("green tea", k=5)          # [<Article ...>, ...]
        Article.semsearch.hits("green tea", k=5).keys       # ['12', '7', ...]
        Article.semsearch.collection().count()
    """

    def __init__(self, registration: Registration) -> None:
        self.registration = registration

    def search(
        self, query: str, *, k: int = 10, queryset: models.QuerySet[Any] | None = None, **options: Any
    ) -> list[Any]:
        """As :func:`semantic_search` on this model (or on ``queryset``)."""
        target = queryset if queryset is not None else self.registration.model
        return semantic_search(target, query, k=k, **options)

    def hits(self, query: str | None = None, **options: Any) -> SearchResult:
        """The raw :class:`~semsearch.SearchResult` (keys are ``str(pk)``), without loading instances."""
        return self.collection().search(query, **options)

    def collection(self) -> Collection:
        """The model's :class:`~semsearch.Collection`."""
        return self.registration.collection()

    def reindex(self, *, batch_size: int = 500, progress: bool = False) -> IndexReport:
        """As ``manage.py semsearch_index --model <this model>``; see :func:`semsearch.django.sync.reindex`."""
        from semsearch.django.sync import reindex

        return reindex(self.registration, batch_size=batch_size, progress=progress)

    def __repr__(self) -> str:
        return f"<semsearch of {self.registration.label} in {self.registration.collection_name!r}>"
