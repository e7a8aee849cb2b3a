"""documents and passages: collections.passages (the splitter's settings) and semsearch.search_documents()

A collection made with ``passages=`` stores each document as passage rows (``<key>#<seq>``, their place
in metadata); its catalog row keeps the splitter's settings, and ``search_documents`` returns the best
``k`` distinct documents, widening its candidates until ``k`` are found.

Self-contained: ``sql/0010_passages.sql`` and ``sql/0010_downgrade.sql``.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0010_passages.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0010_downgrade.sql").read_text())
