"""nDCG@10 of full-text, dense and hybrid search on Cranfield with the local model.

    python bench/hybrid_cranfield.py [--out bench/results/hybrid_cranfield.json]

Cranfield as bench/run.py reads it (title + abstract; gain 5 - grade), wordllama
256-d, the default `halfvec` plan; nDCG@10 is the library's (linear gain, as
trec_eval's ndcg_cut).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchdata import cranfield  # bench/ is on sys.path when run as a script

import semsearch
from semsearch.evaluate import ndcg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/hybrid_cranfield.json")
    args = ap.parse_args()
    data = cranfield()
    with semsearch.connect() as db:
        db.drop_collection("bench_cranfield_hybrid", missing_ok=True)
        col = db.create_collection("bench_cranfield_hybrid", model="local", dims=256, compression="halfvec")
        col.add_many({"key": i, "content": t} for i, t in zip(data["doc_ids"], data["doc_texts"], strict=True))
        scores: dict[str, list[float]] = {"text": [], "dense": [], "dense exact": [], "hybrid": []}
        started = time.perf_counter()
        for n, query in enumerate(data["queries"], start=1):  # the n-th query in file order is query n
            rel = data["qrels"].get(n)
            if not rel:
                continue
            text = " ".join(query.split())
            scores["text"].append(ndcg(col.search(text, k=10, mode="text").keys, rel))
            scores["dense"].append(ndcg(col.search(text, k=10).keys, rel))
            scores["dense exact"].append(ndcg(col.search(text, k=10, exact=True).keys, rel))
            scores["hybrid"].append(ndcg(col.search(text, k=10, mode="hybrid").keys, rel))
        db.drop_collection("bench_cranfield_hybrid")
    result = {
        "queries": len(scores["text"]),
        "ndcg_at_10": {k: round(float(np.mean(v)), 4) for k, v in scores.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
