"""Where a search's time goes beyond its bare statement: each layer of col.search and semsearch.search().

    python bench/overhead.py --data jeopardy256 --compression halfvec    # one data set, one plan
    python bench/overhead.py --data jeopardy,jeopardy256 --compression bit --cprofile 2000

One collection per data set (``add_many``, the plan given), then these contenders, interleaved per
query as ``bench/querypath.py`` interleaves (one call each per step, the first rotating, each a share of
the queries apart), each on a connection of its own unless said:

- ``bare``: the two-stage statement semsearch composes for the search (``searching.plan``), prepared,
  the query vector in binary, ``hnsw.ef_search`` set once for the session: the floor;
- ``pipelined``: what ``col.search`` sent for it before ``semsearch.session_settings`` (``searching.execute``
  on a connection whose session settings are forgotten before each call: the ``set_config`` statement and
  the statement in one pipeline), the plan made per query, on a plain connection;
- ``col.search cold``: ``col.search`` as before ``session_settings``: its one connection's settings forgotten
  before each search, so they go with it (pipelined, as above);
- ``col.search``: ``col.search(vector=q, k=10)`` (pool checkout, request checks, the catalog check
  when due, result objects), its connection's session carrying the settings: a warm search sends the
  statement alone;
- ``ann()``: ``SELECT * FROM semsearch.<table>_ann($1, k, candidates, NULL)``, prepared, ef_search
  set once: the per-collection PL/pgSQL function around the statement;
- ``ann() generic``: the same, on a session with ``plan_cache_mode = force_generic_plan``: what the
  function's statement costs when it is not planned again for each call (a custom plan, as PL/pgSQL
  makes it for a statement whose parameters decide its plan);
- ``search_rows()``: ``semsearch.search_rows(name, $1, 10)`` prepared (the planner's SQL twins,
  its settings, the function call);
- ``search()``: ``semsearch.search(name, $1, 10)`` prepared (what a SQL user calls);
- ``search() NAME`` (``--variant NAME=FILE``, repeatable): the functions FILE defines (e.g. the
  previous ``search()`` and ``search_rows()``, as a migration's downgrade restores them) made again
  in a schema of their own, ``semsearch_NAME``, calling semsearch's other functions: another SQL
  path beside the installed one, in the same run.

``--cprofile N``: N more calls of ``col.search`` under cProfile (its top functions by own time);
``--functions N``: N more calls of ``semsearch.search()`` with ``track_functions = 'all'``, the
server's time per SQL function and call (``pg_stat_user_functions``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata
import harness as hz
import numpy as np
import psycopg
from psycopg import sql
from querypath import Runner, rotate, semsearch_load, semsearch_relations, shifts
from run import library_state

import semsearch
from semsearch import search_request, searching, session_settings, statements

ROOT = Path(__file__).resolve().parents[1]
K = 10
PYTHON = ("bare", "pipelined", "col.search cold", "col.search")
SQL_LAYERS = ("ann()", "ann() generic", "search_rows()", "search()")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def plan_for(col: Any, q: np.ndarray) -> searching.SearchPlan:
    """The plan col.search makes for ``vector=q, k=K`` (no time limit)."""
    request = search_request.check_request(
        dims=col.dims, name=col.name, tenant_required=False, query=None, vector=q, k=K, mode="vector",
        oversample=None, ef_search=None, exact=False, where=None, tenant=None,
    )  # fmt: skip
    request = search_request.with_vector(request, q, dims=col.dims)
    info = col.info
    return searching.plan(col.layout, col.name, info.oversample, info.ef_search, request)


def install_variant(conn: psycopg.Connection, schema: str, path: Path) -> None:
    """The functions ``path`` defines in schema semsearch (``$fn$``-quoted), made again in ``schema``.

    Calls between them go to ``schema``'s copies; every other call stays semsearch's.
    """
    text = path.read_text()
    blocks = re.findall(r"CREATE (?:OR REPLACE )?FUNCTION semsearch\.\w+\(.*?\$fn\$;", text, re.S)
    names = {re.match(r"CREATE (?:OR REPLACE )?FUNCTION semsearch\.(\w+)\(", b).group(1) for b in blocks}  # type: ignore[union-attr]
    if "search" not in names:
        raise SystemExit(f"expected search() in {path}, found {sorted(names)}")
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for b in blocks:
        b = re.sub(r"FUNCTION semsearch\.", f"FUNCTION {schema}.", b, count=1)
        for name in names:
            b = b.replace(f"semsearch.{name}(", f"{schema}.{name}(")
        conn.execute(b)
    for (fn,) in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = %s::regnamespace", [schema]
    ).fetchall():
        conn.execute(sql.SQL("ALTER FUNCTION {} SET search_path = pg_catalog, public, pg_temp").format(sql.SQL(fn)))


def backend_pid(conn: psycopg.Connection) -> int:
    return int(conn.info.backend_pid)


def runners(
    db: semsearch.Database, col: Any, variants: list[str]
) -> tuple[dict[str, Runner], dict[str, int], list[Any]]:
    """The contenders as ``f(q) -> keys``, the server process each one runs on, what to close after."""
    p0 = plan_for(col, np.ones(col.dims, np.float32) / np.sqrt(col.dims))
    made = ("bare", "pipelined", "ann()", "ann() generic", "search_rows()", "search()", *variants)
    conns = {x: hz.connect_raw(db.url) for x in made}
    # the per-collection function's statement planned once for all calls, not for each (a custom plan)
    conns["ann() generic"].execute("SET plan_cache_mode = force_generic_plan")
    for x in ("bare", "ann()", "ann() generic"):
        for name, value in p0.settings.items():
            conns[x].execute("SELECT set_config(%s, %s, false)", [name, value])
    bare = p0.statement
    m = re.search(r"LIMIT (\d+)\) c ORDER BY", bare.as_string(None))
    n = int(m.group(1)) if m else K
    ann = sql.SQL("SELECT * FROM {}(%(q)b, {}, {}, NULL)").format(
        statements.function_name(col.layout, "_ann"), sql.Literal(K), sql.Literal(n)
    )
    name = col.name
    # col.search through a pool of one: the server process it runs on is known
    one = semsearch.connect(db.url, max_connections=1)
    col1 = one.collection(name)
    with one.connection() as c:
        pids = {"col.search": backend_pid(c)}
    # col.search as it ran before session_settings: its connection's settings forgotten before each search
    two = semsearch.connect(db.url, max_connections=1)
    col2 = two.collection(name)
    with two.pool.connection() as c2:
        pids["col.search cold"] = backend_pid(c2)
    pids |= {x if x not in variants else f"search() {x}": backend_pid(c) for x, c in conns.items()}

    def cold(conn: psycopg.Connection) -> psycopg.Connection:
        """``conn`` with nothing remembered of its session: its settings go with each search, as they did
        before session_settings (a checkout for another use forgets them the same way)."""
        session_settings.lent(conn)
        return conn

    def keys(cur: psycopg.Cursor[Any]) -> list[int]:
        return [int(r[0]) for r in cur.fetchall()]

    run: dict[str, Runner] = {
        "bare": lambda q: keys(conns["bare"].execute(bare, {"q": q}, prepare=True)),
        "pipelined": lambda q: [int(r[0]) for r in searching.execute(cold(conns["pipelined"]), plan_for(col, q))[0]],
        "col.search": lambda q: [int(h.key) for h in col1.search(vector=q, k=K)],
        "col.search cold": lambda q: [int(h.key) for h in col2.search(vector=q, k=K)] if cold(c2) else [],
        "ann()": lambda q: keys(conns["ann()"].execute(ann, {"q": q}, prepare=True)),
        "ann() generic": lambda q: keys(conns["ann() generic"].execute(ann, {"q": q}, prepare=True)),
        "search_rows()": lambda q: keys(
            conns["search_rows()"].execute("SELECT * FROM semsearch.search_rows(%s, %b, 10)", [name, q], prepare=True)
        ),
        "search()": lambda q: keys(
            conns["search()"].execute("SELECT * FROM semsearch.search(%s, %b, 10)", [name, q], prepare=True)
        ),
    }
    for v in variants:
        call = sql.SQL("SELECT * FROM {}.search(%s, %b, 10)").format(sql.Identifier(f"semsearch_{v}"))
        run[f"search() {v}"] = lambda q, v=v, call=call: keys(conns[v].execute(call, [name, q], prepare=True))
    return run, pids, [*conns.values(), one, two]


def cpu_ns(pid: int) -> int:
    """Nanoseconds process ``pid`` has run on a CPU (``/proc/PID/schedstat``: waiting for one is not counted)."""
    with open(f"/proc/{pid}/schedstat", "rb") as f:
        return int(f.read().split()[0])


def timed(
    run: dict[str, Runner],
    pids: dict[str, int],
    queries: np.ndarray,
    truth: np.ndarray,
    rounds: int,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """querypath's interleaving (one call each per step, the first rotating, each contender a share of the
    queries apart, one untimed pass first), timing each call three ways: wall clock, the server process's
    CPU time and the client thread's CPU time. On a loaded machine the CPU times are what a call costs;
    the wall clock also holds the waits for a CPU."""
    n = len(queries)
    shift = shifts(names, n, False)
    t: dict[str, dict[str, list[float]]] = {x: {"wall": [], "server": [], "client": []} for x in names}
    found: dict[str, list[Any]] = {x: [None] * n for x in names}
    for j in range(n):
        for name in rotate(names, j):
            run[name](queries[(j + shift[name]) % n])
    for j in range(rounds * n):
        for name in rotate(names, j):
            i = (j + shift[name]) % n
            s0, c0, w0 = cpu_ns(pids[name]), time.thread_time_ns(), time.perf_counter_ns()
            got = run[name](queries[i])
            w1, c1, s1 = time.perf_counter_ns(), time.thread_time_ns(), cpu_ns(pids[name])
            found[name][i] = found[name][i] or got
            for key, dt in (("wall", w1 - w0), ("server", s1 - s0), ("client", c1 - c0)):
                t[name][key].append(dt / 1e3)
    out = {}
    for x in names:
        cpu = np.add(t[x]["server"], t[x]["client"])
        out[x] = {
            "recall": round(hz.recall_at(found[x], truth), 4),
            "p50_ms": round(float(np.median(t[x]["wall"])) / 1e3, 3),
            "p95_ms": round(float(np.percentile(t[x]["wall"], 95)) / 1e3, 3),
            "server_cpu_us": round(float(np.median(t[x]["server"])), 1),
            "client_cpu_us": round(float(np.median(t[x]["client"])), 1),
            "cpu_us": round(float(np.median(cpu)), 1),
            "timed_calls": len(t[x]["wall"]),
        }
    for x in names:
        out[x]["p50_ratio"] = round(out[x]["p50_ms"] / out[names[0]]["p50_ms"], 3)
        out[x]["cpu_ratio"] = round(out[x]["cpu_us"] / out[names[0]]["cpu_us"], 3)
    return out


def python_profile(col: Any, queries: np.ndarray, n: int) -> str:
    prof = cProfile.Profile()
    calls = [queries[i % len(queries)] for i in range(n)]
    prof.enable()
    for q in calls:
        col.search(vector=q, k=K)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    text = out.getvalue()
    return text[text.find("ncalls") - 3 :] if "ncalls" in text else text


def function_profile(
    db: semsearch.Database, name: str, queries: np.ndarray, n: int, schema: str = "semsearch"
) -> list[dict[str, Any]]:
    """Server time per SQL function and call of ``<schema>.search()`` (``track_functions = 'all'``)."""
    conn = hz.connect_raw(db.url)
    call = sql.SQL("SELECT * FROM {}.search(%s, %b, 10)").format(sql.Identifier(schema))
    try:
        conn.execute("SET track_functions = 'all'")
        conn.execute("SELECT pg_stat_reset()")
        for i in range(n):
            conn.execute(call, [name, queries[i % len(queries)]], prepare=True).fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")
    finally:
        conn.close()
    with db.connection() as c:
        time.sleep(1.0)  # the stats of a closed backend reach the shared counters
        rows = c.execute(
            "SELECT schemaname, funcname, calls, total_time, self_time FROM pg_stat_user_functions "
            "WHERE schemaname IN ('semsearch', %s) ORDER BY self_time DESC",
            [schema],
        ).fetchall()
    return [
        {"function": f if where == "semsearch" else f"{where}.{f}", "calls_per_search": round(calls / n, 2),
         "total_us": round(t / n * 1e3, 1), "self_us": round(own / n * 1e3, 1)}
        for where, f, calls, t, own in rows
    ]  # fmt: skip


def bench(vs: benchdata.VectorSet, args: argparse.Namespace, res: dict[str, Any]) -> None:
    variants = dict(x.split("=", 1) for x in args.variant)
    variants = {v: Path(p) for v, p in variants.items()}
    n, d = vs.base.shape
    qn = min(args.queries, len(vs.queries))
    queries, truth = vs.queries[:qn], vs.truth[:qn]
    dbname = f"semsearch_oh_{vs.name}"
    url = hz.bench_database(dbname)
    db = semsearch.connect(url, upgrade=True)
    with db.connection() as conn:
        res.setdefault("machine", hz.machine(conn))
        for v, path in variants.items():
            install_variant(conn, f"semsearch_{v}", path)
    out: dict[str, Any] = {"rows": n, "dims": d, "queries": qn, "rounds": args.rounds}
    res["datasets"][vs.name] = out
    log(f"[{vs.name}] {n} x {d}: add_many, plan {args.compression}")
    col, load = semsearch_load(db, vs.name, vs, args.model, args.compression)
    out["load"] = {k: v for k, v in load.items() if k != "index_builds_seen"}
    table, _, _ = semsearch_relations(db)
    hz.vacuum(db, table)
    hz.prewarm(db, table)
    run, pids, conns = runners(db, col, list(variants))
    names = tuple(x for x in (*PYTHON, *SQL_LAYERS, *(f"search() {v}" for v in variants)) if x not in args.skip)
    out["plan"] = {"settings": plan_for(col, queries[0]).settings, "statement": plan_for(col, queries[0]).statement}
    log(f"[{vs.name}] interleaved: {qn} queries x {args.rounds} rounds, {len(names)} contenders")
    out["loadavg_before_timing"] = [round(x, 2) for x in os.getloadavg()]
    out["contenders"] = timed(run, pids, queries, truth, args.rounds, names)
    out["loadavg_after_timing"] = [round(x, 2) for x in os.getloadavg()]
    for x in names:
        c = out["contenders"][x]
        log(
            f"  {x:<18} recall {c['recall']:.4f} p50 {c['p50_ms']:.3f} ms ({c['p50_ratio']:.3f}x bare), "
            f"CPU {c['cpu_us']:.0f} us = server {c['server_cpu_us']:.0f} + client {c['client_cpu_us']:.0f}"
        )
    if args.cprofile:
        log(f"[{vs.name}] cProfile of {args.cprofile} col.search calls")
        out["cprofile"] = python_profile(col, queries, args.cprofile)
    if args.functions:
        log(f"[{vs.name}] server time per SQL function, {args.functions} semsearch.search() calls")
        out["functions"] = {"installed": function_profile(db, vs.name, queries, args.functions)}
        for v in variants:
            out["functions"][v] = function_profile(db, vs.name, queries, args.functions, f"semsearch_{v}")
    for conn in conns:
        conn.close()  # connections, and the pool of one
    db.close()
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))


def markdown(res: dict[str, Any]) -> str:
    lib, m = res["library"], res["machine"]
    lines = [
        f"`{res['command']}` ({res['started']}, {res['elapsed_s'] / 60:.1f} min). semsearch at `{lib['head']}`"
        f"{' + uncommitted changes' if lib['library_uncommitted_files'] else ''}; {m.get('cpu')}, {m.get('nproc')} "
        f"cores, load {' '.join(m.get('loadavg_at_start', []))} at start; {m['postgres'].split(' on ')[0]}, "
        f"pgvector {m['pgvector']}.",
    ]
    for ds, r in res["datasets"].items():
        c = r["contenders"]
        lines += [
            "",
            f"### {ds}: {r['rows']:,} rows x {r['dims']}, plan `{r['load']['compression']}` "
            f"(oversample {r['load']['oversample']}, settings {r['plan']['settings']}), {r['queries']} queries x "
            f"{r['rounds']} rounds, load {r['loadavg_before_timing']} before / {r['loadavg_after_timing']} after",
            "",
            "| layer | adds to | p50 ms | p50 / bare | added p50 µs | CPU µs (server + client) | CPU / bare "
            "| added CPU µs | recall@10 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        under = {
            "bare": None,
            "pipelined": "bare",
            "col.search cold": "pipelined",
            "col.search": "col.search cold",
            "ann()": "bare",
            "ann() generic": "ann()",
        }
        under |= {"search_rows()": "ann()", "search()": "search_rows()"}
        for x, v in c.items():
            below = under.get(x, "search()" if x.startswith("search() ") else None)
            below = below if below in c else None
            added = "" if below is None else f"{(v['p50_ms'] - c[below]['p50_ms']) * 1e3:+.0f}"
            more = "" if below is None else f"{v['cpu_us'] - c[below]['cpu_us']:+.0f}"
            lines.append(
                f"| {x} | {below or ''} | {v['p50_ms']:.3f} | {v['p50_ratio']:.3f} | {added} | {v['cpu_us']:.0f} "
                f"({v['server_cpu_us']:.0f} + {v['client_cpu_us']:.0f}) | {v['cpu_ratio']:.3f} | {more} "
                f"| {v['recall']:.4f} |"
            )
        for which, fs in r.get("functions", {}).items():
            lines += ["", f"Server time per `search()` call ({which}), by SQL function (track_functions = 'all'):", ""]
            lines += ["| function | calls per search | total µs | self µs |", "|---|---|---|---|"]
            lines += [f"| {f['function']} | {f['calls_per_search']} | {f['total_us']} | {f['self_us']} |" for f in fs]
        if "cprofile" in r:
            lines += ["", "cProfile of `col.search` (top 25 by own time):", "", "```", r["cprofile"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="jeopardy256", help="comma-separated: jeopardy, jeopardy256")
    ap.add_argument("--compression", help="the collection's plan (bit, halfvec, ...); default: the library's")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="text-embedding-3-small")
    ap.add_argument(
        "--variant", action="append", default=[], help="NAME=FILE: FILE's SQL functions, in schema semsearch_NAME"
    )
    ap.add_argument("--skip", default="", help="comma-separated layers not to run (e.g. ann(),search_rows())")
    ap.add_argument("--cprofile", type=int, default=0, help="col.search calls under cProfile (0: none)")
    ap.add_argument("--functions", type=int, default=0, help="search() calls timed per SQL function (0: none)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/overhead"))
    args = ap.parse_args(argv)
    args.skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    res: dict[str, Any] = {
        "command": "python bench/overhead.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "library": library_state(),
        "datasets": {},
    }
    sets = {"jeopardy": benchdata.jeopardy, "jeopardy256": benchdata.jeopardy_local}
    for x in args.data.split(","):
        bench(sets[x](), args, res)
        res["elapsed_s"] = round(time.time() - started, 1)
        (args.out / "overhead.json").write_text(json.dumps(res, indent=1, default=str))
    (args.out / "overhead.md").write_text(markdown(res))
    log(f"done in {res['elapsed_s'] / 60:.1f} min: {args.out / 'overhead.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
