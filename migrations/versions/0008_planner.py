"""one planner: semsearch.search() decides candidates, ef_search and index-or-exact with the planner's functions

``semsearch.plan_candidates``, ``plan_ef_search`` and ``plan_exact`` are the SQL twins of
``semsearch/planner.py``'s rules (made again from it by ``semsearch db upgrade``); ``search()``
calls them instead of its own arithmetic, and ``explain`` asks them too.

Self-contained: ``sql/0008_planner.sql`` and ``sql/0008_downgrade.sql``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0008_planner.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0008_downgrade.sql").read_text())
