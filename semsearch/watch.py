"""Backfill as a service: drain the pending rows, then wait for more (LISTEN/NOTIFY, with a poll).

Every statement that leaves rows of a collection pending (a deferred add, a synced
table's write, a raw edit of a text) sends ``pg_notify('semsearch_pending', <name>)``
once, at commit (migration 0004). :func:`watch` listens on that channel on a connection
of its own, so a notification sent while it embeds waits for it there:

1. ``LISTEN``, then drain with :func:`semsearch.backfill.backfill` (rows written before
   the ``LISTEN`` are found by the drain, rows after it by a notification);
2. wait for a notification naming the collection, or ``poll`` seconds (rows that
   bypass triggers, a lost connection), and drain again.

It is the backfill's guarantees that make it a safe service: a row is marked only
by writing its vector, so a crash loses at most the batch in flight, and a second
watcher (or a one-off backfill) of the same collection waits on the backfill's
advisory lock instead of paying for the same rows: it finds the lock taken, waits for
the next notification, and takes over if the first one stops. A lost connection
(server restart, ``pg_terminate_backend``) and a provider outage that outlasts the
embedder's own retries (5xx, 429, network) are logged and retried with backoff, up to
30 seconds apart; the rows wait, pending. A refusal of even a harmless control text
(wrong model or dims) is raised: retrying cannot help. ``stop`` (a
:class:`threading.Event`) ends it between batches; with none, SIGINT and SIGTERM set one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg_pool import PoolClosed, PoolTimeout

from semsearch.backfill import BackfillResult, backfill
from semsearch.errors import BackfillRunningError, ConfigurationError, DatabaseError, EmbeddingError
from semsearch.faces import Stored

log = logging.getLogger(__name__)

#: the channel semsearch.notify_pending() sends collection names on
CHANNEL = "semsearch_pending"
#: how often a wait looks at the stop event (seconds)
TICK = 0.25
#: drains woken by notifications start at least this far apart (seconds): any role may NOTIFY the
#: channel, and a flood of them then costs at most 1/this cheap drains a second, not one each
MIN_DRAIN_INTERVAL = 0.1
MAX_BACKOFF = 30.0


def watch(
    col: Stored,
    *,
    batch_size: int = 256,
    poll: float = 60.0,
    stop: threading.Event | None = None,
    progress: bool = False,
) -> BackfillResult:
    """Embed pending rows of ``col`` as they arrive until ``stop`` is set (or SIGINT/SIGTERM); the totals.

    Example::

        stop = threading.Event()
        threading.Thread(target=col.backfill, kwargs={"watch": True, "stop": stop}).start()
        ...
        stop.set()     # returns after the batch in flight
    """
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not 0 < poll <= 86400:
        raise ConfigurationError(f"expected poll= seconds between 0 and 86400, got {poll!r}")
    with _signals(stop) as event:
        return _run(col, event, batch_size=batch_size, poll=float(poll), progress=progress)


@contextmanager
def _signals(stop: threading.Event | None) -> Iterator[threading.Event]:
    if stop is not None:
        yield stop
        return
    if threading.current_thread() is not threading.main_thread():
        raise ConfigurationError("expected stop= (a threading.Event) when watching outside the main thread, got none")
    event = threading.Event()
    handlers = {s: signal.signal(s, lambda *_: event.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _run(col: Stored, stop: threading.Event, *, batch_size: int, poll: float, progress: bool) -> BackfillResult:
    started = time.perf_counter()
    embedded = batches = quarantined = documents = 0
    backoff = outage = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(col.db.url, autocommit=True) as listen:
                listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                backoff = 0.5
                while not stop.is_set():
                    drained = time.monotonic()
                    try:
                        done = backfill(col, batch_size=batch_size, progress=progress, stop=stop)
                    except BackfillRunningError:
                        log.debug("%s: another backfill holds the collection; waiting", col.name)
                    except EmbeddingError as exc:
                        if exc.refused_input:
                            raise  # a harmless control text refused too: the model, dims or key are wrong
                        # the provider is down or throttling past its retries: the rows stay pending
                        log.warning("%s: embedding failed (%s); again in %.1f s", col.name, exc, outage)
                        stop.wait(outage)
                        outage = min(outage * 2, MAX_BACKOFF)
                        continue
                    else:
                        outage = 0.5
                        embedded, batches = embedded + done.embedded, batches + done.batches
                        quarantined, documents = quarantined + done.quarantined, documents + done.documents
                        if done.embedded or done.quarantined or done.documents:
                            log.info(
                                "%s: embedded %d rows, %d to quarantine, %d documents written",
                                col.name, done.embedded, done.quarantined, done.documents,
                            )  # fmt: skip
                    _wait(listen, col.name, poll=poll, stop=stop, not_before=drained + MIN_DRAIN_INTERVAL)
        except PoolClosed as exc:  # the Database was closed under it: nothing to come back to
            raise DatabaseError(f"expected the database of {col.name!r} open while watching, got it closed") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # the server went away (restart, terminated backend): try again, further apart each time
            log.warning("%s: lost the database (%s); again in %.1f s", col.name, str(exc).strip(), backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
    return BackfillResult(
        pending=0,
        embedded=embedded,
        batches=batches,
        est_tokens=0,
        est_cost_usd=None,
        seconds=time.perf_counter() - started,
        quarantined=quarantined,
        documents=documents,
    )


def _wait(listen: psycopg.Connection, name: str, *, poll: float, stop: threading.Event, not_before: float) -> None:
    """Until a notification for ``name`` (others are dropped), ``poll`` seconds, or ``stop``.

    Notifications carry no authority (any role can send one): one only brings the next drain
    forward, never before ``not_before``, and every notification received by then is covered
    by that drain, so they are consumed together.
    """
    deadline = time.monotonic() + poll
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if any(note.payload == name for note in listen.notifies(timeout=min(TICK, left), stop_after=1)):
            stop.wait(max(0.0, not_before - time.monotonic()))
            for _ in listen.notifies(timeout=0):
                pass  # received before the drain starts: the drain sees their rows
            return
