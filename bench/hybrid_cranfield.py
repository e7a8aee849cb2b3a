"""nDCG@10 and p50 latency of text (ts_rank, BM25), dense and hybrid search on Cranfield, local model.

    python bench/hybrid_cranfield.py [--out bench/results/hybrid_cranfield.json]

Cranfield as bench/run.py reads it (title + abstract; gain 5 - grade), wordllama 256-d,
the default plan (bit, autotuned); nDCG@10 is the library's (linear gain, as trec_eval's
ndcg_cut). ts_rank is 0.1.0's text statement run on the same table; the rest are
``Collection.search``. Latencies: per query, the modes interleaved, median over the queries.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchdata import cranfield  # bench/ is on sys.path when run as a script
from psycopg import sql

import semsearch
from semsearch.evaluate import ndcg

TS_RANK = (
    "SELECT key FROM {t}, semsearch.any_words('english'::regconfig, %s::text) q "
    "WHERE tsv @@ q ORDER BY ts_rank(tsv, q, 1) DESC, id LIMIT 10"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/hybrid_cranfield.json")
    args = ap.parse_args()
    data = cranfield()
    with semsearch.connect() as db:
        db.drop_collection("bench_cranfield_hybrid", missing_ok=True)
        col = db.create_collection("bench_cranfield_hybrid", model="local", dims=256)
        col.add_many({"key": i, "content": t} for i, t in zip(data["doc_ids"], data["doc_texts"], strict=True))
        judged = [(n, " ".join(q.split())) for n, q in enumerate(data["queries"], start=1) if data["qrels"].get(n)]
        vectors = col.embedder.embed([q for _, q in judged])
        ts_rank = sql.SQL(TS_RANK).format(t=col.layout.table)
        modes = {
            "bm25": lambda q, v: col.search(q, k=10, mode="text").keys,
            "dense": lambda q, v: col.search(vector=v, k=10).keys,
            "dense exact": lambda q, v: col.search(vector=v, k=10, exact=True).keys,
            "hybrid rrf 0.5/0.5": lambda q, v: (
                col.search(q, vector=v, k=10, mode="hybrid", fusion="rrf", vector_weight=0.5, text_weight=0.5).keys
            ),
            "hybrid default (blend 0.3/0.7)": lambda q, v: col.search(q, vector=v, k=10, mode="hybrid").keys,
        }
        with db.connection() as conn:
            modes["ts_rank (0.1.0 text)"] = lambda q, v: [r[0] for r in conn.execute(ts_rank, [q], prepare=True)]
            scores, ms = _measure(modes, judged, vectors, data["qrels"])
        started = time.perf_counter()
        tuned = col.tune_hybrid({str(n): q for n, q in judged}, {str(n): data["qrels"][n] for n, _ in judged})
        tune_seconds = time.perf_counter() - started
        label = f"hybrid tuned ({tuned.best.fusion} {tuned.best.vector_weight:g}/{tuned.best.text_weight:g})"
        more, more_ms = _measure({label: modes["hybrid default (blend 0.3/0.7)"]}, judged, vectors, data["qrels"])
        scores.update(more)
        ms.update(more_ms)
        db.drop_collection("bench_cranfield_hybrid")
    result = {
        "command": "python bench/hybrid_cranfield.py",
        "queries": len(judged),
        "ndcg_at_10": {k: round(float(np.mean(v)), 4) for k, v in scores.items()},
        "p50_ms": {k: round(float(np.median(v)), 3) for k, v in ms.items()},
        "tune_hybrid_seconds": round(tune_seconds, 1),
        "note": "tuned on the same 225 queries it is scored on: an upper bound for unseen queries",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _measure(modes, judged, vectors, qrels):  # type: ignore[no-untyped-def]
    scores: dict[str, list[float]] = {m: [] for m in modes}
    ms: dict[str, list[float]] = {m: [] for m in modes}
    for (n, q), v in zip(judged, vectors, strict=True):
        for mode, run in modes.items():  # interleaved: every mode on the same query in turn
            started = time.perf_counter()
            keys = run(q, v)
            ms[mode].append((time.perf_counter() - started) * 1000)
            scores[mode].append(ndcg(keys, qrels[n]))
    return scores, ms


if __name__ == "__main__":
    main()
