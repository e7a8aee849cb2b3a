"""Funnel (bit -> mrl:<d> -> full) against two-stage bit, on the real Jeopardy vectors.

    python bench/funnel.py [--out bench/results/funnel.json]

Same rows, queries and ground truth as bench/run.py's Jeopardy set; each plan in
its own collection; recall@10 against exact and median latency per setting.
ada-002 is not Matryoshka-trained, so its mrl copies are a weak middle stage:
this measures the mechanism, not the best case (text-embedding-3 vectors in TOAST).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchdata import jeopardy  # bench/ is on sys.path when run as a script

import semsearch


def run(col: semsearch.Collection, queries: np.ndarray, truth: np.ndarray, oversample: float) -> dict[str, float]:
    for q in queries[:20]:
        col.search(vector=q, k=10, oversample=oversample)  # warm-up
    times, recalls = [], []
    for q, t in zip(queries, truth, strict=True):
        started = time.perf_counter()
        keys = col.search(vector=q, k=10, oversample=oversample).keys
        times.append((time.perf_counter() - started) * 1000)
        recalls.append(len({int(k) for k in keys} & set(t[:10].tolist())) / 10)
    return {
        "oversample": oversample,
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "p50_ms": round(float(np.median(times)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/funnel.json")
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    vs = jeopardy()
    queries, truth = vs.queries[: args.queries], vs.truth[: args.queries]
    plans = {"bit": [8, 16, 24, 32], "bit->mrl:512": [32, 64, 96, 128]}
    out: dict[str, list[dict[str, float]]] = {}
    with semsearch.connect() as db:
        for plan, oversamples in plans.items():
            db.drop_collection("bench_funnel", missing_ok=True)
            col = db.create_collection("bench_funnel", dims=1536, model="ada-002", compression=plan)
            col.add_many({"key": i, "content": vs.texts[i], "embedding": vs.base[i]} for i in range(len(vs.base)))
            out[plan] = [run(col, queries, truth, o) for o in oversamples]
            print(plan, out[plan], flush=True)
        db.drop_collection("bench_funnel")
    Path(args.out).write_text(
        json.dumps({"rows": len(vs.base), "queries": len(queries), "plans": out}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
