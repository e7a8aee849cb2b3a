"""catalog of collections and the semsearch.search() SQL function

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        """
        CREATE TABLE semsearch.collections (
            name text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,47}$'),
            table_name text NOT NULL UNIQUE CHECK (table_name ~ '^col_[a-z0-9_]{1,48}$'),
            model text NOT NULL,
            dims integer NOT NULL CHECK (dims BETWEEN 1 AND 16000),
            storage text NOT NULL CHECK (storage IN ('vector', 'halfvec')),
            metric text NOT NULL DEFAULT 'cosine' CHECK (metric = 'cosine'),
            compression text NOT NULL,
            hnsw_m integer NOT NULL CHECK (hnsw_m BETWEEN 2 AND 100),
            hnsw_ef_construction integer NOT NULL CHECK (hnsw_ef_construction BETWEEN 4 AND 1000),
            oversample real NOT NULL CHECK (oversample >= 1),
            ef_search integer CHECK (ef_search BETWEEN 1 AND 1000),
            text_config regconfig NOT NULL DEFAULT 'english',
            ann_sql text NOT NULL,
            exact_sql text NOT NULL,
            text_sql text NOT NULL,
            count_sql text NOT NULL,
            tuning jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE semsearch.collections IS "
        "'one row per semsearch collection: its model, dimensions, compression plan and query templates'"
    )
    op.execute("CREATE TYPE semsearch.hit AS (key text, content text, score double precision, metadata jsonb)")
    # convert_to() is only STABLE, but a database's encoding never changes, so the
    # hash of a text is fixed: IMMUTABLE lets generated columns use it
    op.execute(
        "CREATE FUNCTION semsearch.content_hash(content text) RETURNS bytea "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
        "RETURN sha256(convert_to(content, 'UTF8'))"
    )
    op.execute(
        "CREATE FUNCTION semsearch.reset_stale_embedding() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.embedding := NULL; RETURN NEW; END $$"
    )
    op.execute((SQL_DIR / "0001_search.sql").read_text())


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE t text;
        BEGIN
            FOR t IN SELECT table_name FROM semsearch.collections LOOP
                EXECUTE format('DROP TABLE IF EXISTS semsearch.%I', t);
            END LOOP;
        END $$
        """
    )
    op.execute("DROP VIEW semsearch.stats")
    op.execute("DROP FUNCTION semsearch.drop_collection")
    op.execute("DROP FUNCTION semsearch.hybrid_search")
    op.execute("DROP FUNCTION semsearch.text_search")
    op.execute("DROP FUNCTION semsearch.search")
    op.execute("DROP FUNCTION semsearch.filter_spec")
    op.execute("DROP FUNCTION semsearch.any_words")
    op.execute("DROP AGGREGATE semsearch.tsquery_or_agg(tsquery)")
    op.execute("DROP TYPE semsearch.hit")
    op.execute("DROP FUNCTION semsearch.content_hash(text)")
    op.execute("DROP FUNCTION semsearch.reset_stale_embedding()")
    op.execute("DROP TABLE semsearch.collections")
