"""A collection's deferred rows: how many wait for an embedding, which the provider refused, and the backfill.

``add(..., defer=True)`` stores texts without embedding them; :meth:`backfill` embeds them
later (:mod:`semsearch.backfill`, or as a service: :mod:`semsearch.watch`), and rows the
provider refuses wait in quarantine. Written once, for asyncio, in ``semsearch/aio/deferred.py``;
``semsearch/deferred.py`` is generated from it (``tools/make_sync.py``). The backfill itself
is the one sync implementation, run in a worker thread by the async collection.

Example::

    await col.add(["a"], ["cats purr"], defer=True)
    await col.pending()      # 1
    await col.backfill()
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, cast

from semsearch.aio.faces import Stored
from semsearch.aio.flavour import offload
from semsearch.aio.pending import awaitable
from semsearch.errors import ConfigurationError

if TYPE_CHECKING:
    from semsearch.backfill import BackfillResult


class AsyncDeferred:
    """The deferred rows of a collection (a mixin; use a collection)."""

    @awaitable
    async def pending(self) -> int:
        """Rows stored with ``defer=True`` that still wait for an embedding (not those in quarantine).

        Example::

            await col.pending()     # 12
        """
        from semsearch.backfill import pending_statement

        col = _collection(self)
        if col._check_due:
            await col._reload()  # the table the catalog names now
        async with col.db.connection() as conn:
            cur = await conn.execute(pending_statement(col))
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    @awaitable
    async def quarantined(self) -> list[tuple[str, str]]:
        """``(key, reason)`` of rows whose text the embedding provider refused; backfill skips them.

        A row leaves quarantine when its text changes, or when
        ``backfill(retry_quarantined=True)`` embeds it.

        Example::

            await col.quarantined()    # [('doc-17', "... refused with status 400 (not retried): the api said ...")]
        """
        from semsearch.backfill import quarantined_statement

        col = _collection(self)
        async with col.db.connection() as conn:
            cur = await conn.execute(quarantined_statement(col))
            rows = await cur.fetchall()
        return [(r[0], r[1]) for r in rows]

    @awaitable
    async def backfill(
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

            (await col.backfill(dry_run=True)).est_cost_usd    # before paying for it
            await col.backfill(progress=True)
            await col.backfill(watch=True, stop=stop)          # until stop.set()
        """
        col = _collection(self)
        if watch:
            if dry_run or limit is not None or retry_quarantined:
                raise ConfigurationError("expected watch=True without dry_run, limit or retry_quarantined")
            from semsearch.watch import watch as watching

            return await offload(col, watching, batch_size=batch_size, poll=poll, stop=stop, progress=progress)
        from semsearch.backfill import backfill

        return await offload(
            col, backfill, batch_size=batch_size, progress=progress, dry_run=dry_run, limit=limit,
            retry_quarantined=retry_quarantined,
        )  # fmt: skip


def _collection(obj: AsyncDeferred) -> Stored:
    return cast(Stored, obj)  # a mixin of the collection, which has that face (checked there)
