"""Keep collections in step with committed rows: signals, ``on_commit``, and full reindexing.

``post_save`` / ``post_delete`` of a registered model only note the row's pk; one
``transaction.on_commit`` callback per transaction then reconciles every noted
row with what was committed: rows still in the registration's queryset are added
(``SYNC="immediate"``: embedded now; ``"deferred"``: stored pending for
``semsearch_backfill``), the others deleted from the collection. So nothing is
written inside the user's transaction, a rollback leaves the collection as it
was, and a whole transaction's rows are embedded in one batch.

A failure to index never fails the request whose data is already committed: it
is logged on the ``semsearch.django`` logger (an embedding failure stores the rows
pending instead), and ``manage.py semsearch_index`` repairs any drift, including
rows changed by ``QuerySet.update()``, ``bulk_create()`` or raw SQL, which send
no signals.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection as Sized
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from semsearch import indexing
from semsearch.django.conf import SemsearchSettings
from semsearch.indexing import IndexReport

if TYPE_CHECKING:
    from semsearch.django.registration import Registration

logger = logging.getLogger("semsearch.django")


def connect_signals(reg: Registration) -> None:
    """Note saves and deletes of ``reg.model`` and of its proxy models for reconciliation on commit.

    Receivers are per model, never global: a global ``post_delete`` receiver would
    turn off Django's fast deletes for every model of the project. Proxies are
    found once every model is loaded: the app's ``ready()`` calls this again.
    """

    def changed(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        note(reg, instance.pk, using)

    senders = [reg.model]
    if apps.models_ready:
        senders += [m for m in apps.get_models() if m._meta.proxy and m._meta.concrete_model is reg.model]
    for sender in senders:
        uid = f"semsearch:{sender._meta.label}"
        post_save.connect(changed, sender=sender, weak=False, dispatch_uid=uid)
        post_delete.connect(changed, sender=sender, weak=False, dispatch_uid=uid)


class PendingRows:
    """The ``on_commit`` callback of one transaction on one database: the registered rows it touched."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.touched: dict[Registration, set[Any]] = {}

    def __call__(self) -> None:
        for reg, pks in self.touched.items():
            reconcile(reg, pks, using=self.using)


def note(reg: Registration, pk: Any, using: str) -> None:
    """Reconcile row ``pk`` once its transaction commits (at once in autocommit).

    A transaction gets one :class:`PendingRows` callback. A pk noted inside a
    savepoint that is later rolled back stays noted: harmless, since reconciling
    reads the committed row.
    """
    conn = transaction.get_connection(using)
    if conn.in_atomic_block:
        for entry in conn.run_on_commit:
            if isinstance(entry[1], PendingRows):
                entry[1].touched.setdefault(reg, set()).add(pk)
                return
    pending = PendingRows(using)
    pending.touched[reg] = {pk}
    # in autocommit this runs now; robust: Django logs what escapes reconcile() instead of raising
    transaction.on_commit(pending, using=using, robust=True)


def reconcile(reg: Registration, pks: Sized[Any], *, using: str) -> None:
    """Make the collection hold exactly the committed rows among ``pks`` (logging, never raising)."""
    try:
        rows = reg.get_queryset().using(using).filter(pk__in=list(pks))
        docs = {str(obj.pk): reg.document(obj) for obj in rows}
        gone = {str(pk) for pk in pks} - set(docs)
        defer = SemsearchSettings.load().sync == "deferred"
        indexing.write(reg.collection(create=True), docs, gone, defer=defer, logger=logger, repair="semsearch_backfill")
    # the rows are committed already: an error here must not fail the request that saved them
    except Exception:
        logger.exception(
            "could not index %d %s row(s); `python manage.py semsearch_index --model %s` repairs it",
            len(pks),
            reg.label,
            reg.label,
        )


def reindex(reg: Registration, *, batch_size: int = 500, progress: bool = False) -> IndexReport:
    """Make ``reg``'s collection match its queryset: add and update every row, drop the rest, embed pending.

    Unchanged texts are not re-embedded, so a rerun is cheap. Creates the
    collection when missing.

    Example::

        reindex(registration_for(Article), progress=True)
    """
    col = reg.collection(create=True)
    rows = reg.get_queryset().order_by("pk")
    documents = ((str(obj.pk), reg.document(obj)) for obj in rows.iterator(chunk_size=batch_size))

    def alive(keys: list[str]) -> set[str]:
        pks = []
        for key in keys:
            with contextlib.suppress(ValidationError):  # not a pk of this model at all: goes
                pks.append(reg.model._meta.pk.to_python(key))
        return {str(obj.pk) for obj in reg.get_queryset().filter(pk__in=pks) if reg.document(obj)[0].strip()}

    return indexing.reindex(col, documents, alive=alive, total=rows.count(), batch_size=batch_size, progress=progress)
