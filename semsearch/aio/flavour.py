"""What the async flavour does where the sync one differs: the few lines its modules import.

``tools/make_sync.py`` rewrites the async modules into the sync ones, mapping these names
to :mod:`semsearch.flavour`'s: a long maintenance call (tune, evaluate, backfill, explain,
an index build, ...) runs its ONE sync implementation in a worker thread on a sync handle of
the same server (:meth:`AsyncDatabase.twin`, opened on first use, closed with the async
database); records may be an async iterable; texts are embedded without blocking the loop.

Example::

    await offload(col, tune, target_recall=0.99)    # tune(<sync twin of col>, ...) in a thread
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

from semsearch.embeddings import aembed

T = TypeVar("T")

__all__ = ["Records", "aembed", "offload", "records_of"]

#: what ``add_many`` takes: records as an iterable or an async iterable
Records = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]


async def records_of(records: Records) -> AsyncIterator[Mapping[str, Any]]:
    """The records, one by one, from an iterable or an async iterable."""
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record


async def offload(obj: Any, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(twin, *args, **kwargs)`` in a worker thread, ``twin`` the sync handle of ``obj``.

    ``obj`` is an :class:`~semsearch.aio.AsyncCollection` (its twin: the sync collection of the
    same name, embedder and splitter, which re-reads its row afterwards) or an :class:`~semsearch.aio.AsyncDatabase`.
    The errors are the sync call's own.
    """
    db = getattr(obj, "db", None)
    if db is None:  # a database
        twin_db = await obj.twin()
        return await asyncio.to_thread(fn, twin_db, *args, **kwargs)
    twin_db = await db.twin()
    given = obj._embedder if obj._own_embedder else None

    def run() -> T:
        # and the splitter it was given: a custom one is not stored (backfill drains a synced table's documents)
        return fn(twin_db.collection(obj.name, embedder=given, passages=obj._passages), *args, **kwargs)

    done = await asyncio.to_thread(run)
    await obj._reload()  # what the call stored (a tuned oversample, a new index) this handle now follows
    return done
