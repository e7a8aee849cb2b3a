"""Change a collection's embedding model or dimensions without downtime.

1. a shadow collection ``<name>__next`` (its own table) gets every row's text,
   metadata and tenant, copied inside Postgres, and the new model embeds them
   with the resumable :mod:`semsearch.backfill` while searches keep using the
   old collection;
2. a comparison on sampled stored texts: overlap@k and the shift of the top score;
3. the switch: one transaction, holding off writers to the old table only while
   it copies and embeds the rows changed since step 1, then swaps the catalog
   names (``<name>`` becomes the new table, ``<name>__prev`` the old one);
4. :func:`rollback` swaps them back; ``drop_collection("<name>__prev")`` ends it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from semsearch import ddl, table_sync
from semsearch.embeddings import Embedder, embedder_for
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError, EmbeddingError

if TYPE_CHECKING:
    from semsearch.collection import Collection
    from semsearch.db import Database

NEXT, PREV = "__next", "__prev"


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate_model` built and measured.

    Example::

        MigrationReport(name="docs", old_model="wordllama-l2-supercat", old_dims=64, new_model=..., new_dims=256,
                        rows=4520, overlap_at_k=0.62, mean_top_score_shift=0.08, k=10, queries=50, switched=True)
    """

    name: str
    old_model: str
    old_dims: int
    new_model: str
    new_dims: int
    rows: int
    overlap_at_k: float
    mean_top_score_shift: float
    k: int
    queries: int
    switched: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        state = "switched" if self.switched else "built, not switched (run again with switch)"
        return (
            f"{self.name}: {self.old_model}/{self.old_dims} -> {self.new_model}/{self.new_dims}, {self.rows:,} rows; "
            f"overlap@{self.k} {self.overlap_at_k:.2f}, top score shift {self.mean_top_score_shift:+.3f} "
            f"on {self.queries} sampled texts; {state}"
        )


def _copy_changed(conn: Any, old: Collection, new: Collection) -> int:
    """Bring the shadow's texts in line with the old table; changed rows go pending."""
    o, n = old.layout.table, new.layout.table
    conn.execute(sql.SQL("DELETE FROM {n} x WHERE NOT EXISTS (SELECT FROM {o} y WHERE y.key = x.key)").format(o=o, n=n))
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO {n} AS x (key, content, metadata, tenant) "
            "SELECT y.key, y.content, y.metadata, y.tenant FROM {o} y LEFT JOIN {n} z ON z.key = y.key "
            "WHERE z.key IS NULL "
            "OR (z.content, z.metadata, z.tenant) IS DISTINCT FROM (y.content, y.metadata, y.tenant) "
            "ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata, "
            "tenant = EXCLUDED.tenant, updated_at = now()"
        ).format(o=o, n=n)
    )
    return cur.rowcount


def _compare(old: Collection, new: Collection, *, sample: int, k: int) -> tuple[float, float, int]:
    with old.db.connection() as conn:
        texts = [
            r[0]
            for r in conn.execute(
                sql.SQL("SELECT content FROM {} ORDER BY md5(key) LIMIT %s").format(old.layout.table), [sample]
            )
        ]
    overlaps, shifts = [], []
    for text in texts:
        a, b = old.search(text, k=k), new.search(text, k=k)
        if len(a) and len(b):
            overlaps.append(len(set(a.keys) & set(b.keys)) / min(k, len(a)))
            shifts.append(b[0].score - a[0].score)
    return float(np.mean(overlaps)) if overlaps else 0.0, float(np.mean(shifts)) if shifts else 0.0, len(texts)


def migrate_model(
    db: Database,
    name: str,
    *,
    model: str | None = None,
    dims: int | None = None,
    embedder: Embedder | None = None,
    compression: str | None = None,
    sample: int = 50,
    k: int = 10,
    switch: bool = True,
    progress: bool = False,
    batch_size: int = 256,
) -> MigrationReport:
    """Build ``name`` again with another model or dims, compare, and switch atomically.

    Safe to interrupt and run again: an existing ``<name>__next`` with the same
    model and dims is resumed (its finished embeddings are kept).

    Example::

        report = migrate_model(db, "docs", model="local", dims=256, progress=True)
        print(report)          # overlap@10 and score shift, then switched
    """
    old = db.collection(name)
    with db.connection() as conn:
        synced = table_sync.find(conn, collection=name)
    if synced is not None:
        # its triggers write to the table the switch would retire
        raise ConfigurationError(
            f"expected a collection no table is synced to, got {name!r} synced from {synced.table}: "
            "unsync_table, migrate, then sync_table again (it reuses the new collection)"
        )
    if old.info.distributed_by is not None:
        # its shadow would be a plain table on the coordinator, and the switch renames tables in ways
        # Citus does not propagate to the shards' functions and triggers
        raise ConfigurationError(
            f"expected a collection on one server for migrate-model, got {name!r} distributed by "
            f"{old.info.distributed_by}: create a new distributed collection and add the rows to it"
        )
    if switch:
        # refuse before paying for embeddings that could not be switched in
        _require_absent(db, name + PREV)
    if embedder is None:
        embedder = embedder_for(model or old.info.model, dims)
    shadow = name + NEXT
    try:
        new = db.collection(shadow)
        if (new.info.model, new.info.dims) != (embedder.model, embedder.dims):
            raise ConfigurationError(
                f"expected {shadow!r} to be a migration to {embedder.model}/{embedder.dims}, "
                f"got {new.info.model}/{new.info.dims}: drop it first"
            )
        new = db.collection(shadow, embedder=embedder)
        with db.connection() as conn:
            _accept_writes(conn, new)  # a rollback switched it out; resumed, it is written again
    except CollectionNotFoundError:
        info = ddl.make_info(
            shadow,
            embedder=embedder,
            compression=compression,
            storage=old.info.storage,
            hnsw_m=old.info.hnsw_m,
            hnsw_ef_construction=old.info.hnsw_ef_construction,
            text_config=old.info.text_config,
            # a fresh table name, so the two tables never collide, whatever they are called later
            table_name=f"col_{name}_{secrets.token_hex(3)}",
        )
        with db.connection() as conn, conn.transaction():
            for stmt in ddl.create_statements(info):
                conn.execute(stmt)
        new = db.collection(shadow, embedder=embedder)
    with db.connection() as conn, conn.transaction():
        _copy_changed(conn, old, new)
    new.backfill(batch_size=batch_size, progress=progress)
    overlap, shift, queries = _compare(old, new, sample=sample, k=k)
    if switch:
        held = new.quarantined()
        if held:
            # switching would leave these rows without a vector, invisible to vector search
            keys = ", ".join(repr(key) for key, _ in held[:5]) + (", ..." if len(held) > 5 else "")
            raise EmbeddingError(
                f"expected {embedder.model} to embed every row before switching {name!r}, got {len(held)} "
                f"refused ({keys}; see {shadow!r}.quarantined()): change or delete them, then run again"
            )
        _switch(db, old, new)
    return MigrationReport(
        name=name,
        old_model=old.info.model,
        old_dims=old.info.dims,
        new_model=new.info.model,
        new_dims=new.info.dims,
        rows=new.count(),
        overlap_at_k=overlap,
        mean_top_score_shift=shift,
        k=k,
        queries=queries,
        switched=switch,
    )


def _switch(db: Database, old: Collection, new: Collection) -> None:
    name = old.name
    _require_absent(db, name + PREV)
    with db.connection() as conn, conn.transaction():
        # writers wait for this short transaction; readers go on with the old table
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(old.layout.table))
        if _copy_changed(conn, old, new):
            # the rows written since the backfill: few, embedded while writers wait
            stmt = sql.SQL("SELECT id, content FROM {} WHERE embedding IS NULL").format(new.layout.table)
            rows = conn.execute(stmt).fetchall()
            if rows:
                vectors = new.embedder.embed([r[1] for r in rows])
                conn.execute(
                    sql.SQL(
                        "UPDATE {} t SET embedding = v.e "
                        "FROM (SELECT unnest(%s::bigint[]) id, unnest(%s::vector[]) e) v WHERE t.id = v.id"
                    ).format(new.layout.table),
                    [[r[0] for r in rows], list(np.asarray(vectors))],
                )
        _rename(conn, name, name + PREV)
        _rename(conn, new.name, name)
        _refuse_writes(conn, old, name)


def _refuse_writes(conn: Any, switched_out: Collection, name: str) -> None:
    """The table no longer behind ``name`` takes no writes (a writer holding the old catalog row
    gets an error that semsearch's own writers answer by reloading the collection)."""
    conn.execute(
        sql.SQL(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
            "FOR EACH STATEMENT EXECUTE FUNCTION semsearch.refuse_switched_out({})"
        ).format(_switched_trigger(switched_out), switched_out.layout.table, sql.Literal(name))
    )


def _accept_writes(conn: Any, col: Collection) -> None:
    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(_switched_trigger(col), col.layout.table))


def _switched_trigger(col: Collection) -> sql.Identifier:
    return sql.Identifier(col.layout.table_name + "_switched")


def _rename(conn: Any, old_name: str, new_name: str) -> None:
    conn.execute("UPDATE semsearch.collections SET name = %s WHERE name = %s", [new_name, old_name])


def _exists(db: Database, name: str) -> bool:
    with db.connection() as conn:
        return conn.execute("SELECT 1 FROM semsearch.collections WHERE name = %s", [name]).fetchone() is not None


def _require_absent(db: Database, name: str) -> None:
    if _exists(db, name):
        raise CollectionExistsError(f"expected no {name!r} left from an earlier migration, got one: drop it first")


def rollback(db: Database, name: str) -> None:
    """Switch ``name`` back to the collection it replaced (``<name>__prev``), atomically.

    Example::

        rollback(db, "docs")
    """
    if not _exists(db, name + PREV):
        raise CollectionNotFoundError(f"expected {name + PREV!r} from an earlier migration, got none")
    _require_absent(db, name + NEXT)
    live, prev = db.collection(name), db.collection(name + PREV)
    with db.connection() as conn, conn.transaction():
        _rename(conn, name, name + NEXT)
        _rename(conn, name + PREV, name)
        _accept_writes(conn, prev)
        _refuse_writes(conn, live, name)
