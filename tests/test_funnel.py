"""Multi-stage funnels: bits -> stored mrl copy -> full vectors."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import sql

from semsearch import errors
from tests.plans import search_plan


def test_funnel_matches_exact_on_real_3_small_vectors(db, movies):
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, compression="bit->mrl:256", model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    with db.connection() as conn:
        # the middle copy is derived by the database from the full vector
        got = conn.execute(sql.SQL("SELECT mrl_256::vector FROM {} LIMIT 1").format(col.layout.table)).fetchone()[0]
    assert np.linalg.norm(got.to_numpy()) == pytest.approx(1.0, abs=1e-3)
    for vec in full:
        assert col.search(vector=vec, k=5).keys == col.search(vector=vec, k=5, exact=True).keys


def test_funnel_sql_uses_the_index_and_the_middle_column(db, movies):
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, compression="bit->mrl:256", model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    plan = search_plan(col, full[0], seqscan=False, k=5)
    assert "Index Scan using col_m_hnsw" in plan and "mrl_256 <#>" in plan


def test_funnel_stages_cannot_be_altered_in_place(db):
    db.create_collection("m", dims=1536, compression="bit->mrl:256", model="label")
    with pytest.raises(errors.ConfigurationError, match="migrate-model"):
        db.alter_collection("m", compression="bit")
    assert db.alter_collection("m", compression="mrl-bit:768->mrl:256").info.compression == "mrl-bit:768->mrl:256"
