"""One planner, proved: for each plan × mode × BM25/fusion setting, explain shows what the search runs.

For every case, (a) what the search executed is captured on its own connection (a pool of one):
a Python search's statement from ``pg_prepared_statements`` (the one whose plan count went up)
and its settings from the session; a SQL function's decision from the DEBUG message
``semsearch.search()`` / ``text_search()`` send (``client_min_messages = debug1``), and its
statement from the per-collection function's body in ``pg_proc`` with those values. ``explain``
must show exactly that statement and those settings. (b) Python's search, the SQL function
called directly and explain's own statement executed all return the same keys in the same order,
scores equal to 1e-6.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector import Vector
from psycopg import sql
from psycopg.types.json import Jsonb

import semsearch
from semsearch import catalog, explaining, planner, search_request

PLANS = ("none", "halfvec", "bit", "mrl-bit:32", "bit->mrl:32")
#: default BM25 and fusion, or custom k1/b and a tuned hybrid setting in the catalog
SETTINGS = ("default", "custom")
DIMS, N, K = 64, 300, 5
TUNED = {"fusion": "rrf", "vector_weight": 0.6, "text_weight": 0.4}
TEXT = "boundary layer transition on a flat plate"

CASES: dict[str, dict[str, Any]] = {
    "vector": {},
    "exact": {"exact": True},
    "filtered": {"where": {"half": True}},
    "filtered-selective": {"where": {"rare": True}},
    "tenant": {"tenant": "a"},
    "text": {"mode": "text"},
    "text-filtered": {"mode": "text", "where": {"half": True}, "tenant": "b"},
    "hybrid": {"mode": "hybrid"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-weights": {"mode": "hybrid", "fusion": "blend", "vector_weight": 0.55, "text_weight": 0.45},
    "hybrid-filtered": {"mode": "hybrid", "where": {"half": True}, "tenant": "b"},
}
_DEBUG = "semsearch plan "
#: what search() runs for these cases, whatever the plan
CHOSEN = {
    "filtered": ("_ann", {"hnsw.ef_search", "hnsw.iterative_scan"}),
    "filtered-selective": ("_exact", set()),
    "hybrid": ("_ann", {"hnsw.ef_search"}),
}


@pytest.fixture(scope="module")
def data(cranfield) -> tuple[list[str], np.ndarray]:
    docs, _ = cranfield
    texts = [docs[k] for k in sorted(docs, key=int)[:N]]
    vectors = np.random.default_rng(18).normal(size=(N, DIMS)).astype(np.float32)
    return texts, vectors


@pytest.fixture(scope="module")
def traced(module_db: semsearch.Database) -> Iterator[semsearch.Database]:
    """The same database through a pool of one connection: a search runs where the test looks."""
    db = semsearch.connect(module_db.url, max_connections=1)
    yield db
    db.close()


@pytest.fixture(scope="module")
def collections(module_db, data) -> dict[tuple[str, str], str]:
    texts, vectors = data
    made = {}
    for i, (plan, setting) in enumerate(itertools.product(PLANS, SETTINGS)):
        name = f"p{i}"
        bm25 = {"bm25_k1": 2.0, "bm25_b": 0.3} if setting == "custom" else {}
        col = module_db.create_collection(name, dims=DIMS, model="label", compression=plan, **bm25)
        meta = [{"rare": j < 8, "half": j % 2 == 0} for j in range(N)]
        tenants = ["a" if j % 3 == 0 else "b" for j in range(N)]
        col.add([f"d{j}" for j in range(N)], texts, embeddings=vectors, metadata=meta, tenant=tenants)
        with module_db.connection() as conn:
            if setting == "custom":
                conn.execute(catalog.update_statement(name, hybrid=TUNED))
            conn.execute(sql.SQL("ANALYZE {}").format(col.layout.table))
        made[(plan, setting)] = name
    return made


def _query(vectors: np.ndarray) -> np.ndarray:
    q = vectors[7] + np.random.default_rng(7).normal(scale=0.3, size=DIMS)
    return (q / np.linalg.norm(q)).astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("plan", "setting"), list(itertools.product(PLANS, SETTINGS)))
def test_explain_shows_what_runs_and_python_sql_and_explain_agree(traced, collections, data, plan, setting, case):
    col = traced.collection(collections[(plan, setting)])
    args = {"k": K, **CASES[case]}
    q = _query(data[1])
    mode = args.get("mode", "vector")
    args |= {"query": TEXT} if mode == "text" else {"query": TEXT, "vector": q} if mode == "hybrid" else {"vector": q}
    shown = col.explain(**args)
    ran, found, messages = _executed(traced, col, args)
    with traced.connection() as conn:
        if mode == "vector" and "where" not in args and "tenant" not in args:
            # Python's own statement, prepared on this connection, and the session settings it made
            assert messages == []
            assert ran == [shown.sql.replace("%(q)b", "$1")]
            assert found == shown.settings
        else:
            assert ran == []
            assert shown.settings == _sql_side(conn, col, shown.sql, messages, mode, args)
        # the grid covers both of search()'s scans: the index (iterating when filtered) and exact by the filter
        # (the binary plans oversample more: their filtered searches scan exactly)
        if case in CHOSEN and plan in ("none", "halfvec"):
            function, settings = CHOSEN[case]
            assert messages[0]["function"].endswith(function) and set(shown.settings) == settings, messages
        sql_rows = _sql_search(conn, col, args, q)
        composed = _compose(conn, col, args)
    python = [(h.key, h.score) for h in col.search(**args).hits]
    assert [k for k, _ in python] == [k for k, _ in sql_rows] == [k for k, _ in composed]
    assert len(python) == K
    np.testing.assert_allclose([s for _, s in python], [s for _, s in sql_rows], atol=1e-6)
    np.testing.assert_allclose([s for _, s in python], [s for _, s in composed], atol=1e-6)


def _executed(db: semsearch.Database, col: Any, args: dict[str, Any]) -> tuple[list[str], dict[str, str], list[Any]]:
    """Run ``col.search(**args)`` on the pool's one session: statements it prepared and ran, settings, DEBUG plans."""
    messages: list[Any] = []

    def notice(diag: psycopg.errors.Diagnostic) -> None:
        if (diag.message_primary or "").startswith(_DEBUG):
            messages.append(json.loads(diag.message_primary[len(_DEBUG) :]))  # type: ignore[index]

    counts = "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
    with db.connection() as conn:
        conn.execute("SET hnsw.ef_search = 7")  # a value no search sets: whatever it sets shows
        conn.execute("SET hnsw.iterative_scan = off")
        before = dict(conn.execute(counts).fetchall())
        conn.execute("SET client_min_messages = debug1")
        conn.add_notice_handler(notice)
        session = conn
    try:
        col.search(**args)  # the pool's one connection: that one
    finally:
        with db.connection() as conn:
            assert conn is session
            conn.remove_notice_handler(notice)
            conn.execute("RESET client_min_messages")
            after = conn.execute(counts).fetchall()
            ef, scan = conn.execute(
                "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')"
            ).fetchone()
    bookkeeping = ("SELECT set_config(", "SELECT key, content, score, metadata FROM semsearch.")
    ran = [s for s, n in after if n != before.get(s) and not s.startswith(bookkeeping)]
    ran = [s for s in ran if "semsearch.collections" not in s]  # the catalog check (guards.CHECK)
    settings = {}
    if ef != "7":
        settings["hnsw.ef_search"] = ef
    if scan != "off":
        settings["hnsw.iterative_scan"] = scan
    return ran, settings, messages


def _body(conn: psycopg.Connection, function: str) -> str:
    return conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function]).fetchone()[0]


def _list_statement(conn: psycopg.Connection, shown: str, message: dict[str, Any]) -> str:
    """The statement the function ``message`` names ran, with its values, spelled as explain spells them."""
    body = _body(conn, message["function"])
    spec = message["spec"]
    if spec is None:
        literal = "NULL"
    else:
        # the spec as explain wrote it (jsonb orders keys its own way): the same object as the function got
        found = re.search(r"\('(\{[^']*\})'::jsonb\)::jsonb", shown)
        assert found is not None and json.loads(found.group(1)) == spec, shown
        literal = f"'{found.group(1)}'::jsonb"
    if message["function"].endswith("_text"):
        m = re.fullmatch(
            r"BEGIN IF \$3 IS NULL THEN RETURN QUERY (.*); ELSE RETURN QUERY (.*); END IF; END", body, re.S
        )
        assert m is not None, body
        stmt = m.group(2 if spec is not None else 1)
        values = {"1::text": "%(text)s", "2": str(message["k"]), "3": literal}
    else:
        m = re.fullmatch(r"BEGIN RETURN QUERY (.*); END", body, re.S)
        assert m is not None, body
        stmt = m.group(1)
        values = {"1": "%(q)b", "2": str(message["k"])}
        values |= {"3": str(message["candidates"]), "4": literal} if "candidates" in message else {"3": literal}
    return re.sub(r"\$(1::text|\d)", lambda v: values[v.group(1)], stmt)


def _sql_side(
    conn: psycopg.Connection, col: Any, shown: str, messages: list[Any], mode: str, args: dict[str, Any]
) -> dict[str, str]:
    """Check explain's statement against what the SQL functions ran; the settings they made."""
    if mode != "hybrid":
        assert len(messages) == 1, messages  # one statement: no fallback to an exact pass
        assert shown == _list_statement(conn, shown, messages[0])
        return messages[0]["settings"]
    vector, text = sorted(messages, key=lambda m: m["function"].endswith("_text"))
    assert len(messages) == 2 and text["function"].endswith("_text"), messages
    tuned = col.info.hybrid
    decided = conn.execute(
        "SELECT * FROM semsearch.plan_hybrid(%s::int, NULL, %s::text, %s::real, %s::real, %s::int, %s::jsonb)",
        [args["k"], args.get("fusion"), args.get("vector_weight"), args.get("text_weight"), planner.RRF_K,
         Jsonb(tuned) if tuned else None],
    ).fetchone()  # fmt: skip
    assert vector["k"] == text["k"] == decided[3]
    plan = sql.SQL(
        "SELECT {}::text AS fusion, {}::float8 AS vector_weight, {}::float8 AS text_weight, "
        "{}::integer AS list_size, {}::integer AS rrf_k"
    ).format(*map(sql.Literal, decided))
    # hybrid_search_rows() (what hybrid_search() runs) as it is stored, its plan and lists replaced by what
    # they decided and ran
    body = _body(conn, "hybrid_search_rows")
    body, n = re.subn(
        r"^WITH cfg AS MATERIALIZED \(.*?\),\nv AS",
        lambda _: f"WITH cfg AS MATERIALIZED ({plan.as_string(conn)}),\nv AS",
        body,
        flags=re.S,
    )
    assert n == 1
    for name, message in (("search_rows", vector), ("text_search_rows", text)):
        body, n = re.subn(
            rf"\(SELECT h\.\* FROM cfg, semsearch\.{name}\(.*?\) h\) h\)",
            lambda _, m=message: f"({_list_statement(conn, shown, m)}) h)",
            body,
            flags=re.S,
        )
        assert n == 1, name
    assert shown == re.sub(r"LIMIT k$", f"LIMIT {args['k']}", body)
    return vector["settings"]


def _sql_search(conn: psycopg.Connection, col: Any, args: dict[str, Any], q: np.ndarray) -> list[tuple[str, float]]:
    """The same search through the SQL API, called directly."""
    p = {
        "name": col.name, "q": Vector(q), "text": args.get("query"), "k": args["k"], "exact": args.get("exact", False),
        "filter": Jsonb(args["where"]) if "where" in args else None, "tenant": args.get("tenant"),
        "fusion": args.get("fusion"), "wv": args.get("vector_weight"), "wt": args.get("text_weight"),
    }  # fmt: skip
    filters = "filter => %(filter)s::jsonb, tenant => %(tenant)s::text"
    mode = args.get("mode", "vector")
    if mode == "vector":
        call = f"semsearch.search(%(name)s, %(q)s, %(k)s, exact => %(exact)s, {filters})"
    elif mode == "text":
        call = f"semsearch.text_search(%(name)s, %(text)s, %(k)s, {filters})"
    else:
        call = (
            "semsearch.hybrid_search(%(name)s, %(text)s, %(q)s, %(k)s, fusion => %(fusion)s::text, "
            f"vector_weight => %(wv)s::real, text_weight => %(wt)s::real, {filters})"
        )
    return conn.execute(f"SELECT key, score FROM {call}", p).fetchall()  # type: ignore[arg-type]


def _compose(conn: psycopg.Connection, col: Any, args: dict[str, Any]) -> list[tuple[str, float]]:
    """Explain's own statement, executed with its settings: the rows it shows are the search's."""
    search = {k: v for k, v in args.items() if k not in ("fusion", "vector_weight", "text_weight")}
    defaults = {"query": None, "vector": None, "oversample": None, "ef_search": None, "exact": False, "where": None}
    request = col._request(**{**defaults, "tenant": None, "mode": "vector", **search})
    request = search_request.with_fusion(
        request, args.get("fusion"), args.get("vector_weight"), args.get("text_weight")
    )
    info = col.info
    c = explaining.compose(
        conn, col.layout, info.oversample, info.ef_search, request, bm25=(info.bm25_k1, info.bm25_b), hybrid=info.hybrid
    )
    with conn.transaction():
        for name, value in c.settings.items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        rows = conn.execute(c.statement, c.params).fetchall()
    return [(r[0], r[2]) for r in rows]
