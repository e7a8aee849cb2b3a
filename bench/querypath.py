"""Query path benchmark: semsearch's search against pgvector used by hand, interleaved per query.

    python bench/querypath.py                      # Jeopardy 9k, a few minutes
    python bench/querypath.py --scale 250000       # + the synthetic scale set (50000: quick)
    python bench/querypath.py --profile            # + where the time of col.search goes
    python bench/querypath.py --data jeopardy256 --compression none   # local 256-dim set, plan none

One database per data set on the server semsearch would use. Contenders on the same rows:
the baseline (a ``vector(D)`` table, HNSW m=16 ef_construction=64, ``SET hnsw.ef_search``
at the first value of a sweep reaching recall@10 0.99, ``ORDER BY embedding <=> $1 LIMIT
10`` prepared, numpy vectors in binary); (a) ``col.search(vector=q, k=10)`` on a default
collection filled by ``add_many``; (b) ``SELECT * FROM semsearch.search(name, $2, 10)``,
prepared, binary. Both tables are vacuumed and read into the OS page cache, every query
runs once untimed; then the three take turns, one query each, the first rotating, each
a third of the queries apart (the same query back to back would run the second on the
pages the first just read into shared buffers; ``--same-query`` does that anyway).

Only the public API (connect, create_collection, add_many, search, db.url,
semsearch.search in SQL) and the Postgres catalogs are used, so any library version can
be measured; the HNSW build inside ``add_many`` is timed from pg_stat_progress_create_index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata
import contenders as ct
import harness as hz
import numpy as np
import psycopg
from psycopg import sql
from run import library_state
from tqdm import tqdm

import semsearch

ROOT = Path(__file__).resolve().parents[1]
K = 10
TARGET = 0.99
EFS = [10, 20, 40, 60, 80, 120, 160, 200, 300, 400, 600, 800, 1000]
BASELINE_SQL = sql.SQL("SELECT id, content, 1 - (embedding <=> %(q)b) FROM {} ORDER BY embedding <=> %(q)b LIMIT {}")
FUNCTION_SQL = "SELECT * FROM semsearch.search(%s, %b, 10)"
FUNCTION_OVERSAMPLE_SQL = "SELECT * FROM semsearch.search(%s, %b, 10, oversample => %s::real)"
NAMES = ("baseline", "a", "b")
LABELS = {
    "baseline": "pgvector by hand (prepared, binary)",
    "a": "(a) semsearch col.search(vector=q, k=10)",
    "b": "(b) semsearch.search() in SQL (prepared, binary)",
}

Runner = Callable[[np.ndarray], list[int]]


def log(msg: str) -> None:
    tqdm.write(time.strftime("%H:%M:%S ") + msg)


def semsearch_load(
    db: semsearch.Database, name: str, vs: benchdata.VectorSet, model: str, compression: str | None = None
) -> tuple[Any, dict]:
    """A collection (default plan, or ``compression``) filled by add_many with precomputed vectors;
    the load and its HNSW build timed."""
    col = db.create_collection(name, dims=int(vs.base.shape[1]), model=model, compression=compression)
    watch = hz.BuildWatch(db.url)
    watch.start()
    started = time.perf_counter()
    col.add_many(ct.records(vs.base, vs.texts), progress=True)
    seconds = time.perf_counter() - started
    builds = watch.finish()
    hnsw = [b["seconds"] for b in builds if hz.HNSW_BUILD_PHASE in b["phases"]]
    info = getattr(col, "info", None)
    return col, {
        "add_many_s": round(seconds, 3),
        "hnsw_build_s": round(sum(hnsw), 3) if hnsw else None,
        "index_builds_seen": builds,
        "compression": getattr(info, "compression", None),
        "oversample": getattr(info, "oversample", None),
        "ef_search": getattr(info, "ef_search", None),
    }


def semsearch_relations(db: semsearch.Database) -> tuple[str, str, list[str]]:
    """(table, HNSW index, all HNSW indexes) of the collection: the database's HNSW indexes
    that are not the baseline's, ``*_hnsw`` first, then the largest."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT c.oid::regclass::text, i.indrelid::regclass::text FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'hnsw' AND i.indrelid::regclass::text <> %s "
            "ORDER BY c.relname LIKE '%%\\_hnsw' DESC, pg_relation_size(c.oid) DESC",
            [ct.PG_TABLE],
        ).fetchall()
    if not rows:
        raise RuntimeError("expected an HNSW index on the semsearch collection, found none")
    return rows[0][1], rows[0][0], [r[0] for r in rows]


def runners(
    db: semsearch.Database, col: Any, name: str, given: dict[str, float]
) -> tuple[dict[str, Runner], dict[str, psycopg.Connection]]:
    """The three contenders as ``f(q) -> keys``; the baseline and (b) on connections of their own.

    ``given``: {"oversample": x} once set, (a) and (b) ask for it (``--match-baseline``)."""
    conns = {"baseline": hz.connect_raw(db.url), "b": hz.connect_raw(db.url)}
    query = BASELINE_SQL.format(sql.Identifier(ct.PG_TABLE), sql.Literal(K))

    def baseline(q: np.ndarray) -> list[int]:
        return [r[0] for r in conns["baseline"].execute(query, {"q": q}, prepare=True).fetchall()]

    def a(q: np.ndarray) -> list[int]:
        return [int(h.key if hasattr(h, "key") else h["key"]) for h in col.search(vector=q, k=K, **given)]

    def b(q: np.ndarray) -> list[int]:
        if given:
            cur = conns["b"].execute(FUNCTION_OVERSAMPLE_SQL, [name, q, given["oversample"]], prepare=True)
        else:
            cur = conns["b"].execute(FUNCTION_SQL, [name, q], prepare=True)
        cols = [d.name for d in cur.description or []]
        i = cols.index("key") if "key" in cols else 0
        return [int(r[i]) for r in cur.fetchall()]

    return {"baseline": baseline, "a": a, "b": b}, conns


def set_ef(conn: psycopg.Connection, ef: int) -> None:
    conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(int(ef))))


def sweep(run: Runner, conn: psycopg.Connection, queries: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """The baseline's ef_search from low to high, alone, up to the first reaching recall TARGET."""
    points = []
    for ef in EFS:
        set_ef(conn, ef)
        p = asdict(hz.measure(lambda q, _: run(q), ef, queries, truth))
        # the planner may prefer a full scan + sort on small tables at small ef_search
        plan = ct.plan_lines(conn, BASELINE_SQL.format(sql.Identifier(ct.PG_TABLE), sql.Literal(K)), {"q": queries[0]})
        p["uses_index"] = any("hnsw" in x for x in plan)
        points.append(p)
        log(f"  baseline ef_search {ef}: recall {p['recall']:.4f}, p50 {p['p50_ms']:.2f} ms")
        if p["recall"] >= TARGET:
            break
    return points


def rotate(items: tuple[str, ...], j: int) -> tuple[str, ...]:
    return items[j % len(items) :] + items[: j % len(items)]


def shifts(names: tuple[str, ...], n: int, same_query: bool) -> dict[str, int]:
    """Where each contender starts in the queries: a third apart, so that no two run the same
    query back to back (the second would find the first one's pages in shared buffers)."""
    return {name: 0 if same_query else k * -(-n // len(names)) for k, name in enumerate(names)}


def interleave(
    run: dict[str, Runner],
    queries: np.ndarray,
    truth: np.ndarray,
    rounds: int,
    block: int,
    same_query: bool,
    names: tuple[str, ...] = NAMES,
) -> dict:
    """One query per contender per step, the first of the ``names`` rotating, each contender
    through every query per round (after one untimed round); then, if ``block``, blocks of
    ``block`` queries in a row per contender, the blocks rotating. Ratios are to ``names[0]``."""
    n = len(queries)
    shift = shifts(names, n, same_query)
    lat: dict[str, list[float]] = {x: [] for x in names}
    first: dict[str, list[float]] = {x: [] for x in names}
    blocked: dict[str, list[float]] = {x: [] for x in names}
    found: dict[str, list[Any]] = {x: [None] * n for x in names}

    def timed(name: str, j: int) -> float:
        i = (j + shift[name]) % n
        t0 = time.perf_counter()
        got = run[name](queries[i])
        dt = time.perf_counter() - t0
        found[name][i] = found[name][i] or got
        return dt

    for j in tqdm(range(n), desc="  warm-up", leave=False):
        for name in rotate(names, j):
            run[name](queries[(j + shift[name]) % n])
    for j in tqdm(range(rounds * n), desc=f"  {rounds} rounds", leave=False):
        for pos, name in enumerate(rotate(names, j)):
            lat[name].append(timed(name, j))
            if pos == 0:
                first[name].append(lat[name][-1])
    for s, start in enumerate(range(0, n, block) if block else []):
        for name in rotate(names, s):
            blocked[name] += [timed(name, j) for j in range(start, min(start + block, n))]
    ms = lambda x, p: round(float(np.percentile(x, p)) * 1e3, 3) if x else None  # noqa: E731
    out = {
        n: {
            "label": LABELS.get(n, n),
            "recall": round(hz.recall_at(found[n], truth), 4),
            "p50_ms": ms(lat[n], 50),
            "p95_ms": ms(lat[n], 95),
            "p50_when_first_ms": ms(first[n], 50),
            "p50_blocked_ms": ms(blocked[n], 50),
            "short_results": sum(len(f) < K for f in found[n]),
            "timed_calls": len(lat[n]),
        }
        for n in names
    }
    for n in names:
        for key in ("p50", "p95", "p50_when_first", "p50_blocked"):
            ref = out[names[0]][f"{key}_ms"]
            out[n][f"{key}_ratio"] = round(out[n][f"{key}_ms"] / ref, 3) if ref else None
    return out


def explain_one(col: Any, conn: psycopg.Connection, name: str, q: np.ndarray) -> tuple[str, str, str]:
    """(source, SQL, EXPLAIN text) of one search: the library's col.explain() when it has
    one, else EXPLAIN (ANALYZE, SUMMARY) of the semsearch.search() call."""
    if not hasattr(col, "explain"):
        rows = conn.execute("EXPLAIN (ANALYZE, SUMMARY) " + FUNCTION_SQL, [name, q]).fetchall()
        return "EXPLAIN (ANALYZE, SUMMARY) of the semsearch.search() call", FUNCTION_SQL, "\n".join(r[0] for r in rows)
    got = col.explain(vector=q, k=K)
    if isinstance(got, dict):
        text, plan = got.get("sql", ""), got.get("explain", got.get("plan", got))
    elif isinstance(got, tuple | list) and len(got) == 2:
        text, plan = got
    else:
        text, plan = getattr(got, "sql", ""), getattr(got, "explain", getattr(got, "plan", got))
    if isinstance(plan, list):  # rows of EXPLAIN, or a JSON plan
        plan = "\n".join(str(x[0] if isinstance(x, tuple) else x) for x in plan)
    return "col.explain()", str(text), str(plan)


def profile(
    db: semsearch.Database, col: Any, name: str, run: dict[str, Runner], queries: np.ndarray, same_query: bool
) -> dict:
    """Split col.search() into client Python, round trip, server planning and execution:
    (a), (b) and the EXPLAIN interleaved as in the timed rounds; per-query differences, then medians."""
    steps, n = ("a", "b", "explain"), len(queries)
    shift = shifts(steps, n, same_query)
    t = {x: np.zeros(n) for x in ("a", "b", "planning", "execution")}
    with db.connection() as conn:
        for j in range(n):
            for step in rotate(steps, j):
                i = (j + shift[step]) % n
                if step == "explain":
                    sample = explain_one(col, conn, name, queries[i])
                    for part in ("planning", "execution"):
                        m = re.search(rf"{part} Time[\"']?:\s*([\d.]+)", sample[2], re.IGNORECASE)
                        t[part][i] = float(m.group(1)) if m else 0.0
                else:
                    t0 = time.perf_counter()
                    run[step](queries[i])
                    t[step][i] = (time.perf_counter() - t0) * 1e3
    server = np.add(t["planning"], t["execution"])
    med = lambda x: round(float(np.median(x)), 3)  # noqa: E731
    out: dict[str, Any] = {
        "queries": len(queries),
        "source": sample[0],
        "sql": sample[1],
        "explain_last": re.sub(r"\[[-\d.e, ]{60,}\]", "[...]", sample[2]),
        "col_search_ms": med(t["a"]),
        "sql_call_ms": med(t["b"]),
        "server_planning_ms": med(t["planning"]),
        "server_execution_ms": med(t["execution"]),
        "client_python_ms": med(np.subtract(t["a"], server)),
        "python_over_sql_ms": med(np.subtract(t["a"], t["b"])),
        "round_trip_over_server_ms": med(np.subtract(t["b"], server)),
    }
    if not hasattr(col, "explain"):
        # library 0.1.0: the function EXECUTEs its catalog's ann_sql, which bench/explain.py replays
        try:
            import explain

            inner = explain.profile(db.url, col, queries, float(col.info.oversample), n=len(queries))
            out["inner_ann_sql"] = {"medians": inner["medians"], "client_p50_ms": inner["client_p50_ms"]}
        except Exception as exc:  # another library version's internals: skip
            out["inner_ann_sql"] = {"error": repr(exc)[:200]}
    return out


def bench(vs: benchdata.VectorSet, args: argparse.Namespace, res: dict[str, Any]) -> None:
    n, d = vs.base.shape
    qn = min(args.queries, len(vs.queries))
    queries, truth = vs.queries[:qn], vs.truth[:qn]
    dbname = f"semsearch_qp_{vs.name}"
    url = hz.bench_database(dbname)
    db = semsearch.connect(url, upgrade=True)
    with db.connection() as conn:
        res.setdefault("machine", hz.machine(conn))
    out: dict[str, Any] = {"rows": n, "dims": d, "queries": qn, "rounds": args.rounds, "notes": vs.notes}
    res["datasets"][vs.name] = out
    log(f"[{vs.name}] {n} x {d}: semsearch default collection via add_many")
    col, load = semsearch_load(db, vs.name, vs, args.model, args.compression)
    out["semsearch_load"] = load
    table, index, all_hnsw = semsearch_relations(db)
    log(f"  add_many {load['add_many_s']:.1f} s, of which HNSW build {load['hnsw_build_s']} s ({index})")
    log(f"[{vs.name}] pgvector by hand: COPY + CREATE INDEX (maintenance_work_mem {args.build_memory})")
    out["baseline_load"] = bl = ct.pgvector_load(url, vs.base, vs.texts)
    hz.vacuum(db, ct.PG_TABLE)
    ddl, base_index, _ = ct.pgvector_index_sql("vector", d)
    build = hz.timed_build(db, ddl, memory=args.build_memory)
    bl.update(index_s=build.seconds, memory=build.memory, notices=build.notices)
    hz.vacuum(db, table)
    out["sizes"] = s = {"baseline": hz.sizes(db, ct.PG_TABLE, base_index), "semsearch": hz.sizes(db, table, index)}
    s["semsearch"].update(table=table, index=index, hnsw_indexes=all_hnsw)
    out["ratios"] = ra = {
        "index_bytes": round(s["semsearch"]["index_bytes"] / s["baseline"]["index_bytes"], 4),
        "build_s": round(load["hnsw_build_s"] / build.seconds, 3) if load["hnsw_build_s"] else None,
        "load_index_s": round(load["add_many_s"] / (bl["load_s"] + build.seconds), 3),
    }
    log(f"  build {build.seconds:.1f} s; semsearch/baseline: index bytes {ra['index_bytes']}, build {ra['build_s']}")
    out["prewarm_s"] = {"baseline": hz.prewarm(db, ct.PG_TABLE), "semsearch": hz.prewarm(db, table)}
    given: dict[str, float] = {}
    run, conns = runners(db, col, vs.name, given)
    out["baseline_sweep"] = sweep(run["baseline"], conns["baseline"], queries, truth)
    best = hz.smallest_reaching(out["baseline_sweep"], TARGET) or out["baseline_sweep"][-1]
    out["baseline_ef_search"] = int(best["knob"])
    if args.match_baseline:
        # a plan in the full vectors' order (none, halfvec) then searches at the baseline's ef_search
        given["oversample"] = out["semsearch_oversample_given"] = best["knob"] / K
    set_ef(conns["baseline"], out["baseline_ef_search"])
    log(f"[{vs.name}] interleaved: {qn} queries x {args.rounds} rounds, baseline ef_search {best['knob']:g}")
    out["contenders"] = c = interleave(run, queries, truth, args.rounds, args.block, args.same_query)
    ra.update({f"p50_{x}_over_baseline": c[x]["p50_ratio"] for x in ("a", "b")})
    out["loadavg_after_timing"] = [round(x, 2) for x in os.getloadavg()]
    for x in NAMES:
        log(f"  {c[x]['label']:<50} recall {c[x]['recall']:.4f} p50 {c[x]['p50_ms']:.3f} p95 {c[x]['p95_ms']:.3f}")
    out["prepared"] = {
        x: conns[x].execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements").fetchall() for x in conns
    }
    if args.profile:
        log(f"[{vs.name}] profile of col.search, {min(200, qn)} queries")
        out["profile"] = profile(db, col, vs.name, run, queries[:200], args.same_query)
    for conn in conns.values():
        conn.close()
    db.close()
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))


def markdown(res: dict[str, Any]) -> str:
    lib, m = res["library"], res["machine"]
    mb = lambda x: f"{x:,} ({x / 2**20:,.1f} MB)"  # noqa: E731
    lines = [
        "# Query path: semsearch vs pgvector by hand",
        "",
        f"`{res['command']}` ({res['started']}, {res['elapsed_s'] / 60:.1f} min). semsearch {lib['version']} at "
        f"`{lib['head']}`{' + uncommitted changes' if lib['library_uncommitted_files'] else ''} (source sha1 "
        f"`{lib['source_sha1']}`); {m.get('cpu')}, "
        f"{m.get('nproc')} cores, {m.get('mem_gib')} GiB, load {' '.join(m.get('loadavg_at_start', []))} at start; "
        f"{m['postgres'].split(' on ')[0]}, pgvector {m['pgvector']}, "
        f"shared_buffers {m['settings']['shared_buffers']}.",
        "",
        "p50/p95: interleaved, one call per contender per step, the first of the three rotating, warm cache; "
        + (
            "the three run the same query back to back (`--same-query`). "
            if res["config"]["same_query"] == "True"
            else "each contender a third of the queries ahead of the next, so none runs a query another just ran. "
        )
        + "*when first*: p50 of the calls that opened their step. *blocked*: one more pass, blocks of "
        f"{res['config']['block']} queries in a row per contender, blocks rotating.",
    ]
    for ds, r in res["datasets"].items():
        if "contenders" not in r:
            continue
        s, c, ra, load, bl = r["sizes"], r["contenders"], r["ratios"], r["semsearch_load"], r["baseline_load"]
        lines += [
            "",
            f"## {ds}: {r['rows']:,} rows x {r['dims']}, {r['queries']} queries x {r['rounds']} rounds",
            "",
            f"semsearch plan `{load['compression']}` (oversample {load['oversample']}"
            + (
                f"; searches given oversample={r['semsearch_oversample_given']:g}, the baseline's ef_search / k"
                if "semsearch_oversample_given" in r
                else ""
            )
            + "); baseline at "
            f"ef_search **{r['baseline_ef_search']}**, the first reaching recall {TARGET} in the sweep.",
            "",
            "| contender | recall@10 | p50 ms | p95 ms | p50 / baseline | p95 / baseline "
            "| p50 when first (/ baseline's) | p50 blocked (/ baseline's) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in (c[x] for x in NAMES):
            lines.append(
                f"| {v['label']} | {v['recall']:.4f} | {v['p50_ms']:.3f} | {v['p95_ms']:.3f} "
                f"| **{v['p50_ratio']:.3f}** | {v['p95_ratio']:.3f} | {v['p50_when_first_ms']:.3f} "
                f"({v['p50_when_first_ratio']:.3f}) | {v['p50_blocked_ms']} ({v['p50_blocked_ratio']}) |"
            )
        lines += [
            "",
            "| | semsearch | baseline | semsearch / baseline |",
            "|---|---|---|---|",
            f"| HNSW index bytes | {mb(s['semsearch']['index_bytes'])} | {mb(s['baseline']['index_bytes'])} "
            f"| **{ra['index_bytes']:.4f}** |",
            f"| table + indexes bytes | {mb(s['semsearch']['total_bytes'])} | {mb(s['baseline']['total_bytes'])} "
            f"| {s['semsearch']['total_bytes'] / s['baseline']['total_bytes']:.3f} |",
            f"| HNSW build s | {load['hnsw_build_s']} (in add_many, library settings) | {bl['index_s']} "
            f"(CREATE INDEX, maintenance_work_mem {bl['memory']}) | **{ra['build_s']}** |",
            f"| load + index s | {load['add_many_s']} (add_many) | {bl['load_s'] + bl['index_s']:.3f} "
            f"(COPY + CREATE INDEX) | {ra['load_index_s']} |",
            "",
            "Baseline sweep, alone: "
            + ", ".join(f"ef {p['knob']:g}: {p['recall']:.4f} / {p['p50_ms']:.2f} ms" for p in r["baseline_sweep"]),
        ]
        if "profile" in r:
            p = r["profile"]
            lines += [
                "",
                f"Profile of (a), medians over {p['queries']} queries; server times from {p['source']}:",
                "",
                "| col.search | SQL call (b) | server planning | server execution | client Python (a − server) "
                "| Python over SQL (a − b) | round trip (b − server) |",
                "|---|---|---|---|---|---|---|",
                f"| {p['col_search_ms']} | {p['sql_call_ms']} | {p['server_planning_ms']} | "
                f"{p['server_execution_ms']} | {p['client_python_ms']} | {p['python_over_sql_ms']} | "
                f"{p['round_trip_over_server_ms']} |",
            ]
            if "medians" in p.get("inner_ann_sql", {}):
                i = p["inner_ann_sql"]["medians"]
                lines += [
                    "",
                    f"The function's inner statement (0.1.0's ann_sql replayed by bench/explain.py, same queries): "
                    f"planning {i['planning_ms']} ms, execution {i['execution_ms']} ms = coarse HNSW scan "
                    f"{i['coarse_ms']} ({i['coarse_blocks']:.0f} buffers) + rescore {i['rescore_ms']} "
                    f"({i['rescore_blocks']:.0f} buffers) + sort/aggregate {i['sort_agg_ms']}.",
                ]
            lines += ["", "```", p["sql"], p["explain_last"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, help="also the synthetic scale set of N rows (250000 full, 50000 quick)")
    ap.add_argument("--profile", action="store_true", help="split the time of col.search")
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries per data set (at most 1000)")
    ap.add_argument("--rounds", type=int, default=5, help="timed interleaved passes over the queries")
    ap.add_argument("--block", type=int, default=100, help="queries in a row per contender, blocked pass (0: none)")
    ap.add_argument("--same-query", action="store_true", help="the three run the same query back to back")
    ap.add_argument("--model", default="text-embedding-3-small", help="the collection's model label")
    ap.add_argument(
        "--match-baseline",
        action="store_true",
        help="(a) and (b) given oversample = the baseline's ef_search / k (an explicit setting, not defaults)",
    )
    ap.add_argument("--compression", help="the collection's plan (bit, halfvec, none, ...); default: the library's")
    ap.add_argument(
        "--data", default="jeopardy", help="comma-separated: jeopardy (ada-002 1536), jeopardy256 (local model 256)"
    )
    ap.add_argument("--build-memory", default="4GB", help="maintenance_work_mem of the baseline's build")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "querypath")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    res: dict[str, Any] = {
        "command": "python bench/querypath.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "library": dict(library_state(), version=metadata.version("semsearch")),
        "config": {k: str(v) for k, v in vars(args).items()},
        "datasets": {},
    }
    sets = {"jeopardy": benchdata.jeopardy, "jeopardy256": benchdata.jeopardy_local}
    makers = [sets[x] for x in args.data.split(",") if x]
    for make in makers + ([lambda: benchdata.synthetic(args.scale)] if args.scale else []):
        bench(make(), args, res)
        res["elapsed_s"] = round(time.time() - started, 1)
        (args.out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    (args.out / "results.md").write_text(markdown(res))
    log(f"done in {res['elapsed_s'] / 60:.1f} min: {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
