"""The physical shape of one collection (:class:`Layout`): its table, indexes and expressions.

Everything that names a column expression goes through ``Plan.expression`` so the
HNSW index here and the coarse ``ORDER BY`` of :mod:`semsearch.statements` are the
same text, and the planner uses the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from semsearch import bm25
from semsearch.errors import ConfigurationError, InvalidNameError
from semsearch.plans import MAX_STORED_DIMS, Plan

SCHEMA = "semsearch"
#: session settings for HNSW builds: the graph of 1M bit(1536) rows needs ~600 MB, and
#: Postgres gives small tables no parallel build workers (4.5k rows: 1.11 s serial, 0.68 s with 2)
BUILD_SETTINGS = {"maintenance_work_mem": "512MB", "min_parallel_table_scan_size": "0"}


def settings_sql(settings: dict[str, Any], *, local: bool) -> list[sql.Composed]:
    """``set_config`` statements; ``local`` ones end with the transaction.

    Example::

        settings_sql(BUILD_SETTINGS, local=True)
    """
    return [
        sql.SQL("SELECT set_config({}, {}, {})").format(sql.Literal(k), sql.Literal(str(v)), sql.Literal(local))
        for k, v in settings.items()
    ]


#: the statement triggers that wake ``backfill --watch`` (see :meth:`Layout.pending_trigger_sql`)
PENDING_TRIGGERS = (("semsearch_pending_ins", "INSERT"), ("semsearch_pending_upd", "UPDATE"))

# 48 leaves room in Postgres' 63-byte identifiers for "col_" and index suffixes; users get 40
# (MAX_USER_NAME) so that internal names like "<name>__next" fit too
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
MAX_USER_NAME = 40
STORAGES = ("vector", "halfvec")


def check_name(name: object) -> str:
    """Return ``name`` if it is a plain lowercase identifier, else raise.

    >>> check_name("movies")
    'movies'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError(
            f"expected a collection name of lowercase letters, digits and _ (max 48, not starting "
            f"with a digit), got {name!r}"
        )
    return name


def check_free(name: str, table_name: str, existing: list[tuple[str, str]]) -> None:
    """Raise unless a new collection's tables and indexes are free beside ``existing`` ``(name, table)`` ones.

    Relation names are ``<table>_<suffix>`` in one schema, so ``fz_hnsw``'s table would be
    ``fz``'s HNSW index, and ``fz``'s index ``fz_hnsw``'s table (see :meth:`Layout.relation_names`).
    """
    mine = dict(Layout.relation_names(table_name))
    for other, table in existing:
        for relation, what in Layout.relation_names(table):
            if relation in mine:
                raise InvalidNameError(
                    f"expected a collection name whose tables and indexes are free, got {name!r}: its "
                    f"{mine[relation]} semsearch.{relation} is the {what} of collection {other!r}"
                )


@dataclass(frozen=True)
class Layout:
    """The physical shape of a collection: its table, vector type and plan.

    Example::

        layout = Layout("movies", dims=1536, storage="vector", plan=Plan.parse("bit", dims=1536))
        layout.create_table_sql()
    """

    name: str
    dims: int
    storage: str
    plan: Plan
    text_config: str = "english"
    #: the collection's table in schema semsearch; "col_<name>" unless a model migration made a new one
    table_name: str = ""
    #: the Citus distribution column ("key" or "tenant"), None for a plain table (see semsearch.distributed)
    distributed_by: str | None = None
    #: the setting naming a session's tenant when the collection's tenants are isolated (row-level
    #: security on the table and its BM25 statistics, kept per tenant); None: not isolated
    tenant_setting: str | None = None

    def __post_init__(self) -> None:
        if not self.table_name:
            object.__setattr__(self, "table_name", "col_" + check_name(self.name))
        elif not re.match(r"^col_[a-z0-9_]{1,48}$", self.table_name):
            raise InvalidNameError(f"expected a table name col_<name>, got {self.table_name!r}")
        if self.distributed_by not in (None, "key", "tenant"):
            raise ConfigurationError(f"expected distributed_by 'key', 'tenant' or none, got {self.distributed_by!r}")
        if self.storage not in STORAGES:
            raise ConfigurationError(f"expected storage in {STORAGES}, got {self.storage!r}")
        if not isinstance(self.dims, int) or not 1 <= self.dims <= MAX_STORED_DIMS:
            raise ConfigurationError(f"expected dims between 1 and {MAX_STORED_DIMS}, got {self.dims!r}")

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.table_name)

    @property
    def vector_type(self) -> sql.Composable:
        return sql.SQL("{}({})").format(sql.SQL(self.storage), sql.Literal(self.dims))

    def coarse_expression(self, source: sql.Composable) -> sql.Composable:
        return self.plan.expression(source, dims=self.dims, storage=self.storage)

    def index_name(self, suffix: str, *, schema: bool = False) -> sql.Identifier:
        name = f"{self.table_name}_{suffix}"
        return sql.Identifier(SCHEMA, name) if schema else sql.Identifier(name)

    @staticmethod
    def relation_names(table_name: str) -> list[tuple[str, str]]:
        """Every table, index and sequence a collection whose table is ``table_name`` makes or may make.

        They share one namespace (schema semsearch) with every other collection's, so
        ``fz_hnsw``'s table would be ``fz``'s HNSW index: see :func:`semsearch.ddl.check_new`.

        >>> Layout.relation_names("col_fz")[:2]
        [('col_fz', 'table'), ('col_fz_pkey', 'pkey index')]
        """
        indexes = ("pkey", "key_key", "hash", "tsv", "meta", "tenant", "hnsw", "hnsw_next")
        bm25_tables = ("bm25p", "bm25d", "bm25s")
        return [
            (table_name, "table"),
            *((f"{table_name}_{s}", f"{s} index") for s in indexes),
            (f"{table_name}_id_seq", "id_seq sequence"),
            *((f"{table_name}_{s}", f"{s} table") for s in bm25_tables),
            *((f"{table_name}_{s}_pkey", f"{s}_pkey index") for s in bm25_tables),
        ]

    # -- distribution (Citus): every decision that depends on it is asked here, never branched on elsewhere --

    @property
    def distributed(self) -> bool:
        """Whether the table is a Citus distributed table: one table per shard on the workers."""
        return self.distributed_by is not None

    @property
    def rows_per_k(self) -> int | None:
        """Coarse rows per wanted row an unfiltered search needs (its plan ranks as the full vectors do), or None.

        See :func:`semsearch.planner.coarse_rows`. Distributed, the shards' candidates keep the
        two-stage shape (the coordinator merges them).
        """
        return None if self.distributed else self.plan.rows_per_k

    @property
    def tenant_in_key(self) -> bool:
        """Whether a row is identified by ``(tenant, key)``: distributed by tenant.

        Every row then needs a tenant, and an upsert never changes a row's tenant (Citus
        refuses to update a distribution column; a key is stored once per tenant).
        """
        return self.distributed_by == "tenant"

    @property
    def routes_by_tenant(self) -> bool:
        """Whether a statement restricted to one tenant runs on that tenant's shard only (distributed by tenant)."""
        return self.distributed_by == "tenant"

    @property
    def statement_triggers(self) -> bool:
        """Whether the table has statement triggers: BM25's statistics and the pending rows' notification.

        With them, text search ranks by BM25 and ``backfill --watch`` is woken by a notification.
        A distributed table has none: they would run on each worker, where no catalog says which
        collection a shard is, and write across nodes. Its text search ranks by ``ts_rank`` and a
        watcher polls.
        """
        return not self.distributed

    @property
    def locks_rows_first(self) -> bool:
        """Whether writers lock rows in key order (``FOR UPDATE``) before changing them, so they wait, not deadlock.

        Not distributed: Citus takes such locks on one shard only; each shard changes its own
        rows and Citus detects distributed deadlocks itself.
        """
        return not self.distributed

    @property
    def correlates_local_tables(self) -> bool:
        """Whether a statement may join the table with a local one (the quarantine) by a correlated subquery.

        Citus joins a distributed table with a local one only through an uncorrelated subquery.
        """
        return not self.distributed

    def set_local_sql(self, settings: dict[str, str]) -> list[sql.Composed]:
        """Settings for the rest of the transaction, seen by the table's row triggers too.

        Distributed, those triggers run on the workers: the settings are ``SET LOCAL``, which
        Citus propagates there with ``citus.propagate_set_commands = 'local'`` (``set_config`` it does not).

        >>> [s.as_string(None) for s in Layout("t", 3, "vector", Plan("halfvec", 3)).set_local_sql({"a.b": "on"})]
        ["SELECT set_config('a.b', 'on', true)"]
        """
        if not self.distributed:
            return settings_sql(settings, local=True)
        return [
            sql.SQL("SET LOCAL citus.propagate_set_commands = 'local'").format(),
            *(
                sql.SQL("SET LOCAL {} = {}").format(
                    sql.SQL(".").join(sql.Identifier(part) for part in name.split(".")), sql.Literal(str(value))
                )
                for name, value in settings.items()
            ),
        ]

    def check_one_server(self, purpose: str = "", hint: str = "") -> None:
        """Refuse what a distributed collection cannot do (the message: ``purpose`` and ``hint`` in their places).

        ``expected a collection on one server{purpose}, got 'name' distributed by key{hint}``
        """
        if self.distributed:
            raise ConfigurationError(
                f"expected a collection on one server{purpose}, got {self.name!r} distributed by {self.distributed_by}"
                f"{hint}"
            )

    @property
    def unique_key(self) -> sql.Composable:
        """What identifies a row: ``key``, or ``tenant, key`` on a table distributed by tenant.

        Citus needs the distribution column in every unique constraint, so a collection
        distributed by tenant holds each key once per tenant.
        """
        return sql.SQL("tenant, key" if self.tenant_in_key else "key")

    def create_table_sql(self) -> sql.Composed:
        # the content hash is derived by the database, so re-embedding checks cannot drift.
        # Distributed (Citus), the unique constraints must hold the distribution column: id is
        # then a plain identity column and the primary key is the row's key (per tenant)
        if not self.distributed:
            ids = sql.SQL("id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    key text NOT NULL UNIQUE,")
        else:
            ids = sql.SQL("id bigint GENERATED ALWAYS AS IDENTITY,\n    key text NOT NULL,")
        return sql.SQL(
            """CREATE TABLE {table} (
    {ids}
    content text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    content_hash bytea GENERATED ALWAYS AS (semsearch.content_hash(content)) STORED,
    embedding {vtype},  -- NULL while the row waits for the embedder (add(defer=True), backfill)
    tenant text,
    tsv tsvector GENERATED ALWAYS AS ({tsv}) STORED,{middle}
    updated_at timestamptz NOT NULL DEFAULT now(){pk}
)"""
        ).format(
            table=self.table,
            ids=ids,
            pk=sql.SQL("") if not self.distributed else sql.SQL(",\n    PRIMARY KEY ({})").format(self.unique_key),
            vtype=self.vector_type,
            tsv=bm25.tsv_expression(self.text_config),
            middle=sql.SQL("").join(
                sql.SQL("\n    {} halfvec({}) GENERATED ALWAYS AS ({}) STORED,").format(
                    self.middle_column(d), sql.Literal(d), self.middle_expression(d, sql.Identifier("embedding"))
                )
                for d in self.plan.middle
            ),
        )

    @staticmethod
    def middle_column(d: int) -> sql.Identifier:
        return sql.Identifier(f"mrl_{d}")

    def middle_expression(self, d: int, source: sql.Composable) -> sql.Composable:
        """A funnel stage's copy: the stored column and the query side come from the same helper."""
        return Plan("mrl", d).expression(source, dims=self.dims, storage=self.storage)

    @property
    def vector_bytes(self) -> int:
        return (4 if self.storage == "vector" else 2) * self.dims + 8

    def storage_sql(self) -> sql.Composed | None:
        """Keep the full vector inside the heap row when it fits in a page.

        pgvector stores vectors EXTERNAL, so a 1536-dim vector (6 KB) goes to TOAST
        and every rescored candidate costs a TOAST index probe and chunk reads.
        Inline (STORAGE MAIN, toast_tuple_target at its maximum), rescoring reads
        one heap page per candidate: measured 1.7x faster for 200 candidates.
        """
        if self.vector_bytes > 7000:
            return None
        return sql.SQL(
            "ALTER TABLE {} ALTER COLUMN embedding SET STORAGE MAIN, SET (toast_tuple_target = 8160)"
        ).format(self.table)

    def stale_trigger_sql(self) -> sql.Composed:
        """A text changed by any writer (raw SQL included) loses its now-stale vector.

        The WHEN clause compares texts only: one comparing vectors needs pgvector's ``=``,
        which a restore of ``pg_dump``'s output (empty search_path) cannot resolve. The
        function (``semsearch.reset_stale_embedding``) keeps a vector the same statement
        set, and leaves semsearch's own upserts alone: they set each row's vector themselves.
        """
        return sql.SQL(
            "CREATE TRIGGER {name} BEFORE UPDATE OF content ON {table} FOR EACH ROW "
            "WHEN (OLD.content IS DISTINCT FROM NEW.content) "
            "EXECUTE FUNCTION semsearch.reset_stale_embedding()"
        ).format(name=self.stale_trigger_name, table=self.table)

    @property
    def stale_trigger_name(self) -> sql.Identifier:
        return sql.Identifier(self.table_name + "_stale")

    def pending_trigger_sql(self) -> list[sql.Composed]:
        """Wake ``backfill --watch``: a statement leaving rows pending sends one ``pg_notify``.

        The channel is ``semsearch_pending``, the payload the collection's name
        (``semsearch.notify_pending``, migration 0004); any writer, raw SQL and synced tables included.
        """
        return [
            sql.SQL(
                "CREATE TRIGGER {} AFTER {} ON {} REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION semsearch.notify_pending()"
            ).format(sql.Identifier(name), sql.SQL(event), self.table)
            for name, event in PENDING_TRIGGERS
        ]

    def drop_pending_trigger_sql(self) -> list[sql.Composed]:
        """Remove :meth:`pending_trigger_sql`'s triggers (a distributed table's would run on the workers)."""
        return [
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(name), self.table)
            for name, _ in PENDING_TRIGGERS
        ]

    def secondary_indexes_sql(self) -> list[sql.Composed]:
        return [
            sql.SQL("CREATE INDEX {} ON {} (content_hash)").format(self.index_name("hash"), self.table),
            sql.SQL("CREATE INDEX {} ON {} USING gin (tsv)").format(self.index_name("tsv"), self.table),
            sql.SQL("CREATE INDEX {} ON {} USING gin (metadata jsonb_path_ops)").format(
                self.index_name("meta"), self.table
            ),
            sql.SQL("CREATE INDEX {} ON {} (tenant) WHERE tenant IS NOT NULL").format(
                self.index_name("tenant"), self.table
            ),
        ]

    def hnsw_index_sql(
        self, *, m: int, ef_construction: int, concurrently: bool = False, suffix: str = "hnsw"
    ) -> sql.Composed:
        """The HNSW index on the plan's compressed expression (``suffix="hnsw_next"`` for a swap)."""
        return sql.SQL(
            "CREATE INDEX {conc}{name} ON {table} USING hnsw (({expr}) {ops}) WITH (m = {m}, ef_construction = {efc})"
        ).format(
            conc=sql.SQL("CONCURRENTLY " if concurrently else ""),
            name=self.index_name(suffix),
            table=self.table,
            expr=self.coarse_expression(sql.Identifier("embedding")),
            ops=self.plan.opclass(self.storage),
            m=sql.Literal(int(m)),
            efc=sql.Literal(int(ef_construction)),
        )
