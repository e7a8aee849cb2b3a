"""The SQL that creates, changes and drops collections, as statements to run anywhere.

The same statements serve :class:`~semsearch.Database`, alembic operations in a
user's migrations and Django migrations: they are composed with
``psycopg.sql`` (identifiers quoted, values as literals) and need no round trip
to be built, so any connection can execute them. A new collection's settings are checked
first, by :mod:`semsearch.collection_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from psycopg import sql

from semsearch import bm25, catalog, distributed, generated, plan_choice
from semsearch.collection_info import CollectionInfo
from semsearch.collection_settings import make_info
from semsearch.errors import CollectionExistsError, ConfigurationError
from semsearch.layout import BUILD_SETTINGS, check_free, check_name, settings_sql
from semsearch.plans import Plan


def create_statements(info: CollectionInfo) -> list[sql.Composed]:
    """Table, storage, indexes and catalog row of a new collection (run in one transaction).

    A distributed one (:attr:`Layout.distributed`) is sharded before its functions are made,
    and has no BM25 statistics (see :mod:`semsearch.distributed`).
    """
    layout = info.layout
    stmts: list[sql.Composed] = [*distributed.prefix(info), layout.create_table_sql()]
    storage = layout.storage_sql()
    if storage is not None:
        stmts.append(storage)
    stmts += layout.secondary_indexes_sql()
    stmts.append(layout.stale_trigger_sql())
    if layout.statement_triggers:
        # on Citus they would run on the workers, where no catalog says which collection a shard is
        # and no watcher listens: a watcher of a distributed collection polls
        stmts += layout.pending_trigger_sql()
    if info.tenant_required:
        # every writer, raw SQL included
        stmts.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (tenant IS NOT NULL)").format(
                layout.table, sql.Identifier(layout.table_name + "_tenant_required")
            )
        )
    stmts.append(layout.hnsw_index_sql(m=info.hnsw_m, ef_construction=info.hnsw_ef_construction))
    if layout.statement_triggers:
        # BM25 statistics, kept exact by triggers from the first row on
        stmts += bm25.create_statements(layout.table_name)
    else:
        stmts.append(distributed.distribute_statement(info))
    stmts += generated.functions(info)
    stmts.append(catalog.insert_statement(info))
    return stmts


#: the text search configuration (the one parameter) exists; raises UndefinedObject if not
TEXT_CONFIG_CHECK = sql.SQL("SELECT %s::regconfig")


def exists_error(name: str) -> CollectionExistsError:
    return CollectionExistsError(f"expected a new collection name, got existing {name!r}")


#: every collection's name and table: what :func:`check_new` compares a new collection with
TABLES = sql.SQL("SELECT name, table_name FROM semsearch.collections")


def check_new(info: CollectionInfo, existing: list[tuple[str, str]]) -> None:
    """Refuse a new collection whose name, or a table or index of which, another collection has (before any DDL).

    ``existing`` are :data:`TABLES`' rows; see :func:`semsearch.layout.check_free`.
    """
    if any(name == info.name for name, _ in existing):
        raise exists_error(info.name)
    check_free(info.name, info.table_name, existing)


def unknown_text_config(text_config: str) -> ConfigurationError:
    return ConfigurationError(f"expected a text search configuration, got {text_config!r}")


def drop_statements(name: str) -> list[sql.Composed]:
    """Drop a collection's table and catalog row (``semsearch.drop_collection`` finds the table)."""
    return [sql.SQL("SELECT semsearch.drop_collection({})").format(sql.Literal(check_name(name)))]


def replan(
    info: CollectionInfo,
    *,
    compression: str | None = None,
    hnsw_m: int | None = None,
    hnsw_ef_construction: int | None = None,
    oversample: float | None = None,
    rows: int | None = None,
) -> CollectionInfo:
    """The collection's settings after a change of plan or HNSW parameters (checked).

    ``compression="auto"`` puts the collection in automatic mode with the plan
    :func:`~semsearch.plan_choice.choose_plan` gives for its ``rows``; any other plan pins it.
    """
    mode, reason = info.plan_mode, info.plan_reason
    if compression == plan_choice.AUTO:
        if rows is None:
            raise ConfigurationError(
                f"expected the row count of {info.name!r} to choose its plan, got none: "
                "alter_collection(name, compression='auto') counts them"
            )
        choice = plan_choice.choose_plan(rows, info.dims, info.storage, current=info.compression)
        compression, mode, reason = choice.plan, plan_choice.AUTO, plan_choice.stamped(choice.reason)
    elif compression is not None:
        mode, reason = plan_choice.PINNED, None  # said once the plan is parsed
    new_compression = compression if compression is not None else info.compression
    plan_changed = new_compression != info.compression
    before = Plan.parse(info.compression, dims=info.dims, storage=info.storage).middle
    after = Plan.parse(new_compression, dims=info.dims, storage=info.storage).middle
    if before != after:
        raise ConfigurationError(
            f"expected the same funnel stages ({before or 'none'}), got {after or 'none'}: they are stored columns "
            "and changing them rewrites the table; build a new collection with migrate-model instead"
        )
    new = make_info(
        info.name,
        dims=info.dims,
        model=info.model,
        compression=new_compression,
        storage=info.storage,
        hnsw_m=hnsw_m if hnsw_m is not None else info.hnsw_m,
        hnsw_ef_construction=hnsw_ef_construction if hnsw_ef_construction is not None else info.hnsw_ef_construction,
        # a tuned factor belongs to the old plan; a new plan starts from its default
        oversample=oversample if oversample is not None else (None if plan_changed else info.oversample),
        text_config=info.text_config,
        table_name=info.table_name,
        autotune=info.autotune,
        tenant_required=info.tenant_required,
        bm25_k1=info.bm25_k1,
        bm25_b=info.bm25_b,
    )
    if reason is None:
        reason = plan_choice.stamped(f"{new.compression}: pinned by alter_collection(compression=)")
    return replace(new, distributed_by=info.distributed_by, passages=info.passages, plan_mode=mode, plan_reason=reason)


@dataclass(frozen=True)
class IndexBuild:
    """Replacing a collection's HNSW index: the statements, in the order every frontend runs them.

    ``Database.replace_index``, alembic's and Django's operations all execute this:
    ``prepare``, then ``build``, then ``restore`` (always, even when the build fails),
    then ``swap`` in one short transaction. ``concurrently`` (``CREATE INDEX
    CONCURRENTLY``: writes and searches go on) runs ``prepare`` and ``build`` outside
    any transaction with session settings that ``restore`` puts back as they were; else
    all of it runs in one transaction with settings local to it (``restore`` is empty).

    >>> steps = index_build(make_info("docs", model="local", compression="halfvec"), concurrently=True)
    >>> len(steps.prepare), len(steps.build), len(steps.restore), steps.concurrently
    (5, 1, 2, True)
    """

    concurrently: bool
    #: drop a ``_hnsw_next`` left by a failed build (a rerun starts clean); the build's settings
    prepare: list[sql.Composed]
    #: build the index as ``<table>_hnsw_next``
    build: list[sql.Composed]
    #: the session's settings as they were before ``prepare``
    restore: list[sql.Composed]
    #: swap ``_hnsw_next`` in (and, on a new plan, the catalog row and SQL functions)
    swap: list[sql.Composed]


def index_build(info: CollectionInfo, *, concurrently: bool, replan: bool = False) -> IndexBuild:
    """The steps that build ``info``'s HNSW index next to the live one and swap it in (see :class:`IndexBuild`)."""
    drop_next = sql.SQL("DROP INDEX {}IF EXISTS {}").format(
        sql.SQL("CONCURRENTLY " if concurrently else ""), info.layout.index_name("hnsw_next", schema=True)
    )
    build = info.layout.hnsw_index_sql(
        m=info.hnsw_m, ef_construction=info.hnsw_ef_construction, concurrently=concurrently, suffix="hnsw_next"
    )
    swap = swap_index_statements(info, replan=replan)
    # a distributed collection's transaction changes shards, then re-creates functions, which Citus
    # propagates to the workers: it must use one connection per node from its start
    sequential = [distributed.SEQUENTIAL] if info.layout.distributed else []
    if not concurrently:
        return IndexBuild(False, [*sequential, drop_next, *settings_sql(BUILD_SETTINGS, local=True)], [build], [], swap)
    swap = [*sequential, *swap]
    # a session setting outlives the build: remember each in a placeholder setting, put it back after
    save, restore = [], []
    for name in BUILD_SETTINGS:
        saved = sql.Literal(f"semsearch.saved_{name}")
        save.append(sql.SQL("SELECT set_config({}, current_setting({}), false)").format(saved, sql.Literal(name)))
        # missing (prepare failed before saving): NULL resets the setting to the session's default
        restore.append(
            sql.SQL("SELECT set_config({}, current_setting({}, true), false)").format(sql.Literal(name), saved)
        )
    return IndexBuild(True, [drop_next, *save, *settings_sql(BUILD_SETTINGS, local=False)], [build], restore, swap)


@dataclass(frozen=True)
class Alter:
    """A change of a collection's settings, as every frontend runs it.

    ``catalog`` (one transaction) when the index stays, else ``index``
    (:class:`IndexBuild`, which swaps the catalog row with the index).
    """

    new: CollectionInfo
    catalog: list[sql.Composed]
    index: IndexBuild | None


def alter(old: CollectionInfo, *, concurrently: bool, autotune: bool | None = None, **changes: Any) -> Alter:
    """Plan a change of plan, HNSW parameters, oversampling or automatic tuning (checked, nothing run).

    >>> change = alter(make_info("docs", model="local", compression="halfvec"), concurrently=True, oversample=3)
    >>> change.index is None, change.new.oversample
    (True, 3.0)
    """
    new = replan(old, **changes)
    steps = [] if autotune is None else [catalog.update_statement(old.name, autotune=bool(autotune))]
    if unchanged(old, new):  # the same index: only the catalog changes
        update = catalog.update_statement(
            new.name, oversample=new.oversample, plan_mode=new.plan_mode, plan_reason=new.plan_reason
        )
        return Alter(new, [*steps, update], None)
    return Alter(new, steps, index_build(new, concurrently=concurrently, replan=True))


def swap_index_statements(info: CollectionInfo, *, replan: bool = True) -> list[sql.Composed]:
    """Replace the live index with ``_hnsw_next`` (run in one short transaction).

    ``replan``: a new plan or HNSW parameters, so the catalog row and the collection's SQL
    functions change with it; a rebuild of the same index leaves both (and the tuned
    settings) alone.
    """
    layout = info.layout
    swap = [
        sql.SQL("DROP INDEX IF EXISTS {}").format(layout.index_name("hnsw", schema=True)),
        sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            layout.index_name("hnsw_next", schema=True), layout.index_name("hnsw")
        ),
    ]
    return [*swap, *plan_statements(info)] if replan else swap


def plan_statements(info: CollectionInfo, *, alone: bool = False) -> list[sql.Composed]:
    """``info``'s plan in the catalog row and the collection's SQL functions (tuned values reset).

    :func:`swap_index_statements` runs them with the swap; ``alone`` (one transaction of their
    own, while the collection has no index: a bulk load's, built afterwards) adds what a
    distributed collection's transaction needs first.
    """
    sequential = [distributed.SEQUENTIAL] if alone and info.layout.distributed else []
    names = ("compression", "hnsw_m", "hnsw_ef_construction", "oversample", "ef_search", "plan_mode", "plan_reason")
    row = catalog.update_statement(info.name, **{n: getattr(info, n) for n in names}, tuned_rows=None)
    return [*sequential, row, *generated.functions(info)]


def unchanged(info: CollectionInfo, other: CollectionInfo) -> bool:
    """Whether two settings need the same index (so a change would rebuild nothing)."""

    def index_part(i: CollectionInfo) -> CollectionInfo:
        return replace(
            i, oversample=0, ef_search=None, autotune=True, tuned_rows=None, tenant_required=False, hybrid=None,
            plan_mode="", plan_reason=None,
        )  # fmt: skip

    return index_part(info) == index_part(other)


#: what tune() writes: a writer may change these columns of the catalog, and no other
TUNING_COLUMNS = ("oversample", "ef_search", "tuning", "tuned_rows", "hybrid")


def grant_statements(info: CollectionInfo, role: str, *, write: bool = False) -> list[sql.Composed]:
    """Exactly what searching ``info``'s collection (or also writing it, with ``write``) needs.

    A reader can search this collection and no other one; a writer can also add, delete,
    backfill and tune it, and change the tuned columns of the catalog, never what a search
    executes (see README, "Roles and privileges").
    """
    who = sql.Identifier(role)
    table = info.layout.table
    names = bm25.Names(info.layout.table_name)
    stats = sql.SQL(", ").join(names.ident(t) for t in (names.postings, names.df, names.stats))
    stmts = [
        sql.SQL("GRANT USAGE ON SCHEMA semsearch TO {}").format(who),
        sql.SQL("GRANT SELECT ON semsearch.alembic_version, semsearch.collections, {} TO {}").format(table, who),
    ]
    if info.layout.statement_triggers:
        # text search reads the BM25 statistics; the triggers that write them run as their owner
        # (a distributed collection has none: it ranks by ts_rank)
        stmts.append(sql.SQL("GRANT SELECT ON {} TO {}").format(stats, who))
    if write:
        stmts += [
            sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(table, who),
            sql.SQL("GRANT UPDATE ({}) ON semsearch.collections TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, TUNING_COLUMNS)), who
            ),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON semsearch.quarantine TO {}").format(who),
            # backfill drains a synced table's queued documents (only the sync triggers add entries)
            sql.SQL("GRANT SELECT, UPDATE, DELETE ON semsearch.pending_documents TO {}").format(who),
        ]
    return stmts
