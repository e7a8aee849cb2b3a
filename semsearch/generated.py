"""A collection's generated objects: what semsearch makes from code for each collection, in one place.

Migrations change semsearch's shared schema (catalog, SQL API) and stay frozen. Everything
semsearch generates per collection from the current code lives here and is made by one
function whoever asks: :func:`functions` (its SQL functions) for create, alter, distribute
and tenant isolation, and :func:`regenerate_statements` (functions, triggers, the BM25
statistics' triggers, or the statistics themselves when missing) for ``semsearch db upgrade``,
which :func:`semsearch.migrate.regenerate` runs after the migrations, for each collection whose
``statements_version`` is not :data:`~semsearch.statements.STATEMENTS_VERSION`. A release that
changes a statement bumps that number and ships no migration for it. Statements only: no I/O.
"""

from __future__ import annotations

from psycopg import sql

from semsearch import bm25, planner, statements
from semsearch.collection_info import CollectionInfo

#: the statements version the SQL functions compare a catalog row with (``collection_for_search``),
#: made from Python's one definition
VERSION_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION semsearch.statements_version() RETURNS integer LANGUAGE sql IMMUTABLE "
    "SET search_path = pg_catalog, pg_temp RETURN {}"
).format(sql.Literal(statements.STATEMENTS_VERSION))


def functions(info: CollectionInfo) -> list[sql.Composed]:
    """``info``'s SQL functions (the statements its SQL searches run), search paths pinned.

    Example::

        for stmt in functions(db.collection("docs").info):
            conn.execute(stmt)
    """
    k1, b = planner.bm25(info.bm25_k1, info.bm25_b)
    return statements.function_statements(info.layout, k1=k1, b=b)


def regenerate_statements(info: CollectionInfo, *, has_statistics: bool) -> list[sql.Composed]:
    """Every generated object of ``info``, made again from the current code (one transaction).

    Rows, indexes and tuned settings are kept. ``has_statistics``: the BM25 side tables exist
    (their counts are kept; only their triggers are made again), else they are made and filled.
    """
    layout = info.layout
    stmts: list[sql.Composed] = [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(layout.stale_trigger_name, layout.table),
        layout.stale_trigger_sql(),
    ]
    if layout.statement_triggers:
        tenants = info.tenant_setting is not None
        stmts += layout.drop_pending_trigger_sql() + layout.pending_trigger_sql()
        if has_statistics:
            names = bm25.Names(layout.table_name)
            stmts += [
                sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(names.ident(names.fn(e))) for e in bm25.EVENTS
            ]
            stmts += bm25.trigger_statements(layout.table_name, tenants=tenants)
        else:
            stmts += bm25.create_statements(layout.table_name, tenants=tenants)
            stmts += bm25.backfill_statements(layout.table_name, tenants=tenants)
    stmts += functions(info)
    stmts.append(
        sql.SQL("UPDATE semsearch.collections SET statements_version = {} WHERE name = {}").format(
            sql.Literal(statements.STATEMENTS_VERSION), sql.Literal(info.name)
        )
    )
    return stmts
