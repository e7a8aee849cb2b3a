"""synced tables: existing tables feeding collections by triggers; pending work is NOTIFYed

``semsearch.synced_tables`` records each ``Database.sync_table``: the source table (a
``regclass``, so a rename follows) and the columns it feeds into which collection. The
triggers and their functions on a source table are made by ``semsearch/table_sync.py``.

Every collection table gets two statement-level triggers that call
``semsearch.notify_pending()``: a statement that leaves rows waiting for an embedding
(a deferred add, a synced table's write, a raw edit of a text) sends one
``pg_notify('semsearch_pending', <collection name>)``, which ``backfill --watch`` waits for.

Downgrade removes the sync triggers from their source tables first (else the sources'
writes would call functions that are gone), then the notify triggers and the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op
from psycopg import sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: the statement-level triggers that wake watchers, on every collection table (semsearch/layout.py makes the same)
NOTIFY_TRIGGERS = {"semsearch_pending_ins": "INSERT", "semsearch_pending_upd": "UPDATE"}
#: the per-sync functions (semsearch/table_sync.py), dropped with CASCADE: their triggers go with them
SYNC_EVENTS = ("ins", "upd", "del", "tru")


def _run(stmt: sql.Composable) -> None:
    op.get_bind().exec_driver_sql(stmt.as_string(None).replace("%", "%%"))


def _column(query: str) -> list[str]:
    return [r[0] for r in op.get_bind().exec_driver_sql(query).fetchall()]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE semsearch.synced_tables (
            -- RESTRICT: a synced collection cannot be dropped while its triggers write to it
            collection text PRIMARY KEY REFERENCES semsearch.collections (name) ON DELETE RESTRICT,
            source regclass NOT NULL UNIQUE,
            key_column text NOT NULL,
            text_column text NOT NULL,
            metadata_columns text[] NOT NULL DEFAULT '{}',
            tenant_column text,
            synced_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE semsearch.synced_tables IS "
        "'existing tables whose rows reach a collection as pending work through triggers (Database.sync_table)'"
    )
    # SECURITY DEFINER: a writer of the collection need not read the catalog to wake a watcher;
    # it sends one notification per statement, and only when the statement left a row pending
    op.execute(
        """
        CREATE FUNCTION semsearch.notify_pending() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $fn$
        BEGIN
            IF EXISTS (SELECT FROM new_rows WHERE embedding IS NULL) THEN
                PERFORM pg_notify('semsearch_pending',
                    coalesce((SELECT c.name FROM semsearch.collections c WHERE c.table_name = TG_TABLE_NAME),
                             TG_TABLE_NAME));
            END IF;
            RETURN NULL;
        END
        $fn$
        """
    )
    for table in _column("SELECT table_name FROM semsearch.collections"):
        for name, event in NOTIFY_TRIGGERS.items():
            _run(
                sql.SQL(
                    "CREATE TRIGGER {} AFTER {} ON {} REFERENCING NEW TABLE AS new_rows "
                    "FOR EACH STATEMENT EXECUTE FUNCTION semsearch.notify_pending()"
                ).format(sql.Identifier(name), sql.SQL(event), sql.Identifier("semsearch", table))
            )


def downgrade() -> None:
    for collection in _column("SELECT collection FROM semsearch.synced_tables"):
        for event in SYNC_EVENTS:
            _run(
                sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(
                    sql.Identifier("semsearch", f"sync_{collection}_{event}")
                )
            )
    for table in _column("SELECT table_name FROM semsearch.collections"):
        for name in NOTIFY_TRIGGERS:
            _run(
                sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                    sql.Identifier(name), sql.Identifier("semsearch", table)
                )
            )
    op.execute("DROP FUNCTION semsearch.notify_pending()")
    op.execute("DROP TABLE semsearch.synced_tables")
