"""automatic plans: collections.plan_mode ('auto' follows the collection's size, 'pinned' keeps it) and plan_reason

A collection created without ``compression=`` lets :func:`semsearch.plan_choice.choose_plan` pick its
plan as it grows; ``plan_reason`` says why it has the one it has. Collections that exist before this
migration keep their plan: they are ``pinned``. ``semsearch.stats`` shows both.

Self-contained: ``sql/0012_automatic_plans.sql`` and ``sql/0012_downgrade.sql``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0012_automatic_plans.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0012_downgrade.sql").read_text())
