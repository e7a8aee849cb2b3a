"""EXPLAIN proves the coarse pass runs on the HNSW index for every compression plan."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector import Vector
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from tests.plans import function_statement, generic_plan, search_plan

PLANS = [
    ("bit", 1536, "vector"),
    ("mrl:256", 1536, "vector"),
    ("mrl-bit:512", 1536, "vector"),
    ("halfvec", 1536, "vector"),
    ("none", 1536, "vector"),
    ("none", 3072, "halfvec"),
    ("bit", 3072, "vector"),
]


@pytest.mark.parametrize(("compression", "dims", "storage"), PLANS)
def test_coarse_pass_uses_the_hnsw_index(db, compression, dims, storage):
    rng = np.random.default_rng(7)
    col = db.create_collection("c", dims=dims, model="label", compression=compression, storage=storage)
    vecs = rng.normal(size=(300, dims))
    col.add(keys=list(range(300)), contents=[f"row {i}" for i in range(300)], embeddings=vecs)
    assert "Index Scan using col_c_hnsw" in search_plan(col, vecs[0], seqscan=False)
    # the SQL functions' statement, planned generically (values unknown), can use it too
    assert "Index Scan using col_c_hnsw" in generic_plan(col, function_statement(col), seqscan=False)
    assert col.search(vector=vecs[5], k=3).keys[0] == "5"


def test_exact_search_never_uses_the_index(db):
    rng = np.random.default_rng(8)
    col = db.create_collection("c", dims=64, model="label", compression="none")
    vecs = rng.normal(size=(300, 64))
    col.add(keys=list(range(300)), contents=[f"row {i}" for i in range(300)], embeddings=vecs)
    text = search_plan(col, vecs[0], seqscan=False, exact=True)
    assert "hnsw" not in text and "Seq Scan" in text, text[:2000]


def test_planner_picks_the_index_on_its_own_at_realistic_size(db):
    rng = np.random.default_rng(9)
    col = db.create_collection("c", dims=1536, model="label", compression="bit")
    vecs = rng.normal(size=(5000, 1536)).astype(np.float32)
    col.add(keys=list(range(5000)), contents=[f"row {i}" for i in range(5000)], embeddings=vecs)
    assert "Index Scan using col_c_hnsw" in search_plan(col, vecs[0])
    assert "Index Scan using col_c_hnsw" in generic_plan(col, function_statement(col))


def test_prepared_search_keeps_the_index_from_its_sixth_execution_on(db_url):
    """psycopg prepares the statement; Postgres may switch to a generic plan from the 6th run on."""
    rng = np.random.default_rng(10)
    vecs = rng.normal(size=(3000, 256)).astype(np.float32)
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=256, model="label", compression="bit", autotune=False)
        col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    # every execution planned generically: what the 6th and later ones may get
    url = make_conninfo(db_url, options="-c plan_cache_mode=force_generic_plan")
    with semsearch.connect(url, max_connections=1) as db:
        col = db.collection("c")
        for i in range(8):
            assert col.search(vector=vecs[i], k=5).keys[0] == str(i)
        with db.connection() as conn:
            name, generic = conn.execute(
                "SELECT name, generic_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%<~>%"],
            ).fetchone()
            assert generic >= 8
            plan = conn.execute(
                sql.SQL("EXPLAIN EXECUTE {}({})").format(sql.Identifier(name), sql.Literal(Vector(vecs[0]).to_text()))
            ).fetchall()
    assert "Index Scan using col_c_hnsw" in "\n".join(r[0] for r in plan)


#: the per-collection function's statement among a session's cached plans (its text begins so)
CACHED_ANN_PLANS = (
    "SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'CachedPlan' "
    "AND ident LIKE 'SELECT key, content, (1 - (embedding <=>%'"
)


@pytest.mark.parametrize("compression", ["bit", "halfvec"])
def test_an_unfiltered_sql_search_plans_its_index_pass_once_per_session(db, db_url, compression):
    """semsearch.search() without a filter, on a table of at least 20 rows per ef_search, runs <table>_ann()'s
    generic plan, made at the first call and kept (a custom plan is made for each call and freed after it); the
    session's plan_cache_mode and enable_seqscan are left as they were. A filtered search, or one whose
    ef_search is wide for the table, keeps custom plans. The rows are Python's."""
    rng = np.random.default_rng(11)
    vecs = rng.normal(size=(3000, 64)).astype(np.float32)
    col = db.create_collection("c", dims=64, model="label", compression=compression, autotune=False)
    col.add_many(
        {"key": i, "content": f"row {i}", "embedding": v, "metadata": {"g": i % 2}} for i, v in enumerate(vecs)
    )
    with col.db.connection() as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(col.layout.table))
    search = (
        "SELECT key, score FROM semsearch.search('c', %s::vector, 5, oversample => 2, filter => %s::jsonb, "
        "ef_search => %s)"
    )
    settings = "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan')"
    python = [
        [(h.key, pytest.approx(h.score, abs=1e-6)) for h in col.search(vector=v, k=5, oversample=2)] for v in vecs[:20]
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        # a wide ef_search for 3,000 rows: planned for the call, as before
        wide = conn.execute(search, [str(list(map(float, vecs[0]))), None, 1000]).fetchall()
        assert wide[0][0] == "0"
        filtered = conn.execute(search, [str(list(map(float, vecs[0]))), '{"g": 0}', None]).fetchall()
        assert filtered[0][0] == "0"
        assert conn.execute(CACHED_ANN_PLANS).fetchone() == (0,)
        first = conn.execute(search, [str(list(map(float, vecs[0]))), None, None]).fetchall()
        assert conn.execute(CACHED_ANN_PLANS).fetchone() == (1,)
        assert conn.execute(settings).fetchone() == ("auto", "on")
        rest = [conn.execute(search, [str(list(map(float, v))), None, None]).fetchall() for v in vecs[1:20]]
        generic = [first, *rest]
        assert conn.execute(CACHED_ANN_PLANS).fetchone() == (1,)
    assert generic == python
    assert [rows[0][0] for rows in generic] == [str(i) for i in range(20)]
