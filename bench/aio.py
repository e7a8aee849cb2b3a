"""semsearch.aio against the sync API: per-search latency, interleaved, and throughput under concurrency.

    python bench/aio.py                 # 62 real 1536-dim vectors (tests/data/movies-es), seconds
    python bench/aio.py --queries 2000 --concurrency 50

Both run the same statements on the same collection; the difference is the driver's
sync or asyncio path and the event loop. The searches take turns (sync, async) so a
machine shared with other work slows both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

import semsearch
import semsearch.aio

DATA = Path(__file__).parents[1] / "tests" / "data" / "movies-es" / "peliculas_text-embedding-3-small-1536.json"


async def run(queries: int, concurrency: int, pool: int) -> dict[str, float]:
    full = json.loads(DATA.read_text())
    titles = sorted(full)
    vecs = np.array([full[t] for t in titles])
    db = semsearch.connect(max_connections=pool)
    db.drop_collection("bench_aio", missing_ok=True)
    col = db.create_collection("bench_aio", dims=1536, model="label", compression="bit")
    col.add(titles, titles, embeddings=vecs)
    try:
        async with await semsearch.aio.connect(max_connections=pool) as adb:
            acol = await adb.collection("bench_aio")
            sync_ms, async_ms = [], []
            for i in range(queries):
                q = vecs[i % len(vecs)]
                started = time.perf_counter()
                col.search(vector=q, k=10)
                sync_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await acol.search(vector=q, k=10)
                async_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            for i in range(0, queries, concurrency):
                batch = range(i, min(i + concurrency, queries))
                await asyncio.gather(*(acol.search(vector=vecs[j % len(vecs)], k=10) for j in batch))
            async_qps = queries / (time.perf_counter() - started)
    finally:
        db.drop_collection("bench_aio")
        db.close()
    warm = queries // 10
    return {
        "sync_p50_ms": statistics.median(sync_ms[warm:]),
        "async_p50_ms": statistics.median(async_ms[warm:]),
        "sync_sequential_qps": 1000 / statistics.mean(sync_ms[warm:]),
        f"async_qps_{concurrency}_concurrent_pool_{pool}": async_qps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(run(args.queries, args.concurrency, args.pool))
    print(json.dumps({k: round(v, 3) for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
