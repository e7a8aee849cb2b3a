"""A collection in automatic mode follows its size: the rule is asked after loads, a new plan built online.

The rule is :func:`semsearch.plan_choice.choose_plan`; this module asks it for a collection
and, when its answer differs from the plan the collection has, changes the plan as
``alter_collection(compression=...)`` does: the new HNSW index is built next to the live one
(``CREATE INDEX CONCURRENTLY``: searches and writes go on) and one short transaction swaps it
in with the catalog row (the new plan, its default oversampling, the reason) and the SQL
functions. Handles follow the new row at their next check (:mod:`semsearch.handle`).

When it is asked (:meth:`~semsearch.Collection.add_many` calls it):

- after every ``add_many`` that stored rows (``autotune=False`` skips it for that call):
  a catalog read and a ``count(*)``, then a rebuild only if the answer changed, and then
  autotune measures the new plan (its tuned values belong to the old one); the count is
  made once, a :class:`Size` that autotune is handed too;
- by a bulk load, just before it builds its index, so that a large first load builds the
  plan its size asks for once rather than the small plan and then the large one.

A collection that shrinks is noticed at its next ``add_many`` (``delete`` and ``add`` do not
ask: they are hot paths; a collection grown by ``add`` alone asks when :func:`follow_size` is
called, or at ``alter_collection(name, compression="auto")``). Only the table's owner can
build its index: for another role the change is logged and left for the owner's next load.

Example::

    new = follow_size(col)          # None: the plan it has is the one its size asks for
    print(new.plan_reason if new else col.info.plan_reason)
"""

from __future__ import annotations

import logging

from psycopg import sql

from semsearch import catalog, changes, ddl, plan_choice, statements, stored
from semsearch.collection_info import CollectionInfo
from semsearch.faces import Connections, Stored

log = logging.getLogger(__name__)

#: whether the session's role owns the collection's table (the one parameter): only its owner builds indexes
OWNS = sql.SQL("SELECT semsearch.owns(%s)")


class Size:
    """A collection's size after a load, counted the first time a step asks and then kept.

    The steps after one ``add_many`` (the plan rule, then autotune) share one: one scan of the
    table, not one each. ``rows`` is every row of the table (passages one by one), what the plan
    rule asks about; ``documents`` is what ``count()`` says (a collection with passages counts its
    documents), what autotune compares with the rows it was tuned at.

    Example::

        size = Size()
        follow_size(col, size=size)
        autotune(col, size=size)          # no second count(*)
    """

    def __init__(self) -> None:
        self._counted: tuple[int, int] | None = None

    def rows(self, db: Connections, info: CollectionInfo) -> int:
        """Every row of the collection's table (embedded or pending)."""
        return self._count(db, info)[0]

    def documents(self, db: Connections, info: CollectionInfo) -> int:
        """What ``count()`` says: its rows, or its documents for a collection with passages."""
        return self._count(db, info)[1]

    def _count(self, db: Connections, info: CollectionInfo) -> tuple[int, int]:
        if self._counted is None:
            with db.connection() as conn:
                stmt = stored.size_statement(info.layout, documents=info.passages is not None)
                rows, documents = conn.execute(stmt).fetchone()  # type: ignore[misc]
            self._counted = (int(rows), int(documents))
        return self._counted


def follow_size(col: Stored, *, build: bool = True, size: Size | None = None) -> CollectionInfo | None:
    """In automatic mode, move ``col`` to the plan its row count asks for; the new row, or None if none.

    ``build=False`` (a bulk load, which dropped the index and builds it afterwards with
    ``rebuild_index``) changes only the catalog row and the SQL functions, in one transaction.
    ``size``: the count, if a step after the same load made it (or will need it: it is kept there).

    Example::

        follow_size(col)        # after rows were added outside add_many
    """
    with col.db.connection() as conn:
        info = catalog.read(conn, col.name)
        if info.plan_mode != plan_choice.AUTO:
            return None
        owner = conn.execute(OWNS, [info.table_name]).fetchone()[0]  # type: ignore[index]
    rows = (size or Size()).rows(col.db, info)
    change = ddl.alter(info, concurrently=True, compression=plan_choice.AUTO, rows=rows)
    if change.index is None:
        return None
    if not owner:
        log.warning("%s needs a new plan, left to its table's owner: %s", info.name, change.new.plan_reason)
        return None
    log.info("%s changes plan: %s", info.name, change.new.plan_reason)
    if build:
        col.db.replace_index(change.new, concurrently=True, replan=True)
    else:
        with col.db.connection() as conn, changes.ddl_lock(conn, info.name), conn.transaction():
            for stmt in ddl.plan_statements(change.new, alone=True):
                conn.execute(stmt)
    col._reload()
    return change.new


def count_rows(db: Connections, info: CollectionInfo) -> int:
    """The rows the rule is asked about: all of the collection's table (passages count one by one)."""
    with db.connection() as conn:
        return int(conn.execute(statements.count(info.layout)).fetchone()[0])  # type: ignore[index]
