"""A plan whose coarse pass ranks as the full vectors do reads few rows unfiltered: none k, halfvec 2k.

HNSW hands back its ef_search best in distance order, so for these plans the candidates past
``k`` were heap rows fetched (a page each at 1,536 dims) only for the rescore to drop them; the
oversample still widens ``hnsw.ef_search`` (planner.coarse_rows). Checked where it runs: the
HNSW index scan's rows in ``EXPLAIN ANALYZE`` (Python) and the index's tuples read in the
transaction (``pg_stat_get_xact_tuples_returned``, the SQL function), with the answers unchanged.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from semsearch import planner

N, DIMS, K, OVERSAMPLE = 1000, 64, 5, 8.0
#: so small a table is sorted whole unless told (the index's rows are what is checked)
INDEX = {"enable_seqscan": "off", "enable_bitmapscan": "off"}
CANDIDATES = planner.candidates(K, OVERSAMPLE)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    v = np.random.default_rng(22).normal(size=(N, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _made(db, plan: str, vectors: np.ndarray):
    col = db.create_collection(f"c_{plan}", dims=DIMS, model="label", compression=plan, autotune=False)
    meta = [{"half": i % 2 == 0} for i in range(N)]
    col.add([f"d{i}" for i in range(N)], [f"row {i}" for i in range(N)], embeddings=vectors, metadata=meta)
    return col


def _index_rows(plan_text: str) -> int:
    """Rows the HNSW index scan returned, from EXPLAIN ANALYZE's text."""
    line = next(x for x in plan_text.splitlines() if "Index Scan using" in x and "_hnsw" in x)
    return int(float(re.search(r"actual time=\S+ rows=([\d.]+)", line).group(1)))


def _query(vectors: np.ndarray, i: int) -> np.ndarray:
    q = vectors[i] + np.random.default_rng(i).normal(scale=0.5, size=DIMS)
    return (q / np.linalg.norm(q)).astype(np.float32)


@pytest.mark.parametrize(("plan", "rows"), [("none", K), ("halfvec", 2 * K), ("bit", CANDIDATES)])
def test_python_reads_few_rows_from_the_index_when_the_plan_ranks_as_the_full_vectors(db, vectors, plan, rows):
    """Before: 40 rows (k 5 x oversample 8) from the index, 35 of them rescored only to be dropped."""
    col = _made(db, plan, vectors)
    q = _query(vectors, 3)
    shown = col.explain(vector=q, k=K, oversample=OVERSAMPLE, settings=INDEX)
    assert _index_rows(shown.plan) == rows
    # plan none's k rows come in the full vectors' own order: nothing sorts them again
    assert ("Sort" in shown.plan) == (plan != "none")
    # the oversample still buys a wider graph search
    assert shown.settings == {"hnsw.ef_search": str(planner.ef_search(None, None, CANDIDATES))}
    # filtered, the iterative scan's relaxed order needs every candidate rescored
    filtered = col.explain(vector=q, k=K, oversample=OVERSAMPLE, where={"half": True}, settings=INDEX)
    assert _index_rows(filtered.plan) == CANDIDATES


@pytest.mark.parametrize(("plan", "rows"), [("none", K), ("halfvec", 2 * K), ("bit", CANDIDATES)])
def test_the_sql_function_reads_few_rows_from_the_index_when_the_plan_ranks_as_the_full_vectors(
    db, vectors, plan, rows
):
    col = _made(db, plan, vectors)
    q = _query(vectors, 5)
    index = f"{col.layout.table_name}_hnsw"
    with db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        got = conn.execute(
            "SELECT key FROM semsearch.search(%s::text, %s::real[]::vector, %s::int, oversample => %s::real)",
            [col.name, q.tolist(), K, OVERSAMPLE],
        ).fetchall()
        read = conn.execute(
            "SELECT pg_catalog.pg_stat_get_xact_tuples_returned(%s::regclass)", [f"semsearch.{index}"]
        ).fetchone()[0]
    assert read == rows
    assert [r[0] for r in got] == col.search(vector=q, k=K, oversample=OVERSAMPLE).keys


@pytest.mark.parametrize("plan", ["none", "halfvec"])
def test_k_rows_find_what_the_candidates_found(db, vectors, plan):
    """The rows past k never reach the answer: at ef_search 400 both equal exact search's."""
    col = _made(db, plan, vectors)
    for i in range(0, 40, 4):
        q = _query(vectors, i)
        exact = col.search(vector=q, k=K, exact=True).keys
        assert col.search(vector=q, k=K, oversample=2.0, ef_search=400).keys == exact
        assert col.search(vector=q, k=K, oversample=80.0).keys == exact
