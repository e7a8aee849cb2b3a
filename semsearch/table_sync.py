"""Search an existing table in place: triggers turn its writes into a collection's pending rows.

``Database.sync_table("products", collection="products", key="id", text="description",
metadata=["price"])`` installs four statement-level triggers on the source table (with
transition tables: one statement per source statement, whatever its size, COPY included):

- INSERT: the new rows are upserted into the collection without an embedding;
- UPDATE: only rows whose key, text, metadata or tenant changed are written (an
  update of other columns writes nothing); a changed key moves the row;
- DELETE: the rows go; TRUNCATE: the collection is emptied.

Into a collection with passages (``passages=``) each row is a document: the triggers queue
it instead of writing it, and a delete drops its passages (:mod:`semsearch.document_queue`).

Several text columns (``text=["name", "description"]``) make one text, each non-NULL
value on its own line after its column's name (``"name: kettle\ndescription: boils
water"``): an update of any of them re-pends the row. A row whose text is NULL (every
text column NULL, with several) (or, for a ``tenant_required`` collection, whose tenant is
NULL) is not in the collection. The rows already in the table are queued by one
``INSERT ... SELECT`` in the transaction that creates the triggers (the source is
locked against writes meanwhile, so none is missed), and the collection mirrors the
table from then on: its rows not in the table are deleted, unchanged texts keep their
vectors. ``backfill`` (or ``backfill --watch``, woken by the collection's
``semsearch_pending`` notifications) embeds them.

Privileges: the trigger functions are ``SECURITY DEFINER``, owned by the role that ran
``sync_table``, so any role that may write the source table, with no rights on
semsearch's tables, keeps the collection in step; its writes would fail otherwise. To
make that safe they are composed here with ``psycopg.sql`` (names quoted, no dynamic SQL,
nothing read from a table), run with ``search_path = pg_catalog, pg_temp``, and
``EXECUTE`` is revoked from ``PUBLIC``, so nobody else can attach them to another
table. They convert column values with casts and ``to_jsonb``, which call the column
types' output functions and casts as the definer: a column whose type (or element or
base type) is owned by a role other than a superuser or the syncing role is refused,
and each statement checks the columns still have the types they were synced with (an
``ALTER TABLE ... TYPE`` makes the source's writes fail with a message to sync again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from semsearch import catalog, document_queue
from semsearch.collection_info import CollectionInfo
from semsearch.collection_settings import LOCAL_MODEL, make_info
from semsearch.embeddings import Embedder
from semsearch.errors import ConfigurationError
from semsearch.faces import Connections
from semsearch.layout import check_name
from semsearch.plans import Plan
from semsearch.sync_source import Source, check_columns, decode_text, encode_text, resolve, text_columns

#: statement trigger events and the transition tables their functions read
EVENTS = {
    "ins": ("INSERT", "REFERENCING NEW TABLE AS new_rows "),
    "upd": ("UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "),
    "del": ("DELETE", "REFERENCING OLD TABLE AS old_rows "),
    "tru": ("TRUNCATE", ""),
}


@dataclass(frozen=True)
class SyncedTable:
    """A table whose rows reach a collection by triggers (:meth:`Database.sync_table`).

    Example::

        db.synced_tables()
        # [SyncedTable(collection='products', table='public.products', key='id', text='description',
        #              metadata=('price', 'category'), tenant=None)]
    """

    collection: str
    table: str
    key: str
    #: one column's name, or the names of several joined into one text
    text: str | tuple[str, ...]
    metadata: tuple[str, ...] = ()
    tenant: str | None = None


def function_name(collection: str, event: str) -> sql.Identifier:
    return sql.Identifier("semsearch", f"sync_{collection}_{event}")


class Statements:
    """Everything one sync runs, composed from checked names (nothing touches the database)."""

    def __init__(self, info: CollectionInfo, source: Source, spec: SyncedTable) -> None:
        self.info, self.source, self.spec = info, source, spec
        self.target = info.layout.table

    def rows(self, src: sql.Composable) -> sql.Composed:
        """The collection's (key, content, metadata, tenant) of the rows in ``src`` (aliased r)."""
        s = self.spec
        col = lambda c: sql.SQL("r.{}").format(sql.Identifier(c))  # noqa: E731
        meta = (
            sql.SQL("pg_catalog.jsonb_build_object({})").format(
                sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(m), col(m)) for m in s.metadata)
            )
            if s.metadata
            else sql.SQL("'{}'::jsonb")
        )
        tenant = sql.SQL("({})::text").format(col(s.tenant)) if s.tenant else sql.SQL("NULL::text")
        if isinstance(s.text, str):
            text = sql.SQL("({})::text").format(col(s.text))
        else:
            # "name: value" lines, NULLs skipped (concat_ws skips them); none at all is a NULL text
            text = sql.SQL("NULLIF(pg_catalog.concat_ws(E'\\n', {}), '')").format(
                sql.SQL(", ").join(sql.SQL("{} || ({})::text").format(sql.Literal(f"{c}: "), col(c)) for c in s.text)
            )
        return sql.SQL(
            "SELECT ({k})::text AS key, {t} AS content, {m} AS metadata, {n} AS tenant "
            "FROM {src} r WHERE {k} IS NOT NULL"
        ).format(k=col(s.key), t=text, m=meta, n=tenant, src=src)

    def _searchable(self) -> sql.SQL:
        return sql.SQL("content IS NOT NULL" + (" AND tenant IS NOT NULL" if self.info.tenant_required else ""))

    def upsert(self, rows: sql.Composable) -> sql.Composed:
        """Write ``rows`` pending, in key order like ``staging.write`` (writers of one key wait, never deadlock)."""
        return sql.SQL(
            "INSERT INTO {t} AS t (key, content, metadata, tenant) "
            'SELECT key, content, metadata, tenant FROM ({rows}) s WHERE {ok} ORDER BY key COLLATE "C" '
            # a changed text loses its vector here, whatever the transaction set (semsearch.upsert)
            "ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata, "
            "tenant = EXCLUDED.tenant, updated_at = pg_catalog.now(), "
            "embedding = CASE WHEN t.content = EXCLUDED.content THEN t.embedding END "
            "WHERE (t.content, t.metadata, t.tenant) IS DISTINCT FROM (EXCLUDED.content, EXCLUDED.metadata, "
            "EXCLUDED.tenant)"
        ).format(t=self.target, rows=rows, ok=self._searchable())

    def queue(self) -> list[sql.Composed]:
        """Mirror the table now: rows not in it go, the others are upserted (unchanged ones keep their vector)."""
        rows = self.rows(self.source.ident)
        if self.info.passages is not None:  # documents: queued, split by backfill (semsearch.document_queue)
            return document_queue.mirror_statements(self.info.name, self.target, rows, self._searchable())
        return [
            sql.SQL("DELETE FROM {t} x WHERE NOT EXISTS (SELECT FROM ({rows}) s WHERE s.key = x.key AND {ok})").format(
                t=self.target, rows=rows, ok=self._searchable()
            ),
            self.upsert(rows),
        ]

    def _check_types(self) -> sql.Composed:
        types = self.source.types
        return sql.SQL(
            "IF ARRAY(SELECT a.atttypid::regtype FROM unnest({names}::name[]) WITH ORDINALITY c(n, i) "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = TG_RELID AND a.attname = c.n "
            "AND NOT a.attisdropped ORDER BY c.i) IS DISTINCT FROM {types}::regtype[] THEN "
            "RAISE EXCEPTION 'expected the synced columns of % with the names and types they were synced with, "
            "got a change: run sync_table(%, collection => %) again', TG_RELID::regclass, "
            "pg_catalog.quote_literal(TG_RELID::regclass::text), pg_catalog.quote_literal({coll}) "
            "USING ERRCODE = '55000'; END IF;"
        ).format(
            names=sql.Literal(list(types)),
            types=sql.Literal(list(types.values())),
            coll=sql.Literal(self.info.name),
        )

    def bodies(self) -> dict[str, sql.Composable]:
        remove = sql.SQL("DELETE FROM {t} x WHERE x.key IN ({keys});")
        new_keys = sql.SQL("SELECT key FROM ({}) s WHERE {}").format(self.rows(sql.SQL("new_rows")), self._searchable())
        old_keys = sql.SQL("SELECT key FROM ({}) s").format(self.rows(sql.SQL("old_rows")))
        if self.info.passages is not None:
            return self._document_bodies(new_keys, old_keys)
        return {
            "ins": sql.SQL("{};").format(self.upsert(self.rows(sql.SQL("new_rows")))),
            # keys that left (moved, or text now NULL) go; rows whose synced values changed are written
            "upd": sql.SQL("{}\n    {};").format(
                remove.format(t=self.target, keys=sql.SQL("{} EXCEPT {}").format(old_keys, new_keys)),
                self.upsert(
                    sql.SQL("{} EXCEPT {}").format(self.rows(sql.SQL("new_rows")), self.rows(sql.SQL("old_rows")))
                ),
            ),
            "del": remove.format(t=self.target, keys=old_keys),
            "tru": sql.SQL("TRUNCATE {};").format(self.target),
        }

    def _document_bodies(self, new_keys: sql.Composable, old_keys: sql.Composable) -> dict[str, sql.Composable]:
        """A collection with passages: rows are queued as documents, those that leave go with their passages."""
        name, ok = self.info.name, self._searchable()
        changed = sql.SQL("{} EXCEPT {}").format(self.rows(sql.SQL("new_rows")), self.rows(sql.SQL("old_rows")))
        return {
            "ins": document_queue.queue_statement(name, self.rows(sql.SQL("new_rows")), ok, "insert"),
            "upd": sql.SQL("{}\n    {}").format(
                document_queue.forget_statement(name, self.target, sql.SQL("{} EXCEPT {}").format(old_keys, new_keys)),
                document_queue.queue_statement(name, changed, ok, "update"),
            ),
            "del": document_queue.forget_statement(name, self.target, old_keys),
            "tru": document_queue.clear_statement(name, self.target),
        }

    def create(self) -> list[sql.Composed]:
        """Functions (owned by the caller, EXECUTE revoked from PUBLIC) and triggers on the source."""
        stmts: list[sql.Composed] = []
        for event, body in self.bodies().items():
            fn = function_name(self.info.name, event)
            check = self._check_types() if event != "tru" else sql.SQL("")
            stmts += [
                sql.SQL(
                    "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql "
                    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $sync$\nBEGIN\n    {check}\n    {body}\n"
                    "    RETURN NULL;\nEND\n$sync$"
                ).format(fn=fn, check=check, body=body),
                sql.SQL("REVOKE EXECUTE ON FUNCTION {}() FROM PUBLIC").format(fn),
                sql.SQL(
                    "CREATE TRIGGER {name} AFTER {ev} ON {src} {ref}FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
                ).format(
                    name=sql.Identifier(f"semsearch_sync_{event}"),
                    ev=sql.SQL(EVENTS[event][0]),
                    src=self.source.ident,
                    ref=sql.SQL(EVENTS[event][1]),
                    fn=fn,
                ),
            ]
        return stmts

    def record(self) -> sql.Composed:
        s = self.spec
        return sql.SQL(
            "INSERT INTO semsearch.synced_tables (collection, source, key_column, text_column, metadata_columns, "
            "tenant_column) VALUES ({}, {}::oid::regclass, {}, {}, {}, {})"
        ).format(
            *map(sql.Literal, (s.collection, self.source.oid, s.key, encode_text(s.text), list(s.metadata), s.tenant))
        )


def drop_statements(collection: str) -> list[sql.Composed]:
    """Remove a sync: its functions, and with them (CASCADE) the triggers on the source, and its record."""
    return [
        *(sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(function_name(collection, e)) for e in EVENTS),
        sql.SQL("DELETE FROM semsearch.synced_tables WHERE collection = {}").format(sql.Literal(collection)),
    ]


def read_all(conn: psycopg.Connection) -> list[SyncedTable]:
    rows = conn.execute(
        # schema-qualified whatever the search_path; a dropped table shows as the OID it had
        "SELECT s.collection, coalesce(format('%I.%I', n.nspname, c.relname), s.source::oid::text), s.key_column, "
        "s.text_column, s.metadata_columns, s.tenant_column FROM semsearch.synced_tables s "
        "LEFT JOIN pg_class c ON c.oid = s.source LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
        "ORDER BY s.collection"
    ).fetchall()
    return [SyncedTable(r[0], r[1], r[2], decode_text(r[3]), tuple(r[4]), r[5]) for r in rows]


def find(conn: psycopg.Connection, *, collection: str | None = None, table: str | None = None) -> SyncedTable | None:
    """The sync of a collection, or of a table (by name; a dropped table by the OID it shows as)."""
    for s in read_all(conn):
        if collection is not None and s.collection == collection:
            return s
        if table is not None:
            got = conn.execute(
                "SELECT to_regclass(%s) = %s::regclass OR %s = %s", [table, s.table, table, s.table]
            ).fetchone()
            if got and got[0]:
                return s
    return None


def sync_table(
    db: Connections,
    table: str,
    *,
    create: Callable[[], object],
    collection: str,
    key: str,
    text: str | Sequence[str],
    metadata: Sequence[str] = (),
    tenant: str | None = None,
    model: str | None = None,
    dims: int | None = None,
    compression: str | None = None,
    embedder: Embedder | None = None,
    passages: Any = None,
) -> None:
    """See :meth:`Database.sync_table`; every check runs before anything is written.

    ``create()`` makes the collection (with the model, dims and plan given) when it does not exist.
    """
    key, text, meta, tenant = check_columns(key, text, metadata, tenant)
    check_name(collection)
    columns = list(dict.fromkeys([key, *text_columns(text), *meta, *([tenant] if tenant else [])]))
    with db.connection() as conn:
        source = resolve(conn, table, columns, key)
        by_table = find(conn, table=str(source.oid))
        if by_table is not None and by_table.collection != collection:
            raise ConfigurationError(
                f"expected {table!r} not synced yet, got it synced to collection {by_table.collection!r}: "
                "unsync_table it first"
            )
        by_name = find(conn, collection=collection)
        if by_name is not None and by_table is None:
            raise ConfigurationError(
                f"expected collection {collection!r} free, got it synced from {by_name.table}: unsync_table that first"
            )
        exists = conn.execute("SELECT 1 FROM semsearch.collections WHERE name = %s", [collection]).fetchone()
        if exists:
            info = catalog.read(conn, collection)
            document_queue.check_sync(passages, info, meta)
            _check_compatible(info, model=model, dims=dims, compression=compression, embedder=embedder)
        else:
            document_queue.check_sync(passages, None, meta)
            make_info(collection, model=model, dims=dims, compression=compression, embedder=embedder,
                      passages=passages)  # fmt: skip
    if not exists:
        create()
    spec = SyncedTable(collection, f"{source.schema}.{source.name}", key, text, meta, tenant)
    with db.connection() as conn, conn.transaction():
        # no write to the source between the first copy and the triggers: none is missed
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(source.ident))
        stmts = Statements(catalog.read(conn, collection), source, spec)
        for stmt in [*drop_statements(collection), *stmts.create(), stmts.record(), *stmts.queue()]:
            conn.execute(stmt)


def _check_compatible(
    info: CollectionInfo, *, model: str | None, dims: int | None, compression: str | None, embedder: Embedder | None
) -> None:
    info.layout.check_one_server(" to sync a table to", " (the triggers' writes are not tested through Citus)")
    if embedder is not None:
        model, dims = model or embedder.model, dims or embedder.dims
    wanted = {
        "model": LOCAL_MODEL if model == "local" else model,
        "dims": dims,
        "compression": None
        if compression is None
        else str(Plan.parse(compression, dims=info.dims, storage=info.storage)),
    }
    for field, value in wanted.items():
        if value is not None and value != getattr(info, field):
            raise ConfigurationError(
                f"expected {field}={getattr(info, field)!r} for existing collection {info.name!r}, got {value!r}"
            )


def unsync_table(db: Connections, table: str, *, drop_collection: bool = False) -> SyncedTable:
    """See :meth:`Database.unsync_table`."""
    with db.connection() as conn, conn.transaction():
        found = find(conn, table=table)
        if found is None:
            raise ConfigurationError(f"expected a synced table, got {table!r} (see synced_tables())")
        for stmt in drop_statements(found.collection):
            conn.execute(stmt)
        if drop_collection:
            conn.execute("SELECT semsearch.drop_collection(%s)", [found.collection])
    return found


def synced_tables(db: Connections) -> list[SyncedTable]:
    """See :meth:`Database.synced_tables`."""
    with db.connection() as conn:
        return read_all(conn)
