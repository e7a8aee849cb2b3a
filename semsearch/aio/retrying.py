"""A search's round trip, tried again until it answers for the catalog row the handle has.

A search reads one server (its caller pins it) and checks, in the same round trip, that the
handle's catalog row is still the name's. :func:`answered` runs ``round_trip`` up to three
times: after a broken connection (the pool revived, once), an error a changed row explains (a
query vector of a switched model's dims: the row re-read), or a check that found another
definition (migrate-model, alter, distribute). ``search`` and ``search_many`` both go through it.
Written once, for asyncio, in ``semsearch/aio/retrying.py``; ``semsearch/retrying.py`` is
generated from it (``tools/make_sync.py``).

Example::

    async def round_trip(changed):
        rows, found = await col.db.read(partial(execute, p=plan_of(col), check=col.name))
        return rows, col.name, found

    async with col.db.pinned():
        rows = await answered(col, round_trip)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from semsearch import guards
from semsearch.aio.faces import Stored
from semsearch.handle import rereads

#: what a round trip returns: (its result, the catalog check it sent or None, what that check found)
Trip = tuple[Any, str | None, guards.Checked | None]


async def answered(col: Stored, round_trip: Callable[[bool], Awaitable[Trip]]) -> Any:
    """The result of ``round_trip(changed)`` once its check answers for the handle's row (or at the third try).

    ``round_trip`` makes its statements from the handle's catalog row as it is now and runs
    them; ``changed`` is True when that row changed since its last call (a request made from
    the old row is made again), False at first and after a broken connection.
    """
    changed = False
    for attempt in (1, 2, 3):
        try:
            result, check, found = await round_trip(changed)
        except psycopg.errors.QueryCanceled as exc:
            raise guards.timed_out(exc, col.db.search_timeout) from None
        except psycopg.OperationalError as exc:
            # connections the server closed (a restart, a failover, an idle timeout): a search
            # only reads, so drop the dead ones from the pool and try once more
            if attempt > 1:
                raise guards.unanswered(exc) from None
            # the server answers again (or a DatabaseError now, not after the pool's timeout)
            await col.db.revive()
            changed = False
            continue
        except psycopg.errors.UndefinedObject:
            # the SQL functions' "unknown collection": dropped since this handle read it
            raise guards.dropped(col.name) from None
        except psycopg.Error as exc:
            # made from a row changed meanwhile (a query vector of a switched model's dims)?
            if attempt > 2 or not rereads(exc) or not await col._reload(read=True):
                raise
        else:
            if col._answered(check, found):
                return result
        # the definition changed (migrate-model, alter, distribute): search again with the new one
        changed = True
    return result
