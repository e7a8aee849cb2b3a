"""Calibrate the synthetic scale set against the real Jeopardy vectors at the same size.

    python bench/calibrate.py                  # real 9k vs synthetic 9k at several noise levels

For each set: neighbour cosine similarities, brute-force recall of sign-bit candidates
(how hard binary quantisation is) and pgvector HNSW recall@10 at ef_search 10..80 (how
hard the graph search is: high intrinsic dimension makes it harder). The scale set's
noise level is the one whose numbers track the real set's; see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata
import contenders as ct
import harness as hz

import semsearch

EFS = [10, 20, 40, 80]


def hnsw_recall(db: semsearch.Database, url: str, vs: benchdata.VectorSet, queries: int) -> dict[str, float]:
    ct.pgvector_load(url, vs.base, vs.texts)
    hz.vacuum(db, ct.PG_TABLE)
    ddl, _, _ = ct.pgvector_index_sql("vector", vs.base.shape[1])
    hz.timed_build(db, ddl, memory="2GB")
    search, conn, _ = ct.pgvector_search(url, "vector", vs.base.shape[1])
    out = {str(ef): hz.measure(search, ef, vs.queries[:queries], vs.truth[:queries]).recall for ef in EFS}
    conn.close()
    with db.connection() as c:
        c.execute(f"DROP TABLE {ct.PG_TABLE}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--noise", type=float, nargs="*", default=[0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--iso", type=float, default=None)
    ap.add_argument("--rows", type=int, default=9000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    url = hz.bench_database("semsearch_calibrate")
    db = semsearch.connect(url, upgrade=True)
    sets = [("real jeopardy", benchdata.jeopardy())]
    sets += [(f"synthetic noise={x}", benchdata.synthetic(args.rows, noise=x, iso=args.iso)) for x in args.noise]
    for label, vs in sets:
        n = vs.notes
        row = {
            "top1": n["top1_cos_p5_p50_p95"],
            "top10": n["top10_cos_p5_p50_p95"],
            "bit_bruteforce": n["bruteforce_bit_candidate_recall_at10_by_oversample"],
            "hnsw_vector_recall_by_ef": hnsw_recall(db, url, vs, args.queries),
        }
        print(f"{label:<24} {json.dumps(row)}", flush=True)
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
