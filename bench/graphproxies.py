"""Graph-only plans: recall@10 vs ef_search of proxy queries against held-out queries, and tune() on them.

    python bench/graphproxies.py --data jeopardy --plan halfvec --variants held,shaped:4:2,shaped:50:10
    python bench/graphproxies.py --data synthetic10000 --plan halfvec --tune 10:50:1000,2:4:200

Data: ``jeopardy`` (ada-002, 1,536 dims), ``jeopardy256`` (local model, 256 dims), ``cranfield`` (local
model, 256 dims) or ``synthetic<N>`` (bench/benchdata.py's scale set, seed 1). A variant is ``held`` (the
set's held-out queries), ``rows`` (sampled rows left out of their own answers), or
``<iso|shaped>:<noise rows>:<partners>``: :func:`semsearch.workload.proxy_queries` with those
``noise_rows`` / ``partners`` (tune.py: shaped:16:10 for halfvec and none). Per variant: the median similarity
of the queries' nearest and 10th-nearest rows, and recall@10 at 10 candidates per ef_search.
``--tune P:R:S[:seed]``: tune() with proxies of P partners and R noise rows, S of them (proxy seed, default
0), then the held-out recall at the stored ef_search, and the fewest ef_search reaching 0.99 held out
(bisection on the held-out queries, once per build). Recall only; no latencies (the machine is shared).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import autotune as bench_autotune  # bench/autotune.py: the held-out oracle
import benchdata  # bench/ is on sys.path when run as a script
import numpy as np

import semsearch
import semsearch.tune as tuning
from semsearch.workload import Workload, proxy_queries, query_vectors

EFS = [10, 20, 30, 40, 60, 80, 100, 120, 160, 200]


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def load(db: semsearch.Database, which: str, plan: str) -> tuple[Any, np.ndarray]:
    """(collection loaded with autotune off, held-out query vectors)."""
    name = f"bench_gp_{which}_{plan}"
    db.drop_collection(name, missing_ok=True)
    if which in ("jeopardy", "jeopardy256"):
        vs = benchdata.jeopardy(n_queries=1000) if which == "jeopardy" else benchdata.jeopardy_local(n_queries=1000)
        col = db.create_collection(name, dims=vs.base.shape[1], model="label", compression=plan, autotune=False)
        rows = enumerate(zip(vs.texts, vs.base, strict=True))
        col.add_many({"key": str(i), "content": t, "embedding": v} for i, (t, v) in rows)
        return col, vs.queries
    if which.startswith("synthetic"):
        vs = benchdata.synthetic(int(which.removeprefix("synthetic")), n_queries=1000)
        col = db.create_collection(name, dims=1536, model="label", compression=plan, autotune=False)
        col.add_many(({"key": str(i), "content": "x", "embedding": v} for i, v in enumerate(vs.base)), bulk=True)
        return col, vs.queries
    data = benchdata.cranfield()
    col = db.create_collection(name, model="local", dims=256, compression=plan, autotune=False)
    col.add_many({"key": i, "content": t} for i, t in zip(data["doc_ids"], data["doc_texts"], strict=True))
    texts = [" ".join(q.split()) for q in data["queries"]]
    return col, np.asarray(col.embedder.embed(texts), dtype=np.float32)


def curve(col: Any, queries: np.ndarray, variant: str, n: int) -> None:
    if variant == "held":
        w = Workload(col, [str(i) for i in range(len(queries))], queries[:n], k=10)
    elif variant == "rows":
        w = Workload(col, *query_vectors(col, None, sample=200, seed=0), k=10, exclude_self=True)
    else:
        kind, rows, partners = variant.split(":")
        picked = proxy_queries(col, 200, seed=0, shaped=kind == "shaped", noise_rows=int(rows), partners=int(partners))
        w = Workload(col, *picked, k=10)
    s1 = np.median([r.hits[0].score for r in w.exact])
    s10 = np.median([r.hits[-1].score for r in w.exact])
    recalls = [w.run(oversample=1.0, ef_search=ef).recall for ef in EFS]
    points = " ".join(f"{e}:{r:.3f}" for e, r in zip(EFS, recalls, strict=True))
    log(f"{variant:14s} s1 {s1:.4f} s10 {s10:.4f} {points}")


def tuned(col: Any, w: Workload, config: str, fewest: dict[str, Any]) -> None:
    partners, rows, sample, seed = ([int(x) for x in config.split(":")] + [0])[:4]
    kept = tuning.GRAPH_PROXY_PARTNERS, tuning.GRAPH_PROXY_NOISE_ROWS
    tuning.GRAPH_PROXY_PARTNERS, tuning.GRAPH_PROXY_NOISE_ROWS = partners, rows
    try:
        r = tuning.tune(col, target_recall=0.99, k=10, sample=sample, seed=seed)
    finally:
        tuning.GRAPH_PROXY_PARTNERS, tuning.GRAPH_PROXY_NOISE_ROWS = kept
    held = w.run(oversample=r.oversample, ef_search=r.ef_search).recall
    log(f"tune partners {partners} noise rows {rows}, {sample} proxies, seed {seed}: ef_search {r.ef_search} "
        f"(estimate {r.recall:.4f}), held out {held:.4f}; fewest reaching 0.99 held out {fewest}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="jeopardy")
    ap.add_argument("--plan", default="halfvec")
    ap.add_argument("--variants", default="held,rows,iso:4:2,shaped:4:2,shaped:50:10")
    ap.add_argument("--held-out", type=int, default=500, help="held-out queries for the curves")
    ap.add_argument("--tune", default="", help="comma-separated partners:noise_rows:proxies[:seed]")
    args = ap.parse_args()
    with semsearch.connect() as db:
        col, queries = load(db, args.data, args.plan)
        log(f"{args.data}: {col.count()} rows, {args.plan}")
        for variant in [v for v in args.variants.split(",") if v and not args.tune]:
            curve(col, queries, variant, args.held_out)
        configs = [c for c in args.tune.split(",") if c]
        if configs:  # one build: the held-out oracle is measured once for every config
            held = Workload(col, [str(i) for i in range(len(queries))], queries, k=10)
            fewest = bench_autotune.oracle_ef(held)
            log(f"fewest ef_search reaching 0.99 held out: {fewest}")
        for config in configs:
            tuned(col, held, config, fewest)
        db.drop_collection(col.name)


if __name__ == "__main__":
    main()
