"""Change a collection's embedding model or dimensions without downtime.

1. a shadow collection ``<name>__next`` (its own table) gets every row's text,
   metadata and tenant, copied inside Postgres, and the new model embeds them
   with the resumable :mod:`semsearch.backfill` while searches keep using the
   old collection (the shadow's table carries a comment naming its source, so a
   collection that merely has the name ``<name>__next`` is never resumed and emptied);
2. a comparison on sampled stored texts: overlap@k and the shift of the top score (it needs
   the old model's embedder: ``old_embedder=`` for a model that is not built in, else skipped);
3. the switch: one transaction, holding off writers to the old table only while
   it copies and embeds the rows changed since step 1, then swaps the catalog
   names (``<name>`` becomes the new table, ``<name>__prev`` the old one);
4. :func:`rollback` swaps them back; ``drop_collection("<name>__prev")`` ends it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from semsearch import bm25, changes, collection_settings, ddl, table_sync, tenants
from semsearch.embeddings import Embedder, embedder_for, lookup
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError, EmbeddingError
from semsearch.layout import SCHEMA

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

    ``overlap_at_k`` and ``mean_top_score_shift`` are None when the comparison was skipped;
    ``note`` then says why.
    """

    name: str
    old_model: str
    old_dims: int
    new_model: str
    new_dims: int
    rows: int
    overlap_at_k: float | None
    mean_top_score_shift: float | None
    k: int
    queries: int
    switched: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        state = "switched" if self.switched else "built, not switched (run again with switch)"
        if self.overlap_at_k is None or self.mean_top_score_shift is None:
            compared = self.note or "comparison skipped"
        else:
            compared = (
                f"overlap@{self.k} {self.overlap_at_k:.2f}, top score shift {self.mean_top_score_shift:+.3f} "
                f"on {self.queries} sampled texts"
            )
        return (
            f"{self.name}: {self.old_model}/{self.old_dims} -> {self.new_model}/{self.new_dims}, {self.rows:,} rows; "
            f"{compared}; {state}"
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


def _shadow_mark(old: Collection) -> str:
    """The comment on a shadow's table: which collection (and table) it was built from."""
    return f"semsearch migrate-model: shadow of {old.name!r} (table {old.layout.table_name})"


def _mark_shadow(conn: Any, old: Collection, shadow_table: sql.Identifier) -> None:
    # a comment only the table's owner can set (no schema change): written with the table, in its transaction
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(shadow_table, sql.Literal(_shadow_mark(old))))


_TABLE_OID = sql.SQL(
    "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s)"
)


def _require_own_shadow(db: Database, old: Collection, shadow: Collection) -> None:
    """Refuse a ``<name>__next`` that migrate-model did not build from ``old``: resuming empties it."""
    with db.connection() as conn:
        row = conn.execute(
            sql.SQL("SELECT obj_description({}, 'pg_class')").format(_TABLE_OID),
            [SCHEMA, shadow.layout.table_name],
        ).fetchone()
    if row is None or row[0] != _shadow_mark(old):
        raise CollectionExistsError(
            f"expected {shadow.name!r} to be the shadow migrate-model built for {old.name!r}, got a collection "
            "it did not make: nothing was changed; move its rows to a collection of another name or drop it "
            "yourself, then run again"
        )


def _comparison_embedder(old: Collection, given: Embedder | None) -> tuple[Embedder | None, str | None]:
    """The old model's embedder for the comparison, or None and why it is skipped (decided before any embedding)."""
    info = old.info
    if given is not None:
        if (given.model, given.dims) != (info.model, info.dims):
            raise ConfigurationError(
                f"expected an old embedder for {info.model}/{info.dims}, got {given.model}/{given.dims}"
            )
        return given, None
    if lookup(info.model) is None:
        return None, (
            f"comparison skipped: the old model {info.model!r} is not built in; "
            "pass old_embedder= (--old-embedder module:factory) to compare"
        )
    return embedder_for(info.model, info.dims), None


def migrate_model(
    db: Database,
    name: str,
    *,
    model: str | None = None,
    dims: int | None = None,
    embedder: Embedder | None = None,
    old_embedder: Embedder | None = None,
    compression: str | None = None,
    sample: int = 50,
    k: int = 10,
    switch: bool = True,
    progress: bool = False,
    batch_size: int = 256,
) -> MigrationReport:
    """Build ``name`` again with another model or dims, compare, and switch atomically.

    Safe to interrupt and run again: the ``<name>__next`` an earlier run built, with
    the same model and dims, is resumed (its finished embeddings are kept); a
    collection of that name it did not build is refused and left as it is.

    The comparison searches the old collection with its own model: ``old_embedder``
    for a model that is not built in (without it the comparison is skipped, and the
    report's ``note`` says so).

    Example::

        report = migrate_model(db, "docs", model="local", dims=256, progress=True)
        print(report)          # overlap@10 and score shift, then switched
        migrate_model(db, "notes", embedder=NewEmbedder(), old_embedder=OldEmbedder())
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
    # its shadow would be a plain table on the coordinator, and the switch renames tables in ways
    # Citus does not propagate to the shards' functions and triggers
    old.layout.check_one_server(" for migrate-model", ": create a new distributed collection and add the rows to it")
    if switch:
        # refuse before paying for embeddings that could not be switched in
        _require_absent(db, name + PREV)
    if embedder is None:
        embedder = embedder_for(model or old.info.model, dims)
    compare_with, note = _comparison_embedder(old, old_embedder)
    if compare_with is not None:
        old = db.collection(name, embedder=compare_with)
    shadow = name + NEXT
    try:
        new = db.collection(shadow)
        _require_own_shadow(db, old, new)
        if (new.info.model, new.info.dims) != (embedder.model, embedder.dims):
            raise ConfigurationError(
                f"expected {shadow!r} to be a migration to {embedder.model}/{embedder.dims}, "
                f"got {new.info.model}/{new.info.dims}: drop it first"
            )
        new = db.collection(shadow, embedder=embedder)
        with db.connection() as conn:
            _accept_writes(conn, new)  # a rollback switched it out; resumed, it is written again
    except CollectionNotFoundError:
        info = collection_settings.make_info(
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
        info = replace(info, passages=old.info.passages)  # the same documents, split the same way
        with db.connection() as conn, conn.transaction():
            for stmt in ddl.create_statements(info):
                conn.execute(stmt)
            _mark_shadow(conn, old, info.layout.table)
        new = db.collection(shadow, embedder=embedder)
    with db.connection() as conn, conn.transaction():
        _copy_changed(conn, old, new)
    new.backfill(batch_size=batch_size, progress=progress)
    overlap: float | None = None
    shift: float | None = None
    queries = 0
    if compare_with is not None:
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
        rows=(db.collection(name) if switch else new).count(),  # switched: the shadow's name is gone
        overlap_at_k=overlap,
        mean_top_score_shift=shift,
        k=k,
        queries=queries,
        switched=switch,
        note=note,
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
        # who could read or write the old table can the new one (and so see the catalog row, 0006)
        old_bm25, new_bm25 = bm25.Names(old.layout.table_name), bm25.Names(new.layout.table_name)
        pairs = [(old.layout.table_name, new.layout.table)] + [
            (getattr(old_bm25, side), new_bm25.ident(getattr(new_bm25, side))) for side in ("postings", "df", "stats")
        ]
        for source, target in pairs:
            changes.copy_grants(conn, f"{SCHEMA}.{source}", target)
        if old.info.tenant_setting is not None:
            # the new table is isolated before anyone can read it: policies, per-tenant statistics
            for stmt in tenants.isolate_statements(replace(new.info, name=name), old.info.tenant_setting):
                conn.execute(stmt)
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


def _switched_trigger_name(col: Collection) -> str:
    return col.layout.table_name + "_switched"


def _switched_trigger(col: Collection) -> sql.Identifier:
    return sql.Identifier(_switched_trigger_name(col))


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
    with db.connection() as conn:
        # the switch left its trigger on the table it switched out: the mark of a __prev it made
        switched_out = conn.execute(
            sql.SQL("SELECT 1 FROM pg_trigger WHERE tgrelid = {} AND tgname = %s").format(_TABLE_OID),
            [SCHEMA, prev.layout.table_name, _switched_trigger_name(prev)],
        ).fetchone()
    if switched_out is None:
        raise CollectionExistsError(
            f"expected {prev.name!r} to be the collection migrate-model switched out of {name!r}, got one "
            "it did not make: nothing was changed; it is not rolled back to"
        )
    with db.connection() as conn, conn.transaction():
        _rename(conn, name, name + NEXT)
        _rename(conn, name + PREV, name)
        _accept_writes(conn, prev)
        _refuse_writes(conn, live, name)
