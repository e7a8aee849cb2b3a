"""A checked batch sent to Postgres: COPY into a staging table and one upsert, or a plain COPY of new keys.

The I/O of :mod:`semsearch.ingest` (which checks rows and makes the statements), written once:
``semsearch/staging.py`` is generated from this async source (``tools/make_sync.py``).

Example::

    async with conn.transaction():
        inserted, updated = await write(conn, col.layout, rows, vectors)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from semsearch import ingest
from semsearch.layout import Layout


async def write(
    conn: psycopg.AsyncConnection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
) -> tuple[int, int]:
    """Upsert one checked batch in the caller's transaction; return (inserted, updated).

    A ``None`` vector leaves the row pending for :func:`semsearch.backfill.backfill`;
    it keeps its stored vector if its text did not change.

    Rows are written (and so locked) in byte order of key, whatever order the batch
    has: two writers of overlapping keys then wait for each other instead of
    deadlocking. Should a deadlock still happen (a writer outside semsearch), the
    upsert runs once more in a savepoint, then raises :class:`~semsearch.errors.WriteConflictError`.
    """
    for stmt in ingest.stage_statements(layout):
        await conn.execute(stmt)
    await _copy(conn, ingest.stage(layout), rows, vectors)
    upsert = ingest.upsert_statement(layout)
    got = None
    for attempt in (1, 2):
        try:
            # a savepoint: a deadlock aborts only the upsert, whose locks it releases
            async with conn.transaction():
                cur = await conn.execute(upsert)
                got = await cur.fetchone()
            break
        except ingest.CONFLICTS as exc:
            if attempt == 2:
                raise ingest.conflict_error(layout, rows, exc) from exc
    assert got is not None
    return int(got[0]), int(got[1])


async def copy_new(
    conn: psycopg.AsyncConnection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
) -> int:
    """COPY a batch of new keys straight into the table: twice the rows/s of :func:`write`.

    Raises ``UniqueViolation`` if a key exists; run it in a savepoint and fall back to
    :func:`write` then.
    """
    # in key order, like write(): a concurrent writer of the same new keys waits, then fails over
    await _copy(conn, layout.table, rows, vectors, order=ingest.key_order(rows))
    return len(rows.keys)


async def _copy(
    conn: psycopg.AsyncConnection[Any],
    table: sql.Composable,
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
    """Vectors already stored for these content hashes (same collection: same model and dims)."""
    if not hashes:
        return {}
    cur = await conn.execute(ingest.stored_vectors_statement(layout), [list(set(hashes))])
    return ingest.known_vectors(await cur.fetchall())
