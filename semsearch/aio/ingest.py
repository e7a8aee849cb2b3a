"""Writes on an async connection: :mod:`semsearch.ingest`'s statements, awaited.

The batch is checked, staged, upserted in key order and retried once after a
deadlock exactly as :func:`semsearch.ingest.write` does it; only the driver calls differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg

from semsearch import ingest
from semsearch.layout import Layout


async def write(
    conn: psycopg.AsyncConnection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
) -> tuple[int, int]:
    """Upsert one checked batch in the caller's transaction; ``(inserted, updated)`` (see :func:`ingest.write`)."""
    for stmt in ingest.stage_statements(layout):
        await conn.execute(stmt)
    await _copy(conn, ingest.stage(layout), rows, vectors)
    upsert = ingest.upsert_statement(layout)
    got = None
    for attempt in (1, 2):
        try:
            # a savepoint: a deadlock aborts only the upsert, whose locks it releases
            async with conn.transaction():
                got = await (await conn.execute(upsert)).fetchone()
            break
        except ingest.CONFLICTS as exc:
            if attempt == 2:
                raise ingest.conflict_error(layout, rows, exc) from exc
    assert got is not None
    return int(got[0]), int(got[1])


async def copy_new(
    conn: psycopg.AsyncConnection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
) -> int:
    """COPY a batch of new keys straight into the table (see :func:`ingest.copy_new`)."""
    await _copy(conn, layout.table, rows, vectors, order=ingest.key_order(rows))
    return len(rows.keys)


async def _copy(
    conn: psycopg.AsyncConnection[Any],
    table: Any,
    rows: ingest.Rows,
    vectors: Sequence[np.ndarray | None],
    order: Sequence[int] | None = None,
) -> None:
    async with conn.cursor() as cur, cur.copy(ingest.copy_statement(table)) as copy:
        copy.set_types(ingest.COPY_TYPES)
        for record in ingest.copy_records(rows, vectors, order):
            await copy.write_row(record)


async def stored_vectors(
    conn: psycopg.AsyncConnection[Any], layout: Layout, hashes: list[bytes]
) -> dict[bytes, np.ndarray]:
    """Vectors already stored for these content hashes (see :func:`ingest.stored_vectors`)."""
    if not hashes:
        return {}
    cur = await conn.execute(ingest.stored_vectors_statement(layout), [list(set(hashes))])
    return ingest.known_vectors(await cur.fetchall())
