"""Measure alternatives to the current two-stage SQL on one collection (evidence for changes).

    python bench/variants.py --rows 50000          # synthetic scale set, default plan (bit)

Compares, on the same rows, queries and connection (client p50 over prepared statements):
  current      the catalog's ann_sql (coarse ids, self-join on id, rescore), re-planned per call
               as semsearch.search()'s EXECUTE does (plan_cache_mode = force_custom_plan)
  generic      the same statement with a cached generic plan (what a static/prepared call gets)
  no_join      coarse subquery returning the full row, rescored directly: no pkey probes
  no_join_rows the same without packing the hits into an array (what array_agg costs)
  ef40_iter    current SQL with ef_search = 40 and iterative scans instead of ef = candidates
and the whole function call. Recall@10 is against exact numpy ground truth.

With ``--builds N`` it then times N alternating rebuilds of the collection's HNSW index and
of pgvector's full-vector HNSW (the same settings as run.py) to put an error bar on the
build-time ratio. With ``--efc 32 64`` it rebuilds the collection's index at each
ef_construction (m=16, same settings) and measures build time, size and recall at
oversample 16 / 24 / 32.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.types.composite import CompositeInfo, register_composite

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata
import contenders as ct
import explain
import harness as hz

import semsearch


def no_join_sql(col: semsearch.Collection, *, wrapped: bool = True) -> str:
    """The coarse subquery returns the whole row; the rescore orders it directly (no self-join).

    ``wrapped`` packs the rows into the same semsearch.hit[] as ann_sql does, so the two
    differ only in the join.
    """
    lay = col.layout
    q = lay.query_param()
    body = sql.SQL(
        "SELECT key, content, (1 - (embedding <=> {q}))::float8 AS score, metadata FROM "
        "(SELECT key, content, metadata, embedding FROM {t} ORDER BY {col} {op} {cq} LIMIT $3) c "
        "ORDER BY embedding <=> {q} LIMIT $2"
    ).format(
        q=q,
        t=lay.table,
        col=lay.coarse_expression(sql.Identifier("embedding")),
        op=lay.plan.operator(),
        cq=lay.coarse_expression(q),
    )
    return (lay._hits(body) if wrapped else body).as_string(None)


def run(url: str, col: semsearch.Collection, vs: benchdata.VectorSet, cand: int, n: int) -> dict[str, Any]:
    conn = hz.connect_raw(url)
    register_composite(CompositeInfo.fetch(conn, "semsearch.hit"), conn)
    ann = conn.execute("SELECT ann_sql FROM semsearch.collections WHERE name = %s", [col.name]).fetchone()[0]
    stmts = {
        "current": explain._client(ann),
        "no_join": explain._client(no_join_sql(col)),
        "no_join_rows": explain._client(no_join_sql(col, wrapped=False)),
    }
    ef = str(min(1000, max(40, cand)))
    out: dict[str, Any] = {"candidates": cand}
    cases = [
        ("function_call", None, "force_custom_plan", ef),
        ("current", "current", "force_custom_plan", ef),
        ("generic", "current", "force_generic_plan", ef),
        ("no_join", "no_join", "force_custom_plan", ef),
        ("no_join_rows", "no_join_rows", "force_custom_plan", ef),
        ("ef40_iter", "current", "force_custom_plan", "40"),
        # the first pass ran on a colder cache: run it again to see the order effect
        ("function_call_again", None, "force_custom_plan", ef),
    ]
    for label, key, mode, ef_value in cases:
        conn.execute("SELECT set_config('plan_cache_mode', %s, false)", [mode])
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", [ef_value])
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        lat, found = [], []
        for i, q in enumerate(vs.queries[: n + 10]):
            params = {"p1": q, "p2": 10, "p3": cand, "p4": None}
            t0 = time.perf_counter()
            if key is None:
                rows = conn.execute(
                    "SELECT key FROM semsearch.search(%s, %s::vector, 10, %s::real)", [col.name, q, cand / 10]
                ).fetchall()
                keys = [r[0] for r in rows]
            else:
                rows = conn.execute(stmts[key], params, prepare=True).fetchall()
                keys = [r[0] for r in rows] if key == "no_join_rows" else [h.key for h in rows[0][0]]
            if i >= 10:
                lat.append(time.perf_counter() - t0)
                found.append([int(k) for k in keys])
        out[label] = {
            "p50_ms": round(float(np.median(lat)) * 1e3, 3),
            "recall": round(hz.recall_at(found, vs.truth[10 : n + 10]), 4),
        }
    conn.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--candidates", type=int, nargs="*", default=[100, 160, 640])
    ap.add_argument("--builds", type=int, default=0, help="alternating rebuilds of both indexes")
    ap.add_argument("--build-memory", default="4GB")
    ap.add_argument("--efc", type=int, nargs="*", default=[], help="rebuild at these ef_construction values")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "variants.json"))
    args = ap.parse_args()
    url = hz.bench_database("semsearch_variants")
    db = semsearch.connect(url, upgrade=True)
    vs = benchdata.jeopardy() if args.rows <= 9000 else benchdata.synthetic(args.rows)
    col, _ = ct.semsearch_bulk(db, "variants", None, vs.base, vs.texts)
    hz.vacuum(db, ct.table_of(col))
    hz.prewarm(db, ct.table_of(col))
    result = {"rows": len(vs.base), "plan": col.info.compression, "runs": []}
    for cand in args.candidates:
        r = run(url, col, vs, cand, args.queries)
        result["runs"].append(r)
        print(json.dumps(r), flush=True)
    with hz.connect_raw(url) as conn:
        conn.execute(sql.SQL("PREPARE ex(vector, integer, jsonb) AS " + col.layout.exact_sql()))  # type: ignore[arg-type]
        stmt = sql.SQL("EXPLAIN (ANALYZE) EXECUTE ex({}::vector, 10, NULL)").format(
            sql.Literal(explain._vec(vs.queries[0]))
        )
        plan = [r[0] for r in conn.execute(stmt).fetchall()]
    result["exact_plan"] = [x for x in plan if "JIT" in x or "Timing" in x or "Execution" in x or "Gather" in x]
    print(json.dumps({"exact_plan": result["exact_plan"]}))
    if args.builds:
        ct.pgvector_load(url, vs.base, vs.texts)
        hz.vacuum(db, ct.PG_TABLE)
        ddl, iname, _ = ct.pgvector_index_sql("vector", vs.base.shape[1])
        times: dict[str, list[float]] = {"semsearch": [], "pgvector": []}
        for _ in range(args.builds):
            times["semsearch"].append(ct.semsearch_build(db, col, args.build_memory)["seconds"])
            with db.connection() as conn:
                conn.execute(f"DROP INDEX IF EXISTS {iname}")
            times["pgvector"].append(hz.timed_build(db, ddl, memory=args.build_memory).seconds)
            print(json.dumps(times), flush=True)
        result["builds"] = times
    for efc in args.efc:
        ct.drop_hnsw(db, col)
        b = hz.timed_build(db, col.layout.hnsw_index_sql(m=16, ef_construction=efc), memory=args.build_memory)
        q, t = vs.queries[: args.queries], vs.truth[: args.queries]
        pts = {o: hz.measure(ct.semsearch_search(col), o, q, t) for o in (16, 24, 32)}
        result.setdefault("ef_construction", {})[str(efc)] = {
            "build_s": b.seconds,
            "index_bytes": hz.sizes(db, ct.table_of(col), ct.index_of(col))["index_bytes"],
            "recall_p50_by_oversample": {str(o): [p.recall, p.p50_ms] for o, p in pts.items()},
        }
        print(json.dumps({"ef_construction": efc, **result["ef_construction"][str(efc)]}), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
