"""A search's round trip on an async connection: what :func:`semsearch.searching.execute` sends, awaited.

The statements, their order and the fallback come from :func:`semsearch.searching.round_trip`
and :func:`semsearch.searching.fallback`: one pipelined round trip, prepared, the query
vector in binary, as in the sync API.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import psycopg

from semsearch import guards, searching, session_settings


async def execute(
    conn: psycopg.AsyncConnection[Any], p: searching.SearchPlan, *, check: str | None = None
) -> tuple[list[tuple[Any, ...]], guards.Checked | None]:
    """Run a plan in one round trip; ``(rows, found)`` as :func:`semsearch.searching.execute` returns them."""
    carried = None if p.distributed else session_settings.carried(conn)
    steps = searching.round_trip(p, check, carried)
    # Citus: the SET LOCALs and the statement in one transaction, planned each time
    prepare = not p.distributed
    try:
        async with conn.transaction() if p.distributed else nullcontext():
            if len(steps) == 1:
                rows, found = await (await conn.execute(*steps[0], prepare=prepare)).fetchall(), None
            else:
                async with conn.pipeline():
                    curs = [await conn.execute(stmt, params, prepare=prepare) for stmt, params in steps]
                rows = await curs[-1].fetchall()
                found = guards.checked(await curs[-2].fetchone()) if check is not None else None
            again = searching.fallback(p, rows, carried=carried is not None)
            if again:
                async with conn.pipeline():
                    curs = [await conn.execute(stmt, params, prepare=prepare) for stmt, params in again]
                rows = await curs[-1].fetchall()
    except BaseException:
        session_settings.doubted(conn)
        raise
    if carried is not None:
        session_settings.kept(conn, session_settings.wanted(p.settings, p.timeout_ms))
    return rows, found
