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
:func:`~semsearch.repairs.diagnose` finds these, :func:`~semsearch.repairs.repair` builds the index next
to the live one and swaps it in (:meth:`Database.replace_index`, concurrently) or drops a leftover. Nothing is
repaired while another session builds or bulk-loads the collection (``busy``: its DDL
lock, or the bulk-load lock :func:`~semsearch.repairs.bulk_lock` holds, is taken): that is work under way,
not a crash. ``Collection.add``/``add_many``, ``Collection.doctor`` and
``semsearch doctor`` run them; their I/O is :mod:`semsearch.repairs` (generated from
:mod:`semsearch.aio.repairs`, the one source of both flavours).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from semsearch import guards
from semsearch.errors import DatabaseError, UnindexedWarning
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


def drop_leftovers_steps(layout: Layout) -> list[sql.Composed]:
    """Drop a killed build's ``_hnsw_next`` (outside a transaction, under the DDL lock)."""
    return [sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(layout.index_name("hnsw_next", schema=True))]


def not_owner(found: DoctorReport, exc: Exception) -> DatabaseError:
    """A repair by a role that does not own the table (a writer may add rows, not build indexes)."""
    return DatabaseError(
        f"expected to run as the owner of {found.table} to repair its index, got: {str(exc).strip()}; "
        f"run `semsearch doctor {found.name} --repair` as its owner"
    )


def unrepaired(found: DoctorReport, exc: DatabaseError) -> None:
    """A write that could not repair the index goes on, and says so."""
    warnings.warn(f"{'; '.join(found.problems)}, and it stays: {exc}", UnindexedWarning, stacklevel=4)
