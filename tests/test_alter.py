"""Changing a collection's plan or HNSW parameters in place, without blocking searches."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import errors
from tests.plans import search_plan


def _index_def(db) -> str:
    with db.connection() as conn:
        return conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'col_m_hnsw'").fetchone()[0]


@pytest.mark.parametrize("concurrently", [True, False])
def test_change_plan_swaps_index_and_templates(db, movies, concurrently):
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, compression="bit", model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    before = col.search(vector=full[0], k=5, exact=True).keys
    assert "binary_quantize" in _index_def(db)
    col = db.alter_collection("m", compression="mrl:256", hnsw_m=12, hnsw_ef_construction=48, concurrently=concurrently)
    assert col.info.compression == "mrl:256" and col.info.oversample == 8.0
    definition = _index_def(db)
    assert "l2_normalize(subvector(embedding, 1, 256))" in definition and "m='12'" in definition
    assert col.search(vector=full[0], k=5).keys == before
    plan = search_plan(col, full[0], seqscan=False, k=5)
    assert "Index Scan using col_m_hnsw" in plan


def test_oversample_only_change_rebuilds_nothing(db):
    col = db.create_collection("m", dims=8, model="label", compression="bit")
    col.add(keys=[1, 2], contents=["a", "b"], embeddings=np.eye(8)[:2])
    with db.connection() as conn:
        oid = conn.execute("SELECT 'semsearch.col_m_hnsw'::regclass::oid").fetchone()[0]
    col = db.alter_collection("m", oversample=3)
    with db.connection() as conn:
        assert conn.execute("SELECT 'semsearch.col_m_hnsw'::regclass::oid").fetchone()[0] == oid
    assert col.info.oversample == 3


def test_bad_alter_changes_nothing(db):
    db.create_collection("m", dims=1536, model="label", compression="bit")
    with pytest.raises(errors.CompressionPlanError):
        db.alter_collection("m", compression="mrl:4000")
    with pytest.raises(errors.ConfigurationError):
        db.alter_collection("m", hnsw_m=1)
    assert db.collection("m").info.compression == "bit"
    with pytest.raises(errors.CollectionNotFoundError):
        db.alter_collection("nope", compression="bit")


@pytest.mark.parametrize("fail", [False, True])
def test_a_concurrent_build_leaves_the_session_settings_as_it_found_them(db, fail):
    """The steps every frontend runs (ddl.index_build) put the session's build settings back, failed or not."""
    import psycopg
    from psycopg import sql

    from semsearch import ddl

    col = db.create_collection("m", dims=8, model="label", compression="bit")
    col.add(keys=[1, 2], contents=["a", "b"], embeddings=np.eye(8)[:2])
    steps = ddl.index_build(col.info, concurrently=True)
    build = [sql.SQL("SELECT 1 / 0")] if fail else steps.build
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '77MB'")
        for stmt in steps.prepare:
            conn.execute(stmt)
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == "512MB"
        try:
            for stmt in build:
                conn.execute(stmt)
        except psycopg.errors.DivisionByZero:
            assert fail
        finally:
            for stmt in steps.restore:
                conn.execute(stmt)
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == "77MB"
        assert conn.execute("SHOW min_parallel_table_scan_size").fetchone()[0] == "8MB"
