"""Read throughput with 4 concurrent clients: the primary alone vs the primary + 1 streaming replica.

    python bench/replicas.py                        # Jeopardy 9k, ~2 min
    python bench/replicas.py --rounds 7 --seconds 10

A primary and a standby made by ``pg_basebackup -R`` (tests/replica_cluster.py: the
embedded server's own binaries, each its own data directory and port on 127.0.0.1) hold
the same default collection (Jeopardy's 9,000 real ada-002 vectors, ``add_many`` with
autotune); the standby has replayed everything before timing. Two ``Database`` handles
on the same primary: one with no replica (every search on the primary) and one with
``replicas=[standby]`` (every search on the standby: the primary is only the fallback).
A control, ``replicas=[primary]``, measures the router's own cost. Each round runs
the three in turn (the first rotating), for ``--seconds`` each: 4 client
threads (one process; psycopg releases the GIL while waiting), each searching held-out
queries ``col.search(vector=q, k=10)`` in a loop. Reported: searches per second over the
round, and the p50 of single searches, medians over rounds; and, single-threaded, what
taking a connection costs directly and through the router (no query: its own cost).

On one machine the replica shares the cores with the primary, so this measures what
routing costs or gains here, not what a second machine would add: with 2 cores both
configurations are bounded by the same CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.replica_cluster

import benchdata
import contenders as ct
import numpy as np
import psycopg
from run import library_state

import semsearch
from tests.replica_cluster import ReplicaCluster

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 4
K = 10
OUT = ROOT / "bench" / "results" / "replicas.json"


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def run_clients(col: semsearch.Collection, queries: np.ndarray, seconds: float, offset: int) -> dict[str, Any]:
    """``CLIENTS`` threads searching for ``seconds``; each starts at its own place in the queries."""
    stop = time.monotonic() + seconds
    per_client: list[list[float]] = [[] for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        n = len(queries)
        j = (offset + i * n // CLIENTS) % n
        start.wait()
        while time.monotonic() < stop:
            t = time.perf_counter()
            col.search(vector=queries[j], k=K)
            per_client[i].append((time.perf_counter() - t) * 1000)
            j = (j + 1) % n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    ms = [x for c in per_client for x in c]
    return {"searches": len(ms), "seconds": round(elapsed, 3), "qps": len(ms) / elapsed, "p50_ms": float(np.median(ms))}


def router_cost(primary: semsearch.Database, via_router: semsearch.Database, calls: int = 5000) -> dict[str, float]:
    """Microseconds per call of taking a pooled connection: directly, and through the router (pinned + read)."""

    def plain() -> None:
        with primary.connection():
            pass

    def routed() -> None:
        with via_router.router.pinned():
            via_router.read(lambda conn: None)

    got: dict[str, list[float]] = {"direct_us": [], "router_us": []}
    for _ in range(7):
        for name, f in (("direct_us", plain), ("router_us", routed)):
            t = time.perf_counter()
            for _ in range(calls):
                f()
            got[name].append((time.perf_counter() - t) / calls * 1e6)
    return {name: round(statistics.median(v), 2) for name, v in got.items()}


def server_reads(url: str) -> int:
    """Transactions the server committed in the benchmark's database (its own count, per server)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        return int(
            conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]
        )  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    vs = benchdata.jeopardy(n_queries=args.queries)
    log(f"jeopardy: {len(vs.base)} rows, {len(vs.queries)} queries; load {os.getloadavg()[0]:.1f}")
    with ReplicaCluster.start(Path(tempfile.mkdtemp(prefix="semsearch-bench-replicas-"))) as cluster:
        with semsearch.connect(cluster.primary_url) as loader:
            col = loader.create_collection("jeopardy", dims=1536, model="text-embedding-ada-002", compression=None)
            col.add_many(ct.records(vs.base, vs.texts))
            info = loader.collection("jeopardy").info
        cluster.wait_caught_up()
        log(f"loaded and replayed: compression {info.compression}, oversample {info.oversample:g}")
        primary_only = semsearch.connect(cluster.primary_url, replicas=[])
        with_replica = semsearch.connect(cluster.primary_url, replicas=[cluster.standby_url])
        # a control: the router's own cost, with the primary named as the "replica"
        via_router = semsearch.connect(cluster.primary_url, replicas=[cluster.primary_url])
        cols = {
            "primary": primary_only.collection("jeopardy"),
            "primary+replica": with_replica.collection("jeopardy"),
            "primary via the router": via_router.collection("jeopardy"),
        }
        for c in cols.values():  # warm both servers' caches and both pools
            for q in vs.queries[:200]:
                c.search(vector=q, k=K)
        recall = {
            name: float(
                np.mean(
                    [
                        len(set(ct_keys(c, q)) & set(map(str, t))) / K
                        for q, t in zip(vs.queries[:200], vs.truth[:200], strict=True)
                    ]
                )
            )
            for name, c in cols.items()
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cols}
        before = {"primary": server_reads(cluster.primary_url), "standby": server_reads(cluster.standby_url)}
        for r in range(args.rounds):
            order = list(cols)[r % len(cols) :] + list(cols)[: r % len(cols)]
            for name in order:
                got = run_clients(cols[name], vs.queries, args.seconds, offset=r * 97)
                runs[name].append(got)
                log(f"round {r + 1} {name}: {got['qps']:.0f} searches/s, p50 {got['p50_ms']:.2f} ms")
        after = {"primary": server_reads(cluster.primary_url), "standby": server_reads(cluster.standby_url)}
        replica_reads = with_replica.replicas[0].reads
        overhead = router_cost(primary_only, via_router)
        log(f"router cost per search: {overhead}")
        for db in (primary_only, with_replica, via_router):
            db.close()

    summary = {
        name: {
            "qps_median": round(statistics.median(x["qps"] for x in rs), 1),
            "p50_ms_median": round(statistics.median(x["p50_ms"] for x in rs), 3),
            "qps_rounds": [round(x["qps"], 1) for x in rs],
        }
        for name, rs in runs.items()
    }
    result = {
        "what": "col.search(vector=q, k=10) with 4 client threads; primary alone vs primary + 1 streaming replica",
        "data": f"jeopardy {len(vs.base)} rows (ada-002 1536 dims), {len(vs.queries)} held-out queries",
        "collection": {"compression": info.compression, "oversample": info.oversample},
        "recall_at_10_first_200_queries": recall,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "clients": CLIENTS,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "summary": summary,
        "replica_vs_primary_qps": round(summary["primary+replica"]["qps_median"] / summary["primary"]["qps_median"], 3),
        "searches_answered_by_the_replica": replica_reads,
        "transactions_per_server_during_runs": {k: after[k] - before[k] for k in after},
        "router_cost_per_call": overhead,
        "runs": runs,
        "library": library_state(),
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}: {json.dumps(summary)}")


def ct_keys(col: semsearch.Collection, q: np.ndarray) -> list[str]:
    return [str(k) for k in col.search(vector=q, k=K).keys]


if __name__ == "__main__":
    main()
