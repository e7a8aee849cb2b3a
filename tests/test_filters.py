"""Filtered search: k rows whenever k match, at any selectivity, with recall against exact."""

from __future__ import annotations

import numpy as np
import pytest

N = 6000
DIMS = 96


@pytest.fixture(scope="module")
def clustered():
    """Unit vectors around 60 centres (closer to real embeddings than isotropic noise)."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(60, DIMS))
    x = centres[rng.integers(0, 60, N)] + 0.6 * rng.normal(size=(N, DIMS))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def col(module_db, clustered):
    """6,000 rows, built once: every test here only searches."""
    db = module_db
    c = db.create_collection("f", dims=DIMS, model="label", compression="halfvec")
    meta = [{"bucket": i % 1000, "lang": ["es", "en"][i % 2], "tags": ["kids"] if i % 7 == 0 else []} for i in range(N)]
    tenants = ["acme" if i % 500 == 0 else "other" for i in range(N)]
    c.add_many(
        (
            {"key": i, "content": f"row {i}", "embedding": clustered[i], "metadata": meta[i], "tenant": tenants[i]}
            for i in range(N)
        ),
        batch_size=2000,
    )
    with db.connection() as conn:
        conn.execute("ANALYZE semsearch.col_f")
    return c


@pytest.mark.parametrize(
    ("where", "matching"),
    [
        ({"bucket": {"$lt": 500}}, 3000),  # 50%
        ({"bucket": {"$lt": 100}}, 600),  # 10%
        ({"bucket": {"$lt": 10}}, 60),  # 1%
        ({"bucket": {"$in": [3, 4, 5, 6, 7, 8]}}, 36),  # 0.6%
        ({"bucket": 7}, 6),  # 0.1%: fewer than k match
    ],
)
def test_k_rows_whenever_k_match_and_recall_against_exact(col, clustered, where, matching):
    k = 10
    recalls = []
    for qi in range(0, 400, 20):
        got = col.search(vector=clustered[qi], k=k, where=where)
        want = col.search(vector=clustered[qi], k=k, where=where, exact=True)
        assert len(want) == min(k, matching)
        assert len(got) == min(k, matching), (where, qi)
        assert got.complete == (matching >= k)
        for hit in got:
            assert _matches(hit.metadata, where)
        recalls.append(len(set(got.keys) & set(want.keys)) / len(want))
    assert np.mean(recalls) >= 0.95, (where, np.mean(recalls))


def _matches(meta, where):
    ((field, cond),) = where.items()
    value = meta[field]
    if not isinstance(cond, dict):
        return value == cond
    if "$lt" in cond:
        return value < cond["$lt"]
    return value in cond["$in"]


def test_tenant_and_containment_filters(col, clustered):
    got = col.search(vector=clustered[0], k=20, tenant="acme")
    assert sorted(int(k) for k in got.keys) == list(range(0, N, 500))[:20][: len(got)]
    assert len(got) == N // 500 and not got.complete
    kids = col.search(vector=clustered[3], k=10, where={"tags": ["kids"], "lang": "en"})
    assert len(kids) == 10 and all(int(k) % 14 == 7 for k in kids.keys)
    kids2 = col.search(vector=clustered[3], k=10, where={"tags": {"$contains": "kids"}, "lang": {"$eq": "en"}})
    assert kids2.keys == kids.keys


def test_wrong_types_and_unknown_fields_give_well_defined_empty_results(col, clustered):
    assert len(col.search(vector=clustered[0], k=5, where={"bucket": {"$lt": "abc"}})) == 0
    assert len(col.search(vector=clustered[0], k=5, where={"no_such_field": 1})) == 0
    assert len(col.search(vector=clustered[0], k=5, where={"no_such_field": {"$exists": False}})) == 5


def test_injection_in_filter_values_is_just_data(col, clustered):
    evil = 'es" || true || "x\'); DROP TABLE semsearch.col_f; --'
    assert len(col.search(vector=clustered[0], k=5, where={"lang": {"$eq": evil}})) == 0
    assert len(col.search(vector=clustered[0], k=5, where={"lang": evil})) == 0
    assert col.count() == N


@pytest.fixture(scope="module")
def nulls(module_db):
    c = module_db.create_collection("n", dims=4, model="label", compression="none")
    rows = {
        "missing": {},
        "null": {"lang": None},
        "es": {"lang": "es"},
        "en": {"lang": "en"},
        "list_null": {"lang": [None]},
        "empty_list": {"lang": []},
        "nested_null": {"a": {"b": None}},
        "nested_set": {"a": {"b": 2}},
    }
    vecs = np.random.default_rng(5).normal(size=(len(rows), 4))
    c.add(keys=list(rows), contents=[f"row {k}" for k in rows], embeddings=vecs, metadata=list(rows.values()))
    return c


@pytest.mark.parametrize(
    ("where", "want"),
    [
        ({"lang": None}, {"missing", "null", "nested_null", "nested_set"}),
        ({"lang": {"$eq": None}}, {"missing", "null", "nested_null", "nested_set"}),
        ({"lang": {"$ne": None}}, {"es", "en", "list_null", "empty_list"}),
        ({"lang": {"$in": ["es", None]}}, {"es", "missing", "null", "nested_null", "nested_set"}),
        ({"lang": {"$nin": ["es", None]}}, {"en", "list_null", "empty_list"}),
        # like every $contains, a field that is not a list counts as a list of itself
        ({"lang": {"$contains": None}}, {"list_null", "null"}),
        ({"a.b": None}, {"missing", "null", "es", "en", "list_null", "empty_list", "nested_null"}),
        ({"a": {"b": None}}, {"missing", "null", "es", "en", "list_null", "empty_list", "nested_null"}),
        ({"a.b": {"$ne": None}}, {"nested_set"}),
        ({"lang": None, "a.b": {"$ne": None}}, {"nested_set"}),
    ],
)
@pytest.mark.parametrize("exact", [True, False])
def test_null_filters_in_real_searches(nulls, where, want, exact):
    got = nulls.search(vector=[1, 0, 0, 0], k=20, where=where, exact=exact)
    assert set(got.keys) == want
