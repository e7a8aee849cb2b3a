"""EXPLAIN proves the coarse pass runs on the HNSW index for every compression plan."""

from __future__ import annotations

import numpy as np
import pytest
from pgvector import Vector
from psycopg import sql

PLANS = [
    ("bit", 1536, "vector"),
    ("mrl:256", 1536, "vector"),
    ("mrl-bit:512", 1536, "vector"),
    ("halfvec", 1536, "vector"),
    ("none", 1536, "vector"),
    ("none", 3072, "halfvec"),
    ("bit", 3072, "vector"),
]


def _plan_text(db, col, vec, *, seqscan: bool = True) -> str:
    with db.connection() as conn, conn.transaction():
        if not seqscan:
            # on a small table a seq scan is cheaper; disabling it shows whether the index
            # *can* serve the query, which it cannot if the expressions differ
            conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute(sql.SQL("ANALYZE {}").format(col.layout.table))
        ann = conn.execute("SELECT ann_sql FROM semsearch.collections WHERE name = %s", [col.name]).fetchone()[0]
        conn.execute(sql.SQL("PREPARE ann AS {}").format(sql.SQL(ann)))
        rows = conn.execute(
            sql.SQL("EXPLAIN EXECUTE ann({}::vector, 10, 100, NULL)").format(sql.Literal(Vector(vec).to_text()))
        ).fetchall()
        conn.execute("DEALLOCATE ann")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(("compression", "dims", "storage"), PLANS)
def test_coarse_pass_uses_the_hnsw_index(db, compression, dims, storage):
    rng = np.random.default_rng(7)
    col = db.create_collection("c", dims=dims, model="label", compression=compression, storage=storage)
    vecs = rng.normal(size=(300, dims))
    col.add(keys=list(range(300)), contents=[f"row {i}" for i in range(300)], embeddings=vecs)
    plan = _plan_text(db, col, vecs[0], seqscan=False)
    assert "Index Scan using col_c_hnsw" in plan, plan[:2000]
    # and the search through the SQL function returns the row itself first
    assert col.search(vector=vecs[5], k=3).keys[0] == "5"


def test_exact_search_never_uses_the_index(db):
    rng = np.random.default_rng(8)
    col = db.create_collection("c", dims=64, model="label", compression="none")
    vecs = rng.normal(size=(300, 64))
    col.add(keys=list(range(300)), contents=[f"row {i}" for i in range(300)], embeddings=vecs)
    with db.connection() as conn, conn.transaction():
        exact = conn.execute("SELECT exact_sql FROM semsearch.collections WHERE name = 'c'").fetchone()[0]
        conn.execute(sql.SQL("PREPARE ex AS {}").format(sql.SQL(exact)))
        rows = conn.execute(
            sql.SQL("EXPLAIN EXECUTE ex({}::vector, 10, NULL)").format(sql.Literal(Vector(vecs[0]).to_text()))
        ).fetchall()
    text = "\n".join(r[0] for r in rows)
    assert "hnsw" not in text and "Seq Scan" in text, text[:2000]


def test_planner_picks_the_index_on_its_own_at_realistic_size(db):
    rng = np.random.default_rng(9)
    col = db.create_collection("c", dims=1536, model="label", compression="bit")
    vecs = rng.normal(size=(5000, 1536)).astype(np.float32)
    col.add(keys=list(range(5000)), contents=[f"row {i}" for i in range(5000)], embeddings=vecs)
    plan = _plan_text(db, col, vecs[0])
    assert "Index Scan using col_c_hnsw" in plan, plan[:2000]
