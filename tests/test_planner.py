"""One planner: Python, the SQL functions and explain make the same decision (semsearch/planner.py)."""

from __future__ import annotations

import itertools
import json
from dataclasses import astuple

import numpy as np
import psycopg
import pytest
from pgvector import Vector
from psycopg.types.json import Jsonb

from semsearch import planner
from semsearch.errors import InvalidInputError


def test_the_sql_planner_functions_are_pythons_rules(db):
    """The SQL twins (made by db upgrade from planner.py) agree with the Python rules on a grid.

    Before: Python's unfiltered searches fetched 17 candidates for k=10 at oversample 1.7, SQL 18.
    """
    ks, oversamples = (1, 7, 10, 100, 3333, 10000), (1.0, 1.3, 1.7, 2.05, 3.3, 16.1, 64.4, 1000.0)
    efs = (None, 1, 40, 120, 1000)
    with db.connection() as conn:
        for k, o in itertools.product(ks, oversamples):
            got = conn.execute("SELECT semsearch.plan_candidates(%s, %s::real)", [k, o]).fetchone()[0]
            assert got == planner.candidates(k, o), (k, o)
        for requested, stored, n in itertools.product(efs, efs, (1, 15, 40, 999, 10000)):
            got = conn.execute("SELECT semsearch.plan_ef_search(%s, %s, %s)", [requested, stored, n]).fetchone()[0]
            assert got == planner.ef_search(requested, stored, n), (requested, stored, n)
        for matching, total, n in itertools.product((1, 5, 300, 5000, 90000), (-1, 0, 1000, 100000), (10, 100, 4000)):
            got = conn.execute("SELECT semsearch.plan_exact(%s, %s, %s)", [matching, total, n]).fetchone()[0]
            assert got == planner.exact(matching, total, n), (matching, total, n)
        for filtered in (True, False):
            got = conn.execute("SELECT semsearch.plan_iterative_scan(%s)", [filtered]).fetchone()[0]
            assert got == planner.iterative_scan(filtered)
        for k, n, per_k, filtered in itertools.product((1, 10, 10000), (1, 10, 85, 10000), (None, 1, 2), (True, False)):
            got = conn.execute("SELECT semsearch.plan_coarse_rows(%s, %s, %s::int, %s)", [k, n, per_k, filtered])
            assert got.fetchone()[0] == planner.coarse_rows(k, n, per_k=per_k, filtered=filtered)


def test_the_sql_hybrid_plan_is_pythons_rule(db):
    """plan_hybrid (list size, fusion, weights as SQL takes them) agrees with planner.hybrid on a grid.

    Before: hybrid_search() decided these itself, and tune_hybrid/explain kept their own defaults.
    """
    tuned = (None, {"fusion": "rrf"}, {"fusion": "blend", "vector_weight": 0.35, "text_weight": 0.65})
    weights = (None, 0.0, 0.3, 1 / 3, 0.55, 7.77, 1000.0)
    grid = itertools.product((1, 9, 10, 11, 2501, 10000), (None, 1, 100, 10000), (None, "rrf", "blend"), weights, tuned)
    with db.connection() as conn:
        for k, candidates, fusion, w, t in grid:
            got = conn.execute(
                "SELECT * FROM semsearch.plan_hybrid(%s::int, %s::int, %s::text, %s::real, %s::real, %s::int, "
                "%s::jsonb)",
                [k, candidates, fusion, w, None if w is None else 1000 - w, 60, Jsonb(t) if t else None],
            ).fetchone()
            want = planner.hybrid(
                k, candidates=candidates, fusion=fusion, vector_weight=w,
                text_weight=None if w is None else 1000 - w, rrf_k=60, tuned=t,
            )  # fmt: skip
            assert got == astuple(want), (k, candidates, fusion, w, t)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected fusion 'rrf' or 'blend', got 'max'"):
            conn.execute("SELECT * FROM semsearch.plan_hybrid(10, NULL, 'max', NULL, NULL, 60, NULL)")
    with pytest.raises(InvalidInputError, match="expected fusion 'rrf' or 'blend', got 'max'"):
        planner.hybrid(10, fusion="max")


def test_explain_shows_the_scan_the_sql_search_chooses_and_both_return_the_same_rows(db):
    """Before: explain showed the index scan for every filtered search; search() scanned exactly when selective."""
    rng = np.random.default_rng(5)
    n = 3000
    vectors = rng.normal(size=(n, 32))
    col = db.create_collection("pl", dims=32, model="label", compression="halfvec")
    meta = [{"rare": i < 3, "half": i % 2 == 0} for i in range(n)]
    col.add([f"r{i}" for i in range(n)], [f"row {i}" for i in range(n)], embeddings=vectors, metadata=meta)
    with db.connection() as conn:
        conn.execute("ANALYZE semsearch.col_pl")
    q = vectors[7] + 0.01
    for where, exact in (({"rare": True}, True), ({"half": True}, False)):
        shown = col.explain(vector=q, k=3, where=where)
        uses_index = "col_pl_hnsw" in shown.plan
        assert uses_index is not exact, (where, shown.plan)
        python = col.search(vector=q, k=3, where=where).keys
        with db.connection() as conn:
            rows = conn.execute(
                "SELECT key FROM semsearch.search('pl', %s, 3, filter => %s::jsonb)", [Vector(q), json.dumps(where)]
            ).fetchall()
        assert [r[0] for r in rows] == python
