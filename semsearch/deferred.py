# generated from semsearch/aio/deferred.py by tools/make_sync.py: do not edit (edit the source, then `make sync`)
"""A collection's deferred rows: how many wait for an embedding, which the provider refused, and the backfill.

``add(..., defer=True)`` stores texts without embedding them; :meth:`backfill` embeds them
later (:mod:`semsearch.backfill`, or as a service: :mod:`semsearch.watch`), and rows the
provider refuses wait in quarantine. Written once, for asyncio, in ``semsearch/aio/deferred.py``;
``semsearch/deferred.py`` is generated from it (``tools/make_sync.py``). The backfill itself
is the one sync implementation, run in a worker thread by the async collection.

Example::

    col.add(["a"], ["cats purr"], defer=True)
    col.pending()      # 1
    col.backfill()
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, cast

from semsearch.errors import ConfigurationError
from semsearch.faces import Stored
from semsearch.flavour import offload

if TYPE_CHECKING:
    from semsearch.backfill import BackfillResult


class Deferred:
    """The deferred rows of a collection (a mixin; use a collection)."""

    def pending(self) -> int:
        """Rows stored with ``defer=True`` that still wait for an embedding (not those in quarantine).

        Example::

            col.pending()     # 12
        """
        from semsearch.backfill import pending_statement

        col = _collection(self)
        if col._check_due:
            col._reload()  # the table the catalog names now
        with col.db.connection() as conn:
            cur = conn.execute(pending_statement(col))
            row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def quarantined(self) -> list[tuple[str, str]]:
        """``(key, reason)`` of rows whose text the embedding provider refused; backfill skips them.

        A row leaves quarantine when its text changes, or when
        ``backfill(retry_quarantined=True)`` embeds it.

        Example::

            col.quarantined()    # [('doc-17', "... refused with status 400 (not retried): the api said ...")]
        """
        from semsearch.backfill import quarantined_statement

        col = _collection(self)
        with col.db.connection() as conn:
            cur = conn.execute(quarantined_statement(col))
            rows = cur.fetchall()
        return [(r[0], r[1]) for r in rows]

    def backfill(
        self,
        *,
        batch_size: int = 256,
        progress: bool = False,
        dry_run: bool = False,
        limit: int | None = None,
        retry_quarantined: bool = False,
        watch: bool = False,
        poll: float = 60.0,
        stop: threading.Event | None = None,
    ) -> BackfillResult:
        """Embed pending rows in resumable batches (see :mod:`semsearch.backfill`).

        Rows whose text the provider refuses go to quarantine (``quarantined``)
        instead of failing every run; ``retry_quarantined=True`` tries them again.
        ``watch=True`` runs as a service (:mod:`semsearch.watch`): after draining it waits
        for new pending rows (LISTEN/NOTIFY, and every ``poll`` seconds), reconnects when
        the server goes away, and returns the totals once ``stop`` is set (by default:
        SIGINT or SIGTERM; the async collection runs the sync backfill in a worker thread,
        so it needs ``stop=``).

        Example::

            col.backfill(dry_run=True).est_cost_usd    # before paying for it
            col.backfill(progress=True)
            col.backfill(watch=True, stop=stop)          # until stop.set()
        """
        col = _collection(self)
        if watch:
            if dry_run or limit is not None or retry_quarantined:
                raise ConfigurationError("expected watch=True without dry_run, limit or retry_quarantined")
            from semsearch.watch import watch as watching

            return offload(col, watching, batch_size=batch_size, poll=poll, stop=stop, progress=progress)
        from semsearch.backfill import backfill

        return offload(
            col, backfill, batch_size=batch_size, progress=progress, dry_run=dry_run, limit=limit,
            retry_quarantined=retry_quarantined,
        )  # fmt: skip


def _collection(obj: Deferred) -> Stored:
    return cast(Stored, obj)  # a mixin of the collection, which has that face (checked there)
