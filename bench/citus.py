"""One server against a 2-worker Citus cluster, same rows: latency and throughput with 4 clients.

    python bench/citus.py                     # Jeopardy 9k, 8 tenants, 3 rounds of 200 queries per contender

Starts its own cluster (tests/citus/cluster.py, Citus built into the embedded server by
``make test-citus``) in a temporary directory and stops it at the end; the single node
is the embedded server (``SEMSEARCH_DATA_DIR``). The same 9,000 Jeopardy ada-002 vectors
(``benchdata.jeopardy``, 1,000 held-out queries) go into four collections, all default
plan (bit + exact rescore), no autotune, oversample stored by one ``tune()`` on the
single node and copied to the others:

- ``single``: plain table on the embedded server, ``col.search(vector=q, k=10)``
- ``single+tenant``: the same table, ``tenant=`` (rows spread over 8 tenants)
- ``cluster fan-out``: distributed by key, every search asks all 32 shards (Citus' default)
- ``cluster fan-out, 4 shards``: the same with ``citus.shard_count = 4`` (set through the
  connection URL's ``options``), i.e. one shard per worker core
- ``cluster tenant``: distributed by tenant, ``tenant=`` routes a search to one shard

Each round runs every contender in turn (the first rotating) with 4 client threads
sharing the queries; reported are, per contender, the median over rounds of the p50
latency and of the throughput (queries/s), and recall@10 against exact search (over
the tenant's rows for the tenant contenders).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "citus"))

import benchdata
import cluster
import numpy as np

import semsearch

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 4
TENANTS = 8
K = 10


def _load(col: semsearch.Collection, base: np.ndarray, texts: list[str]) -> float:
    started = time.perf_counter()
    col.add_many(
        (
            {"key": f"j{i}", "content": t, "embedding": v, "tenant": f"t{i % TENANTS}"}
            for i, (t, v) in enumerate(zip(texts, base, strict=True))
        ),
        autotune=False,
    )
    return time.perf_counter() - started


def _run(
    col: semsearch.Collection, queries: np.ndarray, tenants: list[str | None]
) -> tuple[list[float], float, list[list[str]]]:
    """Every query once, 4 threads; (per-query ms, queries/s, keys)."""

    def one(i: int) -> tuple[float, list[str]]:
        t0 = time.perf_counter()
        hits = col.search(vector=queries[i], k=K, tenant=tenants[i])
        return (time.perf_counter() - t0) * 1000, [h.key for h in hits]

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        got = list(pool.map(one, range(len(queries))))
    wall = time.perf_counter() - started
    return [g[0] for g in got], len(queries) / wall, [g[1] for g in got]


def _recall(keys: list[list[str]], queries: np.ndarray, base: np.ndarray, tenants: list[str | None]) -> float:
    total = 0.0
    for got, q, t in zip(keys, queries, tenants, strict=True):
        idx = np.arange(len(base)) if t is None else np.arange(int(t[1:]), len(base), TENANTS)
        best = idx[np.argsort(-(base[idx] @ q))[:K]]
        total += len(set(got) & {f"j{i}" for i in best}) / K
    return total / len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200, help="queries per contender per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "citus.json")
    args = ap.parse_args()
    vs = benchdata.jeopardy()
    queries = vs.queries[: args.queries]
    spread: list[str | None] = [f"t{i % TENANTS}" for i in range(len(queries))]
    none: list[str | None] = [None] * len(queries)

    root = Path(tempfile.mkdtemp(prefix="semsearch-citus-bench-"))
    root.chmod(0o755)
    url = cluster.start(root / "cluster")
    try:
        single_db = semsearch.connect(max_connections=CLIENTS)
        cluster_db = semsearch.connect(url, max_connections=CLIENTS)
        few_db = semsearch.connect(url + "?options=-c%20citus.shard_count%3D4", max_connections=CLIENTS)
        names_ = ("bench_citus", "bench_citus_t", "bench_citus_4")
        for d in (single_db, cluster_db):
            for n in names_:
                d.drop_collection(n, missing_ok=True)
        opts: dict[str, Any] = {"dims": 1536, "model": "text-embedding-ada-002", "autotune": False}
        single = single_db.create_collection("bench_citus", **opts)
        fanout = cluster_db.create_collection("bench_citus", distribute_by="key", **opts)
        routed = cluster_db.create_collection("bench_citus_t", distribute_by="tenant", **opts)
        few = few_db.create_collection("bench_citus_4", distribute_by="key", **opts)
        made = (("single", single), ("fan-out", fanout), ("tenant", routed), ("fan-out, 4 shards", few))
        load = {name: _load(col, vs.base, vs.texts) for name, col in made}
        tuned = single.tune(sample=100)
        for col in (fanout, routed, few):
            cluster_db.alter_collection(col.name, oversample=tuned.oversample)
        contenders = {
            "single": (single_db.collection("bench_citus"), none),
            "single+tenant": (single_db.collection("bench_citus"), spread),
            "cluster fan-out": (cluster_db.collection("bench_citus"), none),
            "cluster tenant": (cluster_db.collection("bench_citus_t"), spread),
            "cluster fan-out, 4 shards": (few_db.collection("bench_citus_4"), none),
        }
        for col, tenants in contenders.values():  # warm caches and connections
            _run(col, queries, tenants)
        p50: dict[str, list[float]] = {n: [] for n in contenders}
        qps: dict[str, list[float]] = {n: [] for n in contenders}
        recall: dict[str, float] = {}
        names = list(contenders)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                col, tenants = contenders[name]
                ms, rate, keys = _run(col, queries, tenants)
                p50[name].append(statistics.median(ms))
                qps[name].append(rate)
                recall.setdefault(name, _recall(keys, queries, vs.base, tenants))
        load_avg = os.getloadavg()
        result = {
            "data": f"Jeopardy {len(vs.base)} rows (ada-002, 1536 dims), {len(queries)} held-out queries, "
            f"{TENANTS} tenants",
            "plan": f"bit + exact rescore, oversample {tuned.oversample:g} (tuned on the single node, copied)",
            "clients": CLIENTS,
            "rounds": args.rounds,
            "shards": {"default": 32, "fan-out, 4 shards": 4},
            "load_seconds": {k: round(v, 1) for k, v in load.items()},
            "load_average_after": [round(x, 2) for x in load_avg],
            "results": {
                n: {
                    "p50_ms": round(statistics.median(p50[n]), 2),
                    "qps": round(statistics.median(qps[n]), 1),
                    "recall_at_10": round(recall[n], 4),
                    "p50_ms_rounds": [round(x, 2) for x in p50[n]],
                    "qps_rounds": [round(x, 1) for x in qps[n]],
                }
                for n in names
            },
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["results"], indent=2))
        for d in (single_db, cluster_db):
            for n in names_:
                d.drop_collection(n, missing_ok=True)
        for d in (single_db, cluster_db, few_db):
            d.close()
    finally:
        cluster.stop(root / "cluster")


if __name__ == "__main__":
    main()
