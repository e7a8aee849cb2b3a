"""lean search(): search_rows() and search() in SQL do less per call, with the same rows, errors and DEBUG message

search_rows() builds its filter spec only for a filtered search, makes its settings by assignment (no
PERFORM), builds its DEBUG message only when a client or the log could receive it, and collects the index
pass's rows without a sort; search() asks documents_wanted() only when passages are in play. Measured in
bench/results/querypath/overhead_9k.md. The downgrade restores 0013's definitions.

Self-contained: ``sql/0014_lean_search.sql`` and ``sql/0014_downgrade.sql``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0014_lean_search.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0014_downgrade.sql").read_text())
