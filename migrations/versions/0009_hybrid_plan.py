"""one planner, finished: hybrid_search() takes its list sizes, fusion and weights from semsearch.plan_hybrid

``semsearch.plan_hybrid`` and ``plan_iterative_scan`` are the SQL twins of ``semsearch/planner.py``'s
rules; ``hybrid_search()`` is ``planner.hybrid_function()``, the fusion ``explain`` shows (all made
again from the code by ``semsearch db upgrade``). ``search()`` and ``text_search()`` say what they
run as DEBUG messages.

Self-contained: ``sql/0009_hybrid_plan.sql`` and ``sql/0009_downgrade.sql``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0009_hybrid_plan.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0009_downgrade.sql").read_text())
