"""Are autotune's proxy queries as hard as held-out queries for ``bit`` on the 50k scale set?

    python bench/tunebit.py [--rows 50000] [--queries 300] [--out bench/results/tunebit]

Loads the scale set (bench/benchdata.py synthetic(), 1536 dims) into a ``bit`` collection with
``add_many(bulk=True)`` (autotune off), then measures recall@10 against exact search at a ladder of
candidate counts (ef_search automatic) on three query sets: the set's held-out queries, proxies with
isotropic noise and proxies with data-shaped noise (workload.proxy_queries, shaped=False / True; as
many as autotune draws at this size). Then autotune() as this tree has it, and the held-out recall at
the setting it stored. Recall only: no latencies are claimed (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import benchdata  # bench/ is on sys.path when run as a script

import semsearch
from semsearch.tune import AUTOTUNE_BUDGET_ROWS, AUTOTUNE_MAX_QUERIES, AUTOTUNE_MIN_QUERIES, _oversample, autotune
from semsearch.workload import Workload, proxy_queries

LADDER = (10, 20, 40, 60, 80, 120, 160, 240, 320)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--plan", default="bit")
    ap.add_argument("--out", default="bench/results/tunebit")
    args = ap.parse_args()
    vs = benchdata.synthetic(args.rows)
    log(f"scale set {args.rows} rows generated")
    res: dict = {
        "command": "python bench/tunebit.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": args.rows,
        "plan": args.plan,
    }
    with semsearch.connect() as db:
        name = "bench_tunebit"
        db.drop_collection(name, missing_ok=True)
        col = db.create_collection(name, dims=1536, model="label", compression=args.plan, autotune=False)
        t = time.perf_counter()
        col.add_many(
            ({"key": str(i), "content": vs.texts[i], "embedding": v} for i, v in enumerate(vs.base)),
            bulk=True,
            autotune=False,
        )
        log(f"loaded + built in {time.perf_counter() - t:.0f} s")
        q = vs.queries[: args.queries]
        sets = {"held_out": Workload(col, [str(i) for i in range(len(q))], q, k=10)}
        n = max(AUTOTUNE_MIN_QUERIES, min(AUTOTUNE_MAX_QUERIES, AUTOTUNE_BUDGET_ROWS // (2 * args.rows)))
        for kind, shaped in (("isotropic", False), ("shaped", True)):
            sets[kind] = Workload(col, *proxy_queries(col, n, seed=0, shaped=shaped), k=10)
        log("query sets ready")
        res["curves"] = {kind: {} for kind in sets}
        for c in LADDER:
            for kind, w in sets.items():
                res["curves"][kind][c] = round(w.run(oversample=_oversample(c, 10), ef_search=None).recall, 4)
            log(f"  {c} candidates: " + ", ".join(f"{k} {v[c]}" for k, v in res["curves"].items()))
        db.alter_collection(name, autotune=True)
        t = time.perf_counter()
        r = autotune(col, after_bulk_load=True)
        assert r is not None
        held = sets["held_out"].run(oversample=r.oversample, ef_search=r.ef_search).recall
        res["autotune"] = {"oversample": r.oversample, "ef_search": r.ef_search, "candidates": r.candidates,
                           "estimate": r.recall, "queries": r.queries, "held_out_recall": round(held, 4),
                           "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
        log(f"autotune: {res['autotune']}")
        db.drop_collection(name)
    Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
