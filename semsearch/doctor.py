"""A collection's HNSW index checked, and repaired: what a load or a build killed midway leaves.

``add_many`` into an empty collection drops the index for the load and builds it at the
end; ``rebuild_index`` and ``alter_collection`` build ``<table>_hnsw_next`` and swap it in.
Killed (``kill -9``, a lost host) before the end, they leave one of:

- ``missing``: no ``<table>_hnsw`` (the load's rows are committed, the build was not);
- ``invalid``: ``<table>_hnsw`` that Postgres marks invalid, or built on another plan's
  operator class than the catalog's;
- ``leftover``: a ``<table>_hnsw_next`` (invalid when its ``CREATE INDEX CONCURRENTLY`` was
  cut, valid when the swap never ran), which every write keeps up to date for nothing.

Searches then scan every row (they say so: :class:`~semsearch.errors.UnindexedWarning`).
:func:`diagnose` finds these, :func:`repair` builds the index next to the live one and
swaps it in (:meth:`Database.replace_index`, concurrently) or drops a leftover. Nothing is
repaired while another session builds or bulk-loads the collection (``busy``: its DDL
lock, or the bulk-load lock :func:`bulk_lock` holds, is taken): that is work under way,
not a crash. ``Collection.add``/``add_many``, ``Collection.doctor`` and
``semsearch doctor`` run them; the async API does the same with its own driver calls.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from semsearch import changes, guards
from semsearch.errors import DatabaseError, PermissionDeniedError, UnindexedWarning
from semsearch.faces import Stored
from semsearch.layout import Layout

#: the table's HNSW indexes by name: valid (and ready), operator class
INDEXES = sql.SQL(
    "SELECT c.relname, i.indisvalid AND i.indisready, o.opcname FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_opclass o ON o.oid = i.indclass[0] "
    "WHERE i.indrelid = to_regclass(%s) AND c.relname IN (%s, %s)"
)
#: whether another session holds the collection's DDL lock (building), a bulk load's lock (loading):
#: each taken and let go at once
BUSY = sql.SQL(
    "SELECT NOT CASE WHEN pg_try_advisory_lock(hashtext('semsearch.ddl'), hashtext(%(n)s)) "
    "THEN pg_advisory_unlock(hashtext('semsearch.ddl'), hashtext(%(n)s)) ELSE false END, "
    "NOT CASE WHEN pg_try_advisory_lock(hashtext('semsearch.bulk'), hashtext(%(n)s)) "
    "THEN pg_advisory_unlock(hashtext('semsearch.bulk'), hashtext(%(n)s)) ELSE false END, "
    # and whether the collection's table is there at all (a handle of a dropped collection asks too)
    "to_regclass(%(t)s) IS NOT NULL"
)
#: held (shared: loaders do not wait for each other) by a bulk load for as long as its index is dropped
BULK_LOCK = sql.SQL("SELECT pg_advisory_lock_shared(hashtext('semsearch.bulk'), hashtext(%s))")
#: how long a write trusts a healthy index before it checks again
CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class DoctorReport:
    """The state of a collection's HNSW index, and what :func:`repair` did about it.

    Example::

        report = col.doctor()
        report.healthy, report.problems     # (False, ('missing: ...',))
        col.doctor(repair=True).repaired    # ('built col_docs_hnsw',)
    """

    name: str
    table: str
    #: ``<table>_hnsw`` exists
    indexed: bool
    #: and is valid, on the catalog's plan
    valid: bool
    #: ``<table>_hnsw_next`` and the like, left by a killed build
    leftovers: tuple[str, ...]
    #: another session builds an index of the collection right now (maybe one killed whose server
    #: session finishes its statement before it rolls back)
    building: bool
    #: another session bulk-loads the collection (its index dropped until the load ends)
    loading: bool
    #: what :func:`repair` did
    repaired: tuple[str, ...] = ()

    @property
    def busy(self) -> bool:
        """A build or a bulk load is running: nothing is repaired meanwhile."""
        return self.building or self.loading

    @property
    def healthy(self) -> bool:
        return self.indexed and self.valid and not self.leftovers

    @property
    def problems(self) -> tuple[str, ...]:
        index = f"{self.table}_hnsw"
        found = []
        if not self.indexed:
            found.append(f"missing: no {index}, so vector searches scan every row (a killed bulk load?)")
        elif not self.valid:
            found.append(f"invalid: {index} is invalid or on another plan, so searches cannot use it")
        found += [
            f"leftover: {name} from a killed build, updated by every write for nothing" for name in self.leftovers
        ]
        return tuple(found)

    def __str__(self) -> str:
        if self.healthy:
            state = "healthy"
        else:
            running = " (a bulk load is running)" if self.loading else " (an index build is running)"
            state = "; ".join(self.problems) + (running if self.busy else "")
        done = f" - repaired: {', '.join(self.repaired)}" if self.repaired else ""
        return f"{self.name}: {state}{done}"


def inspect_steps(layout: Layout, name: str) -> list[tuple[sql.SQL, Any]]:
    """The two statements :func:`diagnose` (and the async API) runs, with their parameters."""
    table = layout.table_name
    return [
        (INDEXES, [f"semsearch.{table}", f"{table}_hnsw", f"{table}_hnsw_next"]),
        (BUSY, {"n": name, "t": f"semsearch.{table}"}),
    ]


def report(layout: Layout, name: str, indexes: Sequence[tuple[Any, ...]], busy: tuple[Any, ...]) -> DoctorReport:
    """The :class:`DoctorReport` of what :func:`inspect_steps` read (``busy``: the row of :data:`BUSY`).

    A table that is gone means the collection was dropped: :class:`~semsearch.errors.CollectionNotFoundError`.
    """
    if not busy[2]:
        raise guards.dropped(name)
    live = [r for r in indexes if r[0] == f"{layout.table_name}_hnsw"]
    expected = layout.plan.opclass(layout.storage).as_string(None)
    valid = bool(live) and bool(live[0][1]) and live[0][2] == expected
    leftovers = tuple(sorted(r[0] for r in indexes if r[0] != f"{layout.table_name}_hnsw"))
    return DoctorReport(name, layout.table_name, bool(live), valid, leftovers, bool(busy[0]), bool(busy[1]))


def diagnose(col: Stored) -> DoctorReport:
    """The state of ``col``'s HNSW index (nothing is changed); the handle's searches learn it too.

    Judged by the catalog's row as it is now: a handle's older row would take another plan's
    index for a broken one, and "repair" it back to the old plan.
    """
    col._reload()
    with col.db.connection() as conn:
        (indexes_step, busy_step) = inspect_steps(col.layout, col.name)
        indexes = conn.execute(*indexes_step).fetchall()
        busy = conn.execute(*busy_step).fetchone()
    found = report(col.layout, col.name, indexes, busy)  # type: ignore[arg-type]
    col._indexed = found.valid
    return found


def drop_leftovers_steps(layout: Layout) -> list[sql.Composed]:
    """Drop a killed build's ``_hnsw_next`` (outside a transaction, under the DDL lock)."""
    return [sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(layout.index_name("hnsw_next", schema=True))]


def repair(col: Stored, found: DoctorReport) -> DoctorReport:
    """Fix what ``found`` says: build a missing or invalid index (concurrently), drop a leftover.

    Only the table's owner can: another role gets a :class:`~semsearch.errors.DatabaseError`.
    """
    try:
        return _repair(col, found)
    except (psycopg.errors.InsufficientPrivilege, PermissionDeniedError) as exc:
        raise not_owner(found, exc) from None


def _repair(col: Stored, found: DoctorReport) -> DoctorReport:
    if found.healthy or found.busy:
        return found
    if not (found.indexed and found.valid):
        # builds <table>_hnsw_next (dropping a leftover first) and swaps it in, concurrently
        col.db.replace_index(col.info, concurrently=True)
        return replace(diagnose(col), repaired=(f"built {found.table}_hnsw",))
    with col.db.connection() as conn:
        # one try: a session holding the DDL lock is building, and its _hnsw_next is no leftover
        if not conn.execute(changes.TRY_LOCK, [col.name]).fetchone()[0]:  # type: ignore[index]
            return replace(found, building=True)
        try:
            for stmt in drop_leftovers_steps(col.layout):
                conn.execute(stmt)
        finally:
            conn.execute(changes.UNLOCK, [col.name])
    return replace(diagnose(col), repaired=tuple(f"dropped {name}" for name in found.leftovers))


def not_owner(found: DoctorReport, exc: Exception) -> DatabaseError:
    """A repair by a role that does not own the table (a writer may add rows, not build indexes)."""
    return DatabaseError(
        f"expected to run as the owner of {found.table} to repair its index, got: {str(exc).strip()}; "
        f"run `semsearch doctor {found.name} --repair` as its owner"
    )


def unrepaired(found: DoctorReport, exc: DatabaseError) -> None:
    """A write that could not repair the index goes on, and says so."""
    warnings.warn(f"{'; '.join(found.problems)}, and it stays: {exc}", UnindexedWarning, stacklevel=4)


def ensure_index(col: Stored) -> None:
    """Before a write: repair what a killed load or build left (checked at most every :data:`CHECK_SECONDS`)."""
    if time.monotonic() < col._index_checked_until:
        return
    found = diagnose(col)
    if not found.healthy:
        try:
            found = repair(col, found)
        except DatabaseError as exc:
            unrepaired(found, exc)
    if found.healthy:
        col._index_checked_until = time.monotonic() + CHECK_SECONDS


@contextmanager
def bulk_lock(col: Stored) -> Iterator[None]:
    """Mark a bulk load (its index dropped on purpose) for as long as it runs: no one repairs it meanwhile.

    A session lock on a connection of its own, outside the pool: it goes when the load
    ends, or with the connection when the loading process is killed.
    """
    with psycopg.connect(col.db.url, autocommit=True) as conn:
        conn.execute(BULK_LOCK, [col.name])
        yield
