"""distributed_by: the Citus distribution column of a collection's table (issue 12)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: a plain table on one server; the statements and writes of a distributed collection differ
    op.execute(
        "ALTER TABLE semsearch.collections ADD COLUMN distributed_by text "
        "CONSTRAINT collections_distributed_by_check CHECK (distributed_by IN ('key', 'tenant'))"
    )


def downgrade() -> None:
    # a distributed collection stays a distributed table; without this column it would be searched
    # with single-node statements that Citus refuses, so the downgrade refuses first
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM semsearch.collections WHERE distributed_by IS NOT NULL) THEN
                RAISE EXCEPTION 'expected no distributed collection to downgrade below 0004, got %',
                    (SELECT string_agg(name, ', ') FROM semsearch.collections WHERE distributed_by IS NOT NULL);
            END IF;
        END
        $$
        """
    )
    op.execute("ALTER TABLE semsearch.collections DROP COLUMN distributed_by")
