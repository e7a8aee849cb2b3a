# generated from semsearch/aio/repairs.py by tools/make_sync.py: do not edit (edit the source, then `make sync`)
"""A collection's HNSW index checked and repaired: the I/O of :mod:`semsearch.doctor`, written once.

:func:`diagnose` reads the index's state, :func:`repair` builds a missing or invalid one
next to the live one (concurrently, :meth:`Database.replace_index`) or drops a leftover,
:func:`ensure_index` runs both before a write, :func:`bulk_lock` marks a bulk load. What
the states mean and the statements are :mod:`semsearch.doctor`'s.
Written once, for asyncio, in ``semsearch/aio/repairs.py``;
``semsearch/repairs.py`` is generated from it (``tools/make_sync.py``).

Example::

    found = diagnose(col)
    if not found.healthy:
        found = repair(col, found)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg

from semsearch import changes, doctor
from semsearch.doctor import DoctorReport
from semsearch.errors import DatabaseError, PermissionDeniedError
from semsearch.faces import Stored


def diagnose(col: Stored) -> DoctorReport:
    """The state of ``col``'s HNSW index (nothing is changed); the handle's searches learn it too.

    Judged by the catalog's row as it is now: a handle's older row would take another plan's
    index for a broken one, and "repair" it back to the old plan.
    """
    col._reload()
    with col.db.connection() as conn:
        (indexes_step, busy_step) = doctor.inspect_steps(col.layout, col.name)
        cur = conn.execute(*indexes_step)
        indexes = cur.fetchall()
        cur = conn.execute(*busy_step)
        busy = cur.fetchone()
    found = doctor.report(col.layout, col.name, indexes, busy)  # type: ignore[arg-type]
    col._indexed = found.valid
    return found


def repair(col: Stored, found: DoctorReport) -> DoctorReport:
    """Fix what ``found`` says: build a missing or invalid index (concurrently), drop a leftover.

    Only the table's owner can: another role gets a :class:`~semsearch.errors.DatabaseError`.
    """
    try:
        return _repair(col, found)
    except (psycopg.errors.InsufficientPrivilege, PermissionDeniedError) as exc:
        raise doctor.not_owner(found, exc) from None


def _repair(col: Stored, found: DoctorReport) -> DoctorReport:
    if found.healthy or found.busy:
        return found
    if not (found.indexed and found.valid):
        # builds <table>_hnsw_next (dropping a leftover first) and swaps it in, concurrently
        col.db.replace_index(col.info, concurrently=True)
        return replace(diagnose(col), repaired=(f"built {found.table}_hnsw",))
    with col.db.connection() as conn:
        # one try: a session holding the DDL lock is building, and its _hnsw_next is no leftover
        cur = conn.execute(changes.TRY_LOCK, [col.name])
        if not cur.fetchone()[0]:  # type: ignore[index]
            return replace(found, building=True)
        try:
            for stmt in doctor.drop_leftovers_steps(col.layout):
                conn.execute(stmt)
        finally:
            conn.execute(changes.UNLOCK, [col.name])
    return replace(diagnose(col), repaired=tuple(f"dropped {name}" for name in found.leftovers))


def ensure_index(col: Stored) -> None:
    """Before a write: repair what a killed load or build left (checked at most every ``doctor.CHECK_SECONDS``)."""
    if time.monotonic() < col._index_checked_until:
        return
    found = diagnose(col)
    if not found.healthy:
        try:
            found = repair(col, found)
        except DatabaseError as exc:
            doctor.unrepaired(found, exc)
    if found.healthy:
        col._index_checked_until = time.monotonic() + doctor.CHECK_SECONDS


@contextmanager
def bulk_lock(col: Stored) -> Iterator[None]:
    """Mark a bulk load (its index dropped on purpose) for as long as it runs: no one repairs it meanwhile.

    A session lock on a connection of its own, outside the pool: it goes when the load
    ends, or with the connection when the loading process is killed.
    """
    with psycopg.Connection.connect(col.db.url, autocommit=True) as conn:
        conn.execute(doctor.BULK_LOCK, [col.name])
        yield
