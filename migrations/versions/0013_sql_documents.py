"""documents from the SQL functions: search(), text_search(), hybrid_search() and more_like() take passages

On a collection with passages they return the best ``k`` distinct documents (``passages => true``: the
best ``k`` passages), widening their candidates until ``k`` are found; the row-level searches stay as
``search_rows()``, ``text_search_rows()`` and ``hybrid_search_rows()``. A search by a tenant that finds
nothing in a collection where no row has a tenant raises.

Self-contained: ``sql/0013_sql_documents.sql`` and ``sql/0013_downgrade.sql``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0013_sql_documents.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0013_downgrade.sql").read_text())
