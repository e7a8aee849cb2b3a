"""$and, $or and $not: real searches agree with a Python reading of the same filter, row by row."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from semsearch.errors import InvalidInputError
from semsearch.filters import compile_filter
from tests.plans import search_plan

N = 240
MISSING = object()


def _meta(i: int) -> dict:
    """Metadata with every awkward case: missing fields, nulls, mismatched types, lists, nesting."""
    meta: dict = {}
    if i % 9:
        meta["n"] = None if i % 9 == 1 else ("x" if i % 9 == 2 else i % 60)
    if i % 5:
        meta["lang"] = None if i % 5 == 1 else ["es", "en", "fr"][i % 3]
    meta["tags"] = [t for t, step in (("a", 2), ("b", 3), ("c", 7)) if i % step == 0]
    if i % 4 == 0:
        meta["flag"] = i % 8 == 0
    if i % 6 < 3:
        meta["o"] = {"p": i % 3} if i % 6 else {"p": None}
    return meta


ROWS = {str(i): _meta(i) for i in range(N)}


@pytest.fixture(scope="module")
def vectors():
    x = np.random.default_rng(3).normal(size=(N, 8))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def col(module_db, vectors):
    """240 rows, built once: the tests using it only search."""
    c = module_db.create_collection("lf", dims=8, model="label", compression="halfvec")
    c.add(keys=list(ROWS), contents=[f"row {k}" for k in ROWS], embeddings=vectors, metadata=list(ROWS.values()))
    return c


# ---- the Python reading: jsonpath's three values (True, False, None for unknown) --------------


def _get(meta, field):
    value = meta
    for part in field.split("."):
        if isinstance(value, list):  # lax mode looks into lists for members
            found = [v[part] for v in value if isinstance(v, dict) and part in v]
            value = found[0] if len(found) == 1 else MISSING
        else:
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
    return value


def _kind(v):
    return {bool: "boolean", str: "string", int: "number", float: "number", type(None): "null"}.get(type(v), "other")


def _cmp(stored, op, v):
    if stored is MISSING:
        return False
    if isinstance(stored, list):
        got = [_cmp(s, op, v) for s in stored]
        return True if True in got else (None if None in got else False)
    if stored is None or v is None:
        return {"==": stored is v, "!=": stored is not v}.get(op)  # null orders with nothing
    if _kind(stored) != _kind(v):
        return None
    return {"==": stored == v, "!=": stored != v, "<": stored < v, "<=": stored <= v, ">": stored > v,
            ">=": stored >= v}[op]  # fmt: skip


def _is_null(stored):
    return stored is MISSING or stored is None


def _contains(stored, value):
    """jsonb @> with the filters' null reading."""
    if value is None:
        return _is_null(stored)
    if isinstance(value, dict):
        if (not value or any(v is not None for v in value.values())) and not isinstance(stored, dict):
            return False
        return all(_contains(_get(stored, k) if isinstance(stored, dict) else MISSING, v) for k, v in value.items())
    if isinstance(value, list):
        return isinstance(stored, list) and all(any(_contains(s, v) for s in stored) for v in value)
    return _kind(stored) == _kind(value) and stored == value


def _and(vals):
    vals = list(vals)
    return False if False in vals else (None if None in vals else True)


def _or(vals):
    vals = list(vals)
    return True if True in vals else (None if None in vals else False)


def _not(v):
    return None if v is None else not v


OPS = {"$eq": "==", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


def evaluate(meta, where):
    out = []
    for field, cond in where.items():
        if field == "$and":
            out.append(_and(evaluate(meta, m) for m in cond))
        elif field == "$or":
            out.append(_or(evaluate(meta, m) for m in cond))
        elif field == "$not":
            out.append(evaluate(meta, cond) is not True)
        elif isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            stored = _get(meta, field)
            for op, v in cond.items():
                if op in OPS and v is None:
                    out.append(_is_null(stored) if op == "$eq" else not _is_null(stored))
                elif op in OPS:
                    out.append(_cmp(stored, OPS[op], v))
                elif op in ("$in", "$nin"):
                    alts = [_or(_cmp(stored, "==", x) for x in v if x is not None)]
                    if None in v:
                        alts.append(_is_null(stored))
                    got = _or(alts)
                    out.append(got if op == "$in" else _not(got))
                elif op == "$exists":
                    out.append((stored is not MISSING) == v)
                elif op == "$contains":
                    items = stored if isinstance(stored, list) else [stored]
                    out.append(stored is not MISSING and any(_cmp(s, "==", v) is True for s in items))
                elif op == "$not":
                    out.append(evaluate(meta, {field: v}) is not True)
        else:
            out.append(_contains(_get(meta, field) if "." in field else meta.get(field, MISSING), cond))
    return _and(out)


def _want(where):
    return {k for k, meta in ROWS.items() if evaluate(meta, where) is True}


LEAVES = [
    {"lang": "es"},
    {"lang": None},
    {"lang": {"$ne": None}},
    {"lang": {"$in": ["en", None]}},
    {"lang": {"$nin": ["fr"]}},
    {"n": {"$lt": 20}},
    {"n": {"$gte": 40}},
    {"n": {"$ne": 7}},
    {"n": {"$eq": None}},
    {"n": {"$exists": False}},
    {"n": {"$not": {"$lt": 30}}},
    {"tags": ["a"]},
    {"tags": ["a", "c"]},
    {"tags": {"$contains": "b"}},
    {"tags": []},
    {"flag": True},
    {"flag": {"$exists": True}},
    {"o": {"p": 1}},
    {"o": {"p": None}},
    {"o": {}},
    {"o.p": {"$in": [0, 2]}},
    {"o.p": None},
]

FILTERS = [
    {"$or": [{"lang": "es"}, {"n": {"$lt": 10}}]},
    {"$and": [{"lang": {"$ne": None}}, {"$not": {"n": {"$gte": 50}}}]},
    {"$not": {"lang": "es"}},
    {"$not": {"n": {"$lt": 50}}},  # a string or null n is not < 50, so its $not matches
    {"$not": {"n": {"$nin": [1, 2]}}},
    {"$or": [{"tags": ["a"]}, {"o": {"p": 1}}]},
    {"$not": {"$or": [{"lang": None}, {"flag": True}]}},
    {"lang": "en", "$or": [{"tags": {"$contains": "b"}}, {"o.p": {"$in": [1, 2, None]}}]},
    {"$not": {"o": {"p": None}}},
    {"$or": [{"n": {"$nin": [1, 2, 3]}}, {"$not": {"$and": [{"flag": False}, {"lang": {"$exists": True}}]}}]},
    {"$and": [{"$or": [{"tags": ["b"]}, {"tags": ["c"]}]}, {"$or": [{"lang": "fr"}, {"$not": {"tags": ["a"]}}]}]},
]


def _random_filter(rng: random.Random, depth: int = 0) -> dict:
    if depth >= 3 or rng.random() < 0.3:
        return dict(rng.choice(LEAVES))
    op = rng.choice(["$and", "$or", "$not"])
    if op == "$not":
        return {"$not": _random_filter(rng, depth + 1)}
    return {op: [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}


RANDOM = [_random_filter(random.Random(seed)) for seed in range(40)]


def test_the_python_reading_is_not_trivial():
    sizes = [len(_want(w)) for w in FILTERS + RANDOM]
    assert sum(0 < s < N for s in sizes) >= 40 and len(set(sizes)) >= 25


@pytest.mark.parametrize("where", FILTERS + RANDOM, ids=[json.dumps(w) for w in FILTERS + RANDOM])
def test_logical_filters_match_the_python_reading(col, vectors, where):
    want = _want(where)
    for exact in (True, False):
        got = col.search(vector=vectors[0], k=N, where=where, exact=exact)
        assert set(got.keys) == want, (exact, sorted(set(got.keys) ^ want)[:10])


@pytest.mark.parametrize("leaf", LEAVES, ids=[json.dumps(w) for w in LEAVES])
def test_a_leaf_means_the_same_at_the_top_and_under_and_or_not(col, vectors, leaf):
    top = set(col.search(vector=vectors[0], k=N, where=leaf, exact=True).keys)
    assert top == _want(leaf)
    for wrapped in ({"$and": [leaf]}, {"$or": [leaf, leaf]}, {"$not": {"$not": leaf}}):
        assert set(col.search(vector=vectors[0], k=N, where=wrapped, exact=True).keys) == top, wrapped
    assert set(col.search(vector=vectors[0], k=N, where={"$not": leaf}, exact=True).keys) == set(ROWS) - top


def test_the_sql_functions_take_the_compiled_filter_as_path_and_vars(col, vectors):
    where = {"$or": [{"lang": "es"}, {"n": {"$lt": 10}}], "tags": ["a"]}
    f = compile_filter(where)
    with col.db.connection() as conn:
        rows = conn.execute(
            "SELECT key FROM semsearch.search('lf', %s::vector, %s, filter => %s, filter_path => %s, "
            "filter_vars => %s)",
            [vectors[0].tolist(), N, Jsonb(f.contains), f.path, Jsonb(f.vars)],
        ).fetchall()
    assert {r[0] for r in rows} == _want(where)


def test_the_sql_filter_argument_still_refuses_operators(col, vectors):
    with col.db.connection() as conn, pytest.raises(psycopg.Error, match=r"got a \$-key: use filter_path"):
        conn.execute(
            "SELECT key FROM semsearch.search('lf', %s::vector, 5, filter => %s)",
            [vectors[0].tolist(), Jsonb({"$or": [{"lang": "es"}]})],
        ).fetchall()


def test_a_logical_filter_keeps_the_hnsw_index(db):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3000, 16))
    c = db.create_collection("lfi", dims=16, model="label", compression="halfvec", autotune=False)
    c.add_many(
        {"key": i, "content": f"r{i}", "embedding": x[i], "metadata": {"b": i % 100, "lang": ["es", "en"][i % 2]}}
        for i in range(3000)
    )
    wide = {"$or": [{"b": {"$lt": 40}}, {"$not": {"lang": "es"}}]}
    assert "Index Scan using col_lfi_hnsw" in search_plan(c, x[0], seqscan=False, where=wide)
    assert "col_lfi_hnsw" not in search_plan(c, x[0], where=wide, exact=True)
    # the selectivity decision (the SQL function's estimate of the matching rows) sees the jsonpath
    with db.connection() as conn:
        f = compile_filter(wide)
        spec = Jsonb({"path": f.path, "vars": f.vars})
        estimate = conn.execute("SELECT semsearch.col_lfi_matching(%s)", [spec]).fetchone()[0]
    assert 0 < estimate < 3000
    got = c.search(vector=x[0], k=10, where=wide)
    assert len(got) == 10 and all(h.metadata["b"] < 40 or h.metadata["lang"] != "es" for h in got)
    # which path the SQL function took: HNSW scans counted in the searching transaction
    narrow = {"b": 7, "$or": [{"lang": "es"}, {"$not": {"lang": "es"}}]}  # 30 rows: an exact scan of them
    assert _hnsw_scans(db, x[0], wide) > 0
    assert _hnsw_scans(db, x[0], wide, exact=True) == 0
    assert _hnsw_scans(db, x[0], narrow) == 0
    assert sorted(int(k) for k in c.search(vector=x[0], k=50, where=narrow).keys) == list(range(7, 3000, 100))


def _hnsw_scans(db, vector, where, exact=False):
    f = compile_filter(where)
    scans = "SELECT pg_stat_get_xact_numscans('semsearch.col_lfi_hnsw'::regclass)"
    # the backend's counts not yet reported: no report happens inside a transaction
    with db.connection() as conn, conn.transaction():
        before = conn.execute(scans).fetchone()[0]
        conn.execute(
            "SELECT * FROM semsearch.search('lfi', %s::vector, 10, exact => %s, filter => %s, filter_path => %s, "
            "filter_vars => %s)",
            [str(vector.tolist()), exact, Jsonb(f.contains) if f.contains else None, f.path, Jsonb(f.vars)],
        ).fetchall()
        return conn.execute(scans).fetchone()[0] - before


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"$or": []}, "non-empty list of non-empty objects (filters) for $or"),
        ({"$or": {"a": 1}}, "non-empty list of non-empty objects (filters) for $or"),
        ({"$and": [{}]}, "non-empty list of non-empty objects (filters) for $and"),
        ({"$and": ["lang"]}, "non-empty list of non-empty objects (filters) for $and"),
        ({"$not": []}, "non-empty object (a filter) for $not"),
        ({"$not": {}}, "non-empty object (a filter) for $not"),
        ({"n": {"$not": 3}}, "object of operators for n $not"),
        ({"n": {"$not": {"a": 1}}}, "object of operators for n $not"),
        ({"$or": [{"o": {"p q": 1}}]}, "field names of letters, digits and _ in o under $and/$or/$not"),
        ({"$or": [{"n": {"$lt": None}}]}, "string, number or bool for n $lt"),
        ({"$nor": [{"n": 1}]}, "metadata field name"),
        ({"$or": [{"o": {"$or": [{"p": 1}]}}]}, "operator in"),
        ({"$or": [{"tags": [{"x": {"$lt": 1}}]}]}, "operators right under a field"),
    ],
)
def test_malformed_logical_filters_are_refused_before_the_database(where, message):
    with pytest.raises(InvalidInputError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        compile_filter(where)


def test_nesting_is_bounded():
    where: dict = {"n": 1}
    for _ in range(20):
        where = {"$not": where}
    with pytest.raises(InvalidInputError, match="nested at most 16 levels"):
        compile_filter(where)


def test_the_readme_sql_filter_example_runs(db):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (statement,) = re.findall(r"SELECT key, score FROM semsearch\.search\('movies'.*?;", readme, re.S)
    movies = db.create_collection("movies", dims=4, model="label", compression="none")
    meta = [{"lang": "es", "year": 1995}, {"lang": "en", "year": 1941}, {"lang": "en", "year": 1999}, {}]
    movies.add(keys=["a", "b", "c", "d"], contents=list("abcd"), embeddings=np.eye(4), metadata=meta)
    with db.connection() as conn:
        rows = conn.execute(statement.replace(":q", "%s::vector"), ["[1, 0, 0, 0]"]).fetchall()
    assert {r[0] for r in rows} == {"a", "b"}
