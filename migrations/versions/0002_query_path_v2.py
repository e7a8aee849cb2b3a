"""query path v2: no SQL text in the catalog; per-collection functions made by DDL

The catalog's ``ann_sql``/``exact_sql``/``text_sql``/``count_sql`` columns (SQL text that
``semsearch.search()`` ran with EXECUTE: whoever could write the table could make
another role's search run anything) are replaced by per-collection functions, made
by DDL from semsearch/statements.py, and a ``statements_version`` checked on read.
Text search ranks by BM25: each collection gets its statistics tables (semsearch/bm25/),
filled from its rows, and ``bm25_k1``/``bm25_b``/``hybrid`` settings. ``autotune`` and
``tuned_rows`` record the automatic tuning after bulk loads; ``tenant_required``
refuses writes and searches without a tenant. The stale-vector
trigger compares texts only (0.1.0's compared vectors in its WHEN clause, which made
pg_dump's output fail to restore) and leaves semsearch's own upserts alone.

Each existing collection's functions and BM25 statistics are made after the migrations by
``semsearch db upgrade`` (``semsearch.migrate.regenerate``), from the statements of the
library that runs it (they must equal what its Python searches run); a release that
changes the statements bumps ``STATEMENTS_VERSION`` and ships no migration for it.
Downgrade restores 0.1.0's columns, its templates (composed here exactly as 0.1.0 did,
self-contained) and its function bodies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from pathlib import Path
from typing import Any

from alembic import op
from psycopg import sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
TEMPLATE_COLUMNS = ("ann_sql", "exact_sql", "text_sql", "count_sql")


def _collections() -> list[Any]:
    return list(
        op.get_bind()
        .exec_driver_sql(
            "SELECT name, table_name, dims, storage, compression, text_config::text FROM semsearch.collections"
        )
        .fetchall()
    )


def _run(stmt: sql.Composable) -> None:
    op.get_bind().exec_driver_sql(stmt.as_string(None).replace("%", "%%"))


def _needs_generated_objects() -> None:
    """Every collection's functions, BM25 statistics and triggers are made from the code that runs it:
    ``semsearch db upgrade`` does it after the migrations (semsearch/generated.py) for each collection
    whose ``statements_version`` is not the library's, so this frozen migration imports none of it."""
    op.execute("UPDATE semsearch.collections SET statements_version = NULL")


def upgrade() -> None:
    op.execute(
        "ALTER TABLE semsearch.collections "
        + ", ".join(f"DROP COLUMN {c}" for c in TEMPLATE_COLUMNS)
        + ", ADD COLUMN statements_version integer"
        + ", ADD COLUMN autotune boolean NOT NULL DEFAULT true"
        + ", ADD COLUMN tuned_rows bigint"
        + ", ADD COLUMN tenant_required boolean NOT NULL DEFAULT false"
        + ", ADD COLUMN bm25_k1 real NOT NULL DEFAULT 1.2 CHECK (bm25_k1 BETWEEN 0 AND 10)"
        + ", ADD COLUMN bm25_b real NOT NULL DEFAULT 0.75 CHECK (bm25_b BETWEEN 0 AND 1)"
        + ", ADD COLUMN hybrid jsonb"
    )
    op.execute(
        "COMMENT ON TABLE semsearch.collections IS "
        "'one row per semsearch collection: its model, dimensions, compression plan and tuned search settings "
        "(data only: the statements are composed from it)'"
    )
    op.execute((SQL_DIR / "0002_search.sql").read_text())
    _needs_generated_objects()


# --- downgrade: 0.1.0's templates, composed as 0.1.0's schema.py did ---------------------------

_EXPR = {
    "none": "{src}",
    "halfvec": "({src})::halfvec({d})",
    "bit": "binary_quantize({src})::bit({d})",
    "mrl": "l2_normalize(subvector({src}, 1, {d}))::halfvec({d})",
    "mrl-bit": "binary_quantize(subvector({src}, 1, {d}))::bit({d})",
}
_OP = {"bit": "<~>", "mrl-bit": "<~>", "none": "<=>"}
_FILTER = (
    "({f} IS NULL OR ((NOT {f} ? 'contains' OR metadata @> ({f} -> 'contains')) "
    "AND (NOT {f} ? 'path' OR jsonb_path_match(metadata, ({f} ->> 'path')::jsonpath, "
    "coalesce({f} -> 'vars', '{{}}'::jsonb), true)) "
    "AND (NOT {f} ? 'tenant' OR tenant = ({f} ->> 'tenant'))))"
)


def _templates_0_1_0(table_name: str, dims: int, storage: str, compression: str, text_config: str) -> list[str]:
    """0.1.0's four statement templates for one collection (what its semsearch.search() EXECUTEd)."""
    stages = [s.strip() for s in compression.split("->") if s.strip() != "full"]
    kind, _, arg = stages[0].partition(":")
    d = int(arg) if arg else dims
    middle = [int(s.partition(":")[2]) for s in stages[1:]]
    table = sql.Identifier("semsearch", table_name)
    q = sql.SQL("$1::{}({})").format(sql.SQL(storage), sql.Literal(dims))

    def expr(k: str, src: sql.Composable, n: int) -> sql.Composable:
        return sql.SQL(_EXPR[k]).format(src=src, d=sql.Literal(n))

    def filt(param: str) -> sql.Composable:
        return sql.SQL(_FILTER).format(f=sql.SQL(param + "::jsonb"))

    def hits(body: sql.Composable) -> str:
        return (
            sql.SQL(
                "SELECT coalesce(array_agg(ROW(h.key, h.content, h.score, h.metadata)::semsearch.hit "
                "ORDER BY h.score DESC), '{{}}') FROM ({}) h"
            )
            .format(body)
            .as_string(None)
        )

    cand: sql.Composable = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY {} {} {} LIMIT $3").format(
        table, filt("$4"), expr(kind, sql.Identifier("embedding"), d), sql.SQL(_OP.get(kind, "<#>")), expr(kind, q, d)
    )
    for m in middle:
        cand = sql.SQL(
            "SELECT m.id FROM ({}) p JOIN {} m ON m.id = p.id ORDER BY m.{} <#> {} LIMIT greatest($2, $3 / 4)"
        ).format(cand, table, sql.Identifier(f"mrl_{m}"), expr("mrl", q, m))
    ann = sql.SQL(
        "SELECT c.key, c.content, (1 - (c.embedding <=> {q}))::float8 AS score, c.metadata "
        "FROM ({cand}) cand JOIN {t} c ON c.id = cand.id ORDER BY c.embedding <=> {q} LIMIT $2"
    ).format(q=q, cand=cand, t=table)
    exact = sql.SQL(
        "SELECT key, content, (1 - (embedding <=> {q}))::float8 AS score, metadata FROM {t} "
        "WHERE embedding IS NOT NULL AND {f} ORDER BY score DESC LIMIT $2"
    ).format(q=q, t=table, f=filt("$3"))
    text = sql.SQL(
        "SELECT key, content, ts_rank(tsv, q, 1)::float8 AS score, metadata "
        "FROM {t}, semsearch.any_words({cfg}::regconfig, $1::text) q "
        "WHERE tsv @@ q AND {f} ORDER BY score DESC, id LIMIT $2"
    ).format(t=table, cfg=sql.Literal(text_config), f=filt("$3"))
    count = sql.SQL("SELECT 1 FROM {} WHERE embedding IS NOT NULL AND {}").format(table, filt("$1"))
    return [hits(ann), hits(exact), hits(text), count.as_string(None)]


def downgrade() -> None:
    rows = _collections()
    for _, table_name, *_ in rows:
        # the per-collection functions, and the BM25 statistics with their triggers
        _run(sql.SQL("SELECT semsearch.drop_collection_functions({})").format(sql.Literal(table_name)))
    op.execute("DROP FUNCTION semsearch.collection_for_search(text, text, integer)")
    op.execute("DROP FUNCTION semsearch.refuse_switched_out() CASCADE")  # and the triggers using it
    op.execute(
        "ALTER TABLE semsearch.collections DROP COLUMN statements_version, DROP COLUMN autotune, "
        "DROP COLUMN tuned_rows, DROP COLUMN tenant_required, DROP COLUMN bm25_k1, DROP COLUMN bm25_b, "
        "DROP COLUMN hybrid, " + ", ".join(f"ADD COLUMN {c} text" for c in TEMPLATE_COLUMNS)
    )
    for name, table_name, dims, storage, compression, text_config in rows:
        table = sql.Identifier("semsearch", table_name)
        trigger = sql.Identifier(table_name + "_stale")
        _run(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, table))
        _run(
            sql.SQL(
                "CREATE TRIGGER {} BEFORE UPDATE OF content ON {} FOR EACH ROW "
                "WHEN (OLD.content IS DISTINCT FROM NEW.content AND OLD.embedding IS NOT DISTINCT FROM NEW.embedding) "
                "EXECUTE FUNCTION semsearch.reset_stale_embedding()"
            ).format(trigger, table)
        )
        values = _templates_0_1_0(table_name, dims, storage, compression, text_config)
        _run(
            sql.SQL("UPDATE semsearch.collections SET {} WHERE name = {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(v))
                    for c, v in zip(TEMPLATE_COLUMNS, values, strict=True)
                ),
                sql.Literal(name),
            )
        )
    op.execute(
        "ALTER TABLE semsearch.collections " + ", ".join(f"ALTER COLUMN {c} SET NOT NULL" for c in TEMPLATE_COLUMNS)
    )
    op.execute((SQL_DIR / "0002_downgrade.sql").read_text())
    op.execute("DROP FUNCTION semsearch.drop_collection_functions(text)")
    op.execute(
        "COMMENT ON TABLE semsearch.collections IS "
        "'one row per semsearch collection: its model, dimensions, compression plan and query templates'"
    )
