"""least privilege: per-collection rights on the shared tables, validated tuning, pinned search paths

A role's rights on one collection's table are now its rights on that collection's
rows of the shared tables, enforced by row-level security: ``semsearch.collections``
shows a role the collections it may read and lets it change the tuned columns only of
those it may write (0005 and before let a writer of one collection retune all of
them); ``semsearch.quarantine`` shows a writer its own collections' refused texts.
Tuned settings are checked where they are stored (``oversample`` finite and in range,
``hybrid`` a known fusion with numeric weights). ``tenant_setting`` records that
``Database.isolate_tenants()`` made a collection's tenant policies. Every function in
schema ``semsearch`` gets a fixed ``search_path`` (pg_catalog, pgvector's schema,
pg_temp), and ``semsearch.pin_search_paths()`` pins the ones later DDL makes.

Self-contained: the SQL is in ``sql/0006_least_privilege.sql`` and its downgrade in
``sql/0006_downgrade.sql``; nothing here imports semsearch.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0006_least_privilege.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0006_downgrade.sql").read_text())
