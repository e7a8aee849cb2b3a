"""nDCG@10 of full-text, dense and hybrid search on Cranfield with the local model.

    python bench/hybrid_cranfield.py [--out bench/results/hybrid_cranfield.json]

Cranfield (1,400 aeronautics abstracts, 225 queries, graded judgments) from
../shared/data/cranfield; wordllama 256-d; default `halfvec` plan. nDCG@10 is the
library's (linear gain, as trec_eval's ndcg_cut) with Cranfield's grades mapped by
``semsearch.readers.CRANFIELD_GRADES`` (grade 1 = most relevant -> gain 4 .. 4 -> 1).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

import semsearch
from semsearch.evaluate import ndcg
from semsearch.readers import CRANFIELD_GRADES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"


def parse(path: Path) -> list[dict[str, str]]:
    docs: list[dict[str, str]] = []
    field = None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith(".I "):
            docs.append({"id": line.split()[1], "T": "", "W": ""})
            field = None
        elif re.match(r"^\.[A-Z]$", line.strip()):
            field = line.strip()[1]
        elif field in ("T", "W"):
            docs[-1][field] += line
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/hybrid_cranfield.json")
    args = ap.parse_args()
    docs, queries = parse(DATA / "cran.all.1400"), parse(DATA / "cran.qry")
    qrels: dict[int, dict[str, float]] = {}
    for line in (DATA / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and int(parts[2]) != -1:
            qrels.setdefault(int(parts[0]), {})[parts[1]] = CRANFIELD_GRADES[int(parts[2])]
    with semsearch.connect() as db:
        db.drop_collection("bench_cranfield_hybrid", missing_ok=True)
        col = db.create_collection("bench_cranfield_hybrid", model="local", dims=256, compression="halfvec")
        col.add_many({"key": d["id"], "content": (d["W"] or d["T"]).strip() or "(empty)"} for d in docs)
        scores: dict[str, list[float]] = {"text": [], "dense": [], "dense exact": [], "hybrid": []}
        started = time.perf_counter()
        for n, q in enumerate(queries, start=1):  # the n-th query in file order is query n in cranqrel
            rel = qrels.get(n)
            if not rel:
                continue
            text = " ".join(q["W"].split())
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
