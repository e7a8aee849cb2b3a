"""pending documents: a synced table's documents waiting to be split into passages and embedded

``Database.sync_table(..., passages=...)`` keeps a collection with passages in step with a table.
Triggers cannot split text or call an embedder, so for such a collection they queue each written
row's document here (its key, text, metadata and tenant, as of the last write; ``version`` changes
with every write) and delete a deleted row's passages at once; ``backfill`` (and ``--watch``) splits
the queued documents, embeds the new passages and writes them, dropping an entry only if its
version is still the one it read (see ``semsearch/document_queue.py``).

Rights as for the quarantine (0006): a writer of a collection (INSERT on its table) sees and
changes that collection's entries and no other's; roles granted ``--write`` before this
migration get the same grants on the new table.

Self-contained: ``sql/0011_pending_documents.sql`` and ``sql/0011_downgrade.sql``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL_DIR / "0011_pending_documents.sql").read_text())


def downgrade() -> None:
    op.execute((SQL_DIR / "0011_downgrade.sql").read_text())
