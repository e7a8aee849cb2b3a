"""everyday calls: rows by key, a count by filter and "more like this" from SQL (issue 19)

``semsearch.get(collection, keys)`` returns stored rows by key (as the row type
``semsearch.stored_row``), ``semsearch.count(collection, filter, filter_path,
filter_vars, tenant)`` counts the rows a search's filter keeps, and
``semsearch.more_like(collection, key, k, ...)`` searches with a stored row's vector,
leaving the row out. All run as their caller, so grants, the catalog's row-level
security and tenant policies apply.

Self-contained: the SQL is in ``sql/0007_everyday_calls.sql`` and its downgrade in
``sql/0007_downgrade.sql``; nothing here imports semsearch.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0007_everyday_calls.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0007_downgrade.sql").read_text())
