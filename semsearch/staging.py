# generated from semsearch/aio/staging.py by tools/make_sync.py: do not edit (edit the source, then `make sync`)
"""A checked batch sent to Postgres: COPY into a staging table and one upsert, or a plain COPY of new keys.

The I/O of :mod:`semsearch.ingest` (which checks rows and makes the statements), written once:
``semsearch/staging.py`` is generated from this async source (``tools/make_sync.py``).

Example::

    with conn.transaction():
        inserted, updated = write(conn, col.layout, rows, vectors)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from semsearch import ingest
from semsearch.layout import Layout


def write(
    conn: psycopg.Connection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
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
        conn.execute(stmt)
    _copy(conn, ingest.stage(layout), rows, vectors)
    upsert = ingest.upsert_statement(layout)
    got = None
    for attempt in (1, 2):
        try:
            # a savepoint: a deadlock aborts only the upsert, whose locks it releases
            with conn.transaction():
                cur = conn.execute(upsert)
                got = cur.fetchone()
            break
        except ingest.CONFLICTS as exc:
            if attempt == 2:
                raise ingest.conflict_error(layout, rows, exc) from exc
    assert got is not None
    return int(got[0]), int(got[1])


def copy_new(
    conn: psycopg.Connection[Any], layout: Layout, rows: ingest.Rows, vectors: Sequence[np.ndarray | None]
) -> int:
    """COPY a batch of new keys straight into the table: twice the rows/s of :func:`write`.

    Raises ``UniqueViolation`` if a key exists; run it in a savepoint and fall back to
    :func:`write` then.
    """
    # in key order, like write(): a concurrent writer of the same new keys waits, then fails over
    _copy(conn, layout.table, rows, vectors, order=ingest.key_order(rows))
    return len(rows.keys)


def _copy(
    conn: psycopg.Connection[Any],
    table: sql.Composable,
    rows: ingest.Rows,
    vectors: Sequence[np.ndarray | None],
    order: Sequence[int] | None = None,
) -> None:
    with conn.cursor() as cur, cur.copy(ingest.copy_statement(table)) as copy:
        copy.set_types(ingest.COPY_TYPES)
        for record in ingest.copy_records(rows, vectors, order):
            copy.write_row(record)


def stored_vectors(conn: psycopg.Connection[Any], layout: Layout, hashes: list[bytes]) -> dict[bytes, np.ndarray]:
    """Vectors already stored for these content hashes (same collection: same model and dims)."""
    if not hashes:
        return {}
    cur = conn.execute(ingest.stored_vectors_statement(layout), [list(set(hashes))])
    return ingest.known_vectors(cur.fetchall())
