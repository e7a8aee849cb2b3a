"""search() planned once: an unfiltered index pass reuses its plan, and the catalog row is read once per search()

search_rows() runs ``<table>_ann()`` with ``plan_cache_mode = force_generic_plan`` (and seq scans off) for an
unfiltered index pass on a table of at least 20 rows per ef_search (its statement planned once per session, not
for every call; a filtered pass, a small table or a wide ef_search keeps custom plans), and search()
and search_rows() share search_rows_of(), which takes the catalog row instead of reading it again. The
per-collection functions are not changed. Measured in bench/results/querypath/overhead_0015.md. The downgrade
restores 0014's definitions and drops search_rows_of().

Self-contained: ``sql/0015_planned_once.sql`` and ``sql/0015_downgrade.sql``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0015_planned_once.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0015_downgrade.sql").read_text())
