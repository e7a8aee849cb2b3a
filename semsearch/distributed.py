"""Collections on a Citus cluster: a collection's table as a distributed table, sharded over the workers.

A distributed collection keeps one table per shard on the workers, each with its own
HNSW index on the compressed copy, text and metadata indexes and stale-vector trigger
(Citus creates them on every shard). A search fans out: every shard's coarse pass
returns the keys of its nearest candidates, the coordinator keeps the best n, each shard
rescores its own by the full vectors and returns its top k, and the coordinator merges
them (:func:`semsearch.statements.ann`). Distributed by ``tenant``, a search with
``tenant=`` runs on that tenant's shard only.

What changes against one server (README, "Scaling out"):

- ``by="key"``: the primary key is ``key``. ``by="tenant"``: it is ``(tenant, key)``,
  so a key is unique per tenant (the same key under two tenants is two rows), every row
  needs a tenant (searches may still span tenants), and ``delete(keys)`` deletes the key
  in every tenant. Citus needs the distribution column in every unique constraint.
- Text search ranks by ``ts_rank`` instead of BM25: BM25's statistics are kept by
  statement triggers writing side tables, which on a distributed table would run on
  each worker and write across nodes.
- The SQL functions pass ``hnsw.ef_search`` to the workers only inside a transaction
  block (``BEGIN; SELECT ... FROM semsearch.search(...); COMMIT``): Citus propagates
  ``SET LOCAL`` there and nowhere else. Python searches always run in one.

Example::

    db.create_collection("docs", model="local", distribute_by="key")
    db.distribute_collection("tickets", by="tenant")
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
from psycopg import sql

from semsearch import bm25, catalog, generated
from semsearch.collection_info import CollectionInfo
from semsearch.errors import ConfigurationError

#: the distribution columns a collection can be distributed by
BY = ("key", "tenant")
#: a transaction that changes shards and then (re)creates functions, which Citus propagates to the
#: workers, must use one connection per node from its start
SEQUENTIAL = sql.SQL("SET LOCAL citus.multi_shard_modify_mode = 'sequential'").format()
#: every statement below runs in one transaction that starts with these
_SETTINGS = [
    # the stale-vector trigger (a row-level BEFORE trigger that only edits NEW) goes to every shard
    sql.SQL("SET LOCAL citus.enable_unsafe_triggers = on").format(),
    SEQUENTIAL,
]


def check_by(by: object) -> str:
    """``by`` if it is a distribution column semsearch supports.

    >>> check_by("tenant")
    'tenant'
    """
    if by not in BY:
        raise ConfigurationError(f"expected distribute_by 'key' or 'tenant', got {by!r}")
    return str(by)


def check_citus(conn: psycopg.Connection) -> None:
    """Refuse to distribute on a server without the Citus extension, or on a Citus worker."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()
    if row is None:
        raise ConfigurationError(
            "expected a Citus coordinator to distribute a collection, got a server without the citus extension "
            "(CREATE EXTENSION citus on every node, then add the workers)"
        )
    workers = conn.execute("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive").fetchone()
    if not workers or not workers[0]:
        raise ConfigurationError(
            "expected a Citus coordinator with workers to distribute a collection, got none added "
            "(SELECT citus_add_node(host, port) for each worker)"
        )


def check_cluster(conn: psycopg.Connection, info: CollectionInfo) -> None:
    """Before ``info``'s table is created: a distributed one needs a Citus coordinator with workers."""
    if info.layout.distributed:
        check_citus(conn)


def distributed_info(info: CollectionInfo, by: str) -> CollectionInfo:
    """``info`` distributed by ``by`` (by tenant, every row needs one; searches may still span tenants)."""
    return replace(info, distributed_by=check_by(by))


def prefix(info: CollectionInfo) -> list[sql.Composed]:
    """The settings a transaction that creates or distributes ``info``'s table starts with (none for a plain one)."""
    if not info.layout.distributed:
        return []
    return [
        # without Citus, say so in semsearch's words rather than "function create_distributed_table does not exist"
        sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN "
            "RAISE EXCEPTION 'expected a Citus coordinator to distribute a collection, got a server without the "
            "citus extension' USING ERRCODE = '0A000'; END IF; END $$"
        ).format(),
        *_SETTINGS,
    ]


def distribute(conn: psycopg.Connection, old: CollectionInfo, by: str) -> None:
    """Distribute ``old``'s table by ``by`` in the caller's transaction, after checking it can be."""
    new = distributed_info(old, by)
    old.layout.check_one_server()
    check_citus(conn)
    if new.layout.tenant_in_key:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE tenant IS NULL").format(old.layout.table)).fetchone()
        if row and row[0]:
            raise ConfigurationError(
                f"expected a tenant on every row of {old.name!r} to distribute by tenant, got {row[0]} without"
            )
    for stmt in distribute_statements(old, new):
        conn.execute(stmt)


def distribute_statements(old: CollectionInfo, new: CollectionInfo) -> list[sql.Composed]:
    """Turn ``old``'s plain table into ``new``'s distributed one, rows included (one transaction).

    The BM25 side tables and triggers go (text search ranks by ``ts_rank``), the
    primary key moves from ``id`` to the key (per tenant), the rows are copied to the
    shards and removed from the coordinator's table.
    """
    layout = new.layout
    table = layout.table
    names = layout.table_name
    stmts: list[sql.Composed] = [*prefix(new), *bm25.drop_statements(names), *layout.drop_pending_trigger_sql()]
    if layout.tenant_in_key:
        stmts.append(sql.SQL("ALTER TABLE {} ALTER COLUMN tenant SET NOT NULL").format(table))
    stmts += [
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(names + "_pkey")),
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(names + "_key_key")),
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(table, layout.unique_key),
        distribute_statement(new),
        sql.SQL("SELECT truncate_local_data_after_distributing_table({})").format(sql.Literal(f"semsearch.{names}")),
        *generated.functions(new),
        catalog.update_statement(new.name, distributed_by=new.distributed_by),
    ]
    return stmts


def distribute_statement(info: CollectionInfo) -> sql.Composed:
    """``create_distributed_table`` for ``info``'s table by its ``distributed_by`` column."""
    return sql.SQL("SELECT create_distributed_table({}, {})").format(
        sql.Literal(f"semsearch.{info.layout.table_name}"), sql.Literal(info.distributed_by)
    )
