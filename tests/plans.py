"""EXPLAIN helpers shared by the tests that prove which index a search uses."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from semsearch import statements


def search_plan(col: Any, vector: Any, *, seqscan: bool = True, **search: Any) -> str:
    """EXPLAIN ANALYZE of what ``col.search(vector=..., **search)`` runs.

    ``seqscan=False`` shows whether the index *can* serve the query: on a small table
    a seq scan is cheaper, and the index cannot serve it at all if the expressions differ.
    """
    with col.db.connection() as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(col.layout.table))
    extra = {} if seqscan else {"enable_seqscan": "off"}
    return col.explain(vector=vector, settings=extra, **search).plan


def generic_plan(col: Any, statement: sql.Composable, *, seqscan: bool = True) -> str:
    """The generic plan (values unknown) of a statement with ``$n`` parameters, as a prepared
    statement gets from its 6th execution on when the planner finds it no worse."""
    with col.db.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("ANALYZE {}").format(col.layout.table))
        if not seqscan:
            conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute(sql.SQL("EXPLAIN (GENERIC_PLAN) {}").format(statement)).fetchall()
    return "\n".join(r[0] for r in rows)


def function_statement(col: Any) -> sql.Composed:
    """The two-stage statement of the collection's SQL function ``semsearch.<table>_ann``, as the function holds it
    (an unfiltered ``semsearch.search()`` runs its generic plan, migration 0015)."""
    p = [sql.SQL(f"${i}") for i in range(1, 5)]
    return statements.ann_call(col.layout, q=p[0], k=p[1], candidates=p[2], spec=p[3])
