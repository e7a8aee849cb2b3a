"""quarantine: rows the embedding provider refused, skipped by backfill until retried

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # content_hash ties an entry to the text that was refused: once the row's text changes
    # (by add() or by raw SQL) the entry no longer matches, and the row is embedded again
    op.execute(
        """
        CREATE TABLE semsearch.quarantine (
            -- dropping a collection (its catalog row) drops its quarantine
            table_name text NOT NULL REFERENCES semsearch.collections (table_name) ON DELETE CASCADE,
            key text NOT NULL,
            content_hash bytea NOT NULL,
            reason text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (table_name, key)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE semsearch.quarantine IS "
        "'rows whose text the embedding provider refused (e.g. HTTP 400): backfill skips them until "
        "their text changes or backfill(retry_quarantined=True)'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE semsearch.quarantine")
