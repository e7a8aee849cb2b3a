"""Many searches in one round trip on an async connection: :func:`semsearch.batch.execute`, awaited.

The steps, their order and the fallbacks come from :mod:`semsearch.batch`; only the
driver calls differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import psycopg

from semsearch import batch, guards, searching


async def execute(
    conn: psycopg.AsyncConnection[Any], plans: Sequence[searching.SearchPlan], *, check: str | None
) -> tuple[list[list[tuple[Any, ...]]], guards.Checked | None]:
    """Run the plans in one pipeline; ``(rows per plan, found)`` as :func:`semsearch.batch.execute` returns them."""
    steps, last, check_at = batch.round_trip(plans, check)
    prepare = not any(p.distributed for p in plans)
    async with nullcontext() if prepare else conn.transaction():
        async with conn.pipeline():
            curs = [await conn.execute(stmt, params, prepare=prepare) for stmt, params in steps]
        results = [await curs[i].fetchall() for i in last]
        found = guards.checked(await curs[check_at].fetchone()) if check_at is not None else None
        again = batch.fallbacks(plans, results)
        if again:
            async with conn.pipeline():
                more = [[await conn.execute(*step, prepare=prepare) for step in steps][-1] for _, steps in again]
            for (i, _), cur in zip(again, more, strict=True):
                results[i] = await cur.fetchall()
    return results, found
