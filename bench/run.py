"""semsearch benchmark: compressed two-stage plans vs pgvector HNSW on the full vector.

    python bench/run.py --quick            # make bench: Jeopardy 10k + 50k scale set + Cranfield
    python bench/run.py --full             # make bench-full: 250k scale set, full sweeps (~40 min)
    python bench/run.py --quick --out bench/results/mine

One script, one run, one machine: every contender is loaded, indexed (m=16,
ef_construction=64, the same maintenance_work_mem) and queried side by side. The run
uses its own database (``semsearch_bench``, dropped and recreated) on the server
semsearch would use (``SEMSEARCH_DATABASE_URL`` or the embedded one under
``SEMSEARCH_DATA_DIR``). Writes results.json, PNG plots and results.md to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata
import contenders as ct
import explain
import harness as hz
import numpy as np
import report
from tqdm import tqdm

import semsearch
from semsearch.evaluate import ndcg

ROOT = Path(__file__).resolve().parents[1]
MODES: dict[str, dict[str, Any]] = {
    # make bench: a few minutes on 2 cores
    "quick": {
        "scale": 50_000,
        "queries": 300,
        "exact_queries": 50,
        "oversamples": [1, 2, 4, 8, 16, 32, 64],
        "efs": [10, 20, 40, 80, 160, 320, 640, 1000],
        "saturate": True,
        "plans": {
            "jeopardy": ["halfvec", "mrl:512", "mrl:256", "mrl-bit:512", "none", "bit->mrl:512"],
            "scale": ["halfvec", "bit->mrl:512"],
        },
    },
    # make bench-full: about 35-40 minutes on 2 cores
    "full": {
        "scale": 250_000,
        "queries": 500,
        "exact_queries": 30,
        "oversamples": [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
        "efs": [10, 20, 40, 60, 80, 100, 120, 160, 200, 300, 400, 600, 800, 1000],
        "saturate": False,
        "plans": {
            "jeopardy": ["halfvec", "mrl:512", "mrl:256", "mrl-bit:512", "none", "bit->mrl:512"],
            "scale": ["halfvec", "mrl:512", "mrl:256", "mrl-bit:512", "bit->mrl:512"],
        },
    },
}
TARGET = 0.99


def log(msg: str) -> None:
    tqdm.write(time.strftime("%H:%M:%S ") + msg)


def library_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "semsearch")
    where = Path(semsearch.__file__).resolve().parents[1]
    # a digest of the library source actually imported (it may be a snapshot of a dirty tree)
    digest = hashlib.sha1()
    for f in sorted((where / "semsearch").rglob("*")):
        if f.is_file() and f.suffix in (".py", ".sql"):
            digest.update(f.relative_to(where).as_posix().encode() + f.read_bytes())
    return {
        "semsearch_file": semsearch.__file__,
        "head": git("rev-parse", "--short", "HEAD"),
        "library_uncommitted_files": len(dirty.splitlines()) if dirty else 0,
        "source_sha1": digest.hexdigest()[:12],
    }


def summarise(entry: dict[str, Any], default_knob: float | None) -> None:
    pts = entry["points"]
    entry["default"] = hz.at_knob(pts, default_knob) if default_knob is not None else pts[0]
    entry["at_target"] = hz.smallest_reaching(pts, TARGET)


def measure_one(
    entry: dict[str, Any], search: hz.Search, knobs: list[Any], vs: benchdata.VectorSet, cfg: dict[str, Any], name: str
) -> None:
    q, t = vs.queries[: cfg["queries"]], vs.truth[: cfg["queries"]]
    entry["points"] = hz.sweep(name, search, knobs, q, t, saturate=cfg["saturate"], floor=entry.get("default_knob"))
    summarise(entry, entry.get("default_knob"))


def offered(plans: list[str], dims: int) -> list[str]:
    """The plans this version of the library accepts (funnels arrived later than the rest)."""
    from semsearch.errors import CompressionPlanError
    from semsearch.plans import Plan

    out = []
    for plan in plans:
        try:
            Plan.parse(plan, dims=dims)
        except CompressionPlanError:
            log(f"  skipping {plan}: this semsearch does not offer it")
            continue
        out.append(plan)
    return out


def grid(base: list[float], extra: float) -> list[float]:
    return sorted(set(base) | {extra})


def bench_vectors(
    db: semsearch.Database,
    url: str,
    vs: benchdata.VectorSet,
    plans: list[str],
    cfg: dict[str, Any],
    tag: str,
    res: dict[str, Any],
    save: Callable[[], None],
) -> dict[str, Any]:
    """Fill ``res`` contender by contender, saving after each (a killed run keeps what it measured)."""
    n, d = vs.base.shape
    res.update(rows=n, dims=d, queries=min(cfg["queries"], len(vs.queries)), notes=vs.notes, ingest={}, contenders={})
    mem = cfg["build_memory"]
    log(f"[{vs.name}] {n} x {d}: semsearch default plan via add_many(bulk=True)")
    src, res["ingest"]["semsearch_bulk"] = ct.semsearch_bulk(db, f"{tag}_default", None, vs.base, vs.texts)
    default_plan = src.info.compression
    res["default_plan"] = default_plan
    log(
        f"  load {res['ingest']['semsearch_bulk']['load_rows_per_s']:.0f} rows/s, load+index "
        f"{res['ingest']['semsearch_bulk']['load_index_rows_per_s']:.0f} rows/s"
    )

    def semsearch_entry(col: semsearch.Collection, plan: str) -> None:
        key = f"semsearch {plan}"
        build = ct.semsearch_build(db, col, mem)
        log(f"  {key}: index built in {build['seconds']:.1f} s")
        entry: dict[str, Any] = {
            "family": "semsearch",
            "plan": plan,
            "knob": "oversample",
            "default_knob": float(col.info.oversample),
            "build": build,
            "sizes": hz.sizes(db, ct.table_of(col), ct.index_of(col)),
        }
        entry["prewarm_s"] = hz.prewarm(db, ct.table_of(col))
        knobs = grid(cfg["oversamples"], entry["default_knob"])
        if "->" in plan:
            # a funnel's middle stage keeps a quarter of the candidates: it needs more of them
            knobs = sorted(set(knobs) | {96.0, 128.0})
        measure_one(entry, ct.semsearch_search(col), knobs, vs, cfg, key)
        res["contenders"][key] = entry
        save()

    semsearch_entry(src, default_plan)
    default_entry = res["contenders"][f"semsearch {default_plan}"]
    # exact sequential scan: the ground truth's twin inside Postgres (a subset: it is slow)
    sub = dict(cfg, queries=cfg["exact_queries"])
    exact: dict[str, Any] = {
        "family": "exact",
        "plan": "exact=True",
        "knob": None,
        "default_knob": None,
        "sizes": hz.sizes(db, ct.table_of(src), None),
    }
    measure_one(exact, ct.semsearch_search(src, exact=True), [None], vs, sub, "exact scan")
    res["contenders"]["exact scan"] = exact
    # profile of the default plan before its collection goes
    tuned = default_entry["at_target"]["knob"] if default_entry["at_target"] else None
    res["profile"] = [
        explain.profile(url, src, vs.queries, o) for o in sorted({default_entry["default_knob"], tuned or 64.0, 64.0})
    ]
    for p in res["profile"]:
        log(f"  profile oversample {p['oversample']:g}: {p['medians']} client p50 {p['client_p50_ms']}")

    for plan in offered(plans, d):
        if plan == default_plan:
            continue
        log(f"[{vs.name}] semsearch {plan}: copy rows server-side, build, sweep")
        col = ct.semsearch_copy(
            db, f"{tag}_{plan.replace('->', '_to_').replace(':', '_').replace('-', '_')}", plan, src
        )
        semsearch_entry(col, plan)
        db.drop_collection(col.name)

    log(f"[{vs.name}] pgvector by hand: COPY into a vector({d}) table")
    res["ingest"]["pgvector_copy"] = ct.pgvector_load(url, vs.base, vs.texts)
    hz.vacuum(db, ct.PG_TABLE)
    for kind in ("vector", "halfvec"):
        ddl, iname, _ = ct.pgvector_index_sql(kind, d)
        b = hz.timed_build(db, ddl, memory=mem)
        key = f"pgvector hnsw {kind}"
        log(f"  {key}: index built in {b.seconds:.1f} s {b.notices or ''}")
        with db.connection() as conn:
            text = ddl.as_string(conn)
        entry = {
            "family": "pgvector",
            "plan": f"{kind}({d}) {kind}_cosine_ops",
            "knob": "ef_search",
            "default_knob": 40.0,
            "build": {"seconds": b.seconds, "memory": mem, "notices": b.notices, "ddl": text},
            "sizes": hz.sizes(db, ct.PG_TABLE, iname),
        }
        entry["prewarm_s"] = hz.prewarm(db, ct.PG_TABLE)
        search, conn, query = ct.pgvector_search(url, kind, d)
        entry["query_plan"] = ct.plan_lines(conn, query, {"q": vs.queries[0]})
        log("  plan: " + " / ".join(x.strip() for x in entry["query_plan"][:2]))
        measure_one(entry, search, cfg["efs"], vs, cfg, key)
        for pt in entry["points"]:
            pt["uses_index"] = search.uses_index.get(int(pt["knob"]))  # type: ignore[attr-defined]
        entry["prepared"] = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'SELECT id%'"
        ).fetchall()
        conn.close()
        res["contenders"][key] = entry
        save()
        if kind == "vector":
            load = res["ingest"]["pgvector_copy"]
            load["index_s"] = b.seconds
            load["load_index_s"] = round(load["load_s"] + b.seconds, 3)
            load["load_index_rows_per_s"] = round(n / load["load_index_s"], 1)
        with db.connection() as c2:
            c2.execute(f"DROP INDEX {iname}")
    with db.connection() as conn:
        conn.execute(f"DROP TABLE {ct.PG_TABLE}")
    db.drop_collection(src.name)
    res["ratios"] = report.ratios(res)
    return res


def bench_explain10k(db: semsearch.Database, url: str) -> dict[str, Any]:
    """The issue-2 check: SQL and EXPLAIN (ANALYZE, BUFFERS) of one search on 10,000 rows."""
    vectors, texts = benchdata.jeopardy_raw()
    col, _ = ct.semsearch_bulk(db, "explain10k", None, vectors, texts)
    hz.vacuum(db, ct.table_of(col))
    hz.prewarm(db, ct.table_of(col))
    for q in vectors[:20]:
        col.search(vector=q, k=10)
    out = explain.explain_text(url, col, vectors[0])
    db.drop_collection(col.name)
    return out


def bench_cranfield(url: str) -> dict[str, Any]:
    """nDCG@10 of exact vs compressed plans, and end-to-end ingest through the local embedder.

    Its own Database: ingest's per-connection staging table keeps the dims of the first
    collection written through a pooled connection (1536 here), so a 256-dim collection
    on the same pool fails with "expected 1536 dimensions, not 256".
    """
    from semsearch.embeddings.local import LocalEmbedder

    db = semsearch.connect(url)

    c = benchdata.cranfield()
    emb = LocalEmbedder(256)
    t0 = time.perf_counter()
    emb.embed(["warm up the model"])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    docs = emb.embed(c["doc_texts"])
    embed_s = time.perf_counter() - t0
    qv = emb.embed(c["queries"])
    col = db.create_collection("cran_default", embedder=emb)
    t0 = time.perf_counter()
    col.add_many(({"key": i, "content": t} for i, t in zip(c["doc_ids"], c["doc_texts"], strict=False)), bulk=True)
    e2e_s = time.perf_counter() - t0
    n = len(c["doc_ids"])
    res: dict[str, Any] = {
        "docs": n,
        "queries": len(c["queries"]),
        "judged_queries": len(c["qrels"]),
        "embedder": repr(emb),
        "default_plan": col.info.compression,
        "ingest": {
            "model_load_s": round(load_s, 3),
            "embed_only_texts_per_s": round(n / embed_s, 1),
            "end_to_end_texts_per_s": round(n / e2e_s, 1),
            "end_to_end_s": round(e2e_s, 3),
            "path": "Collection.add_many(bulk=True) of texts: embed + COPY + index build",
        },
        "plans": {},
    }
    truth = benchdata.exact_topk(docs, qv)
    ids = c["doc_ids"]

    def evaluate(col: semsearch.Collection, label: str, **kw: Any) -> None:
        found, nd, lat = [], [], []
        for i, q in enumerate(qv):
            t = time.perf_counter()
            hits = col.search(vector=q, k=10, **kw)
            lat.append(time.perf_counter() - t)
            keys = [h.key for h in hits]
            found.append([ids.index(k) for k in keys])
            if i + 1 in c["qrels"]:
                nd.append(ndcg(keys, c["qrels"][i + 1], 10))
        res["plans"][label] = {
            "ndcg_at_10": round(float(np.mean(nd)), 4),
            "recall_at_10_vs_exact": round(hz.recall_at(found, truth), 4),
            "p50_ms": round(float(np.median(lat)) * 1e3, 3),
        }

    evaluate(col, "exact scan", exact=True)
    for plan in ["halfvec", "mrl:128", "mrl:64", "bit", "mrl-bit:128", "none"]:
        pc = (
            col
            if plan == col.info.compression
            else db.create_collection(
                f"cran_{plan.replace(':', '_').replace('-', '_')}", embedder=emb, compression=plan
            )
        )
        if pc is not col:
            pc.add_many(
                ({"key": i, "content": t, "embedding": v} for i, t, v in zip(ids, c["doc_texts"], docs, strict=False)),
                bulk=True,
            )
        evaluate(pc, f"semsearch {plan} (default oversample {pc.info.oversample:g})")
        evaluate(pc, f"semsearch {plan} (oversample 1)", oversample=1)
        if pc is not col:
            db.drop_collection(pc.name)
    db.drop_collection(col.name)
    db.close()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="Jeopardy 10k + 50k scale set (default)")
    mode.add_argument("--full", action="store_true", help="250k scale set and full sweeps")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results/<mode>)")
    ap.add_argument("--scale", type=int, help="rows of the synthetic scale set")
    ap.add_argument("--queries", type=int, help="timed queries per setting")
    ap.add_argument("--build-memory", default="4GB", help="maintenance_work_mem for every build")
    ap.add_argument("--skip", nargs="*", default=[], choices=["jeopardy", "scale", "cranfield", "explain"])
    ap.add_argument("--replot", type=Path, metavar="DIR", help="only redraw plots and results.md from DIR/results.json")
    args = ap.parse_args(argv)
    if args.replot:
        report.write(json.loads((args.replot / "results.json").read_text()), args.replot)
        return 0
    name = "full" if args.full else "quick"
    cfg = dict(MODES[name], build_memory=args.build_memory)
    if args.scale:
        cfg["scale"] = args.scale
    if args.queries:
        cfg["queries"] = args.queries
    out = args.out or ROOT / "bench" / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    url = hz.bench_database()
    db = semsearch.connect(url, upgrade=True)
    with db.connection() as conn:
        results: dict[str, Any] = {
            "mode": name,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": hz.machine(conn),
            "library": library_state(),
            "config": {k: v for k, v in cfg.items()},
            "datasets": {},
        }
    log(f"mode {name}: {json.dumps({k: cfg[k] for k in ('scale', 'queries', 'build_memory')})}")

    def save() -> None:
        results["elapsed_s"] = round(time.time() - started, 1)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))

    if "jeopardy" not in args.skip:
        vs = benchdata.jeopardy()
        res = results["datasets"].setdefault("jeopardy", {})
        bench_vectors(db, url, vs, cfg["plans"]["jeopardy"], cfg, "jeop", res, save)
        save()
    if "explain" not in args.skip:
        log("EXPLAIN of one two-stage search on 10,000 rows")
        results["explain_10k"] = bench_explain10k(db, url)
        save()
    if "scale" not in args.skip:
        log(f"generating the scale set: {cfg['scale']} rows")
        vs = benchdata.synthetic(cfg["scale"])
        res = results["datasets"].setdefault(vs.name, {})
        bench_vectors(db, url, vs, cfg["plans"]["scale"], cfg, "scale", res, save)
        results["scale_set"] = vs.name
        del vs
        save()
    if "cranfield" not in args.skip:
        log("Cranfield with the local embedder")
        results["cranfield"] = bench_cranfield(url)
        save()
    results["goal"] = report.goal(results)
    save()
    report.write(results, out)
    db.close()
    log(f"done in {results['elapsed_s'] / 60:.1f} min: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
