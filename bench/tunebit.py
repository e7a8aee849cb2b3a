"""How far does autotune's ``bit`` setting land from 0.99 held out, build to build and seed to seed?

    python bench/tunebit.py [--rows 50000] [--queries 1000] [--builds 3] [--seeds 0,1] \
        [--proxies 200] [--ladder 40,80,160] [--out bench/results/tunebit_spread_50k]

Per build (``--builds`` independent loads of the scale set, bench/benchdata.py synthetic(), 1536 dims,
into a fresh ``bit`` collection with ``add_many(bulk=True)``, autotune off: HNSW builds differ by
their random levels):

- ``held_out``: recall@10 of the set's held-out queries (exact answers from numpy) at a ladder of
  candidate counts, ef_search automatic and 4x wider; the smallest count reaching 0.99.
- ``proxies``: per seed, ``--proxies`` data-shaped proxies (workload.proxy_queries, shaped=True),
  each proxy's hits at the same ladder (kept per query, so acceptance rules can be replayed on
  subsamples of the size autotune draws: bench/tunebit_replay.py).
- ``autotune``: per seed (build b adds 100 * b to each: every draw independent), tune() exactly as
  autotune() calls it at this size, the held-out recall at the setting it stored and at every point
  it tried (the proxy-to-held-out gap).

Recall only: no latencies are claimed (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import benchdata  # bench/ is on sys.path when run as a script
import numpy as np

import semsearch
from semsearch import tune as tuning
from semsearch.planner import MAX_EF
from semsearch.results import Hit, SearchResult
from semsearch.workload import Workload, proxy_queries, recall_vs_exact

LADDER = (10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 80, 100, 120, 140, 160, 200, 240, 320, 480, 640)
WIDE_LADDER = (10, 20, 30, 40, 60, 80, 120, 160)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


class Known(Workload):
    """Held-out queries whose exact answers numpy computed (the scale set's truth): no exact scans."""

    def __init__(self, col: Any, queries: np.ndarray, truth: np.ndarray, base: np.ndarray) -> None:
        self.col, self.ids, self.vectors, self.k = col, [str(i) for i in range(len(queries))], queries, 10
        self.exclude_self, self._warm, self.exact_ms = False, False, []
        self.exact = [
            SearchResult(
                hits=tuple(Hit(key=str(j), content="", score=float(q @ base[j])) for j in t[:10]), k=10, exact=True
            )
            for q, t in zip(queries, truth, strict=True)
        ]


def hits(w: Workload, candidates: int, ef: int | None) -> list[int]:
    """Each query's hits (of 10) at ``candidates`` with ef_search ``ef`` (None: automatic)."""
    run = w.run(oversample=tuning._oversample(candidates, 10), ef_search=_ef(candidates, ef))
    return [round(10 * recall_vs_exact(a, e)) for a, e in zip(run.results, w.exact, strict=True)]


def _ef(candidates: int, ef: int | None) -> int:
    # explicit: ef_search=None in a search means the catalog's, which a tune() before has set
    return ef if ef is not None else min(MAX_EF, max(tuning.AUTO_EF_FLOOR, candidates))


def _pack(h: list[int]) -> str:
    return "".join("0123456789a"[x] for x in h)


def unpack(s: str) -> list[int]:
    return ["0123456789a".index(ch) for ch in s]


def autotune_queries(rows: int) -> int:
    return max(tuning.AUTOTUNE_MIN_QUERIES, min(tuning.AUTOTUNE_MAX_QUERIES, tuning.AUTOTUNE_BUDGET_ROWS // (2 * rows)))


def one_build(col: Any, vs: Any, args: argparse.Namespace, seeds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    held = Known(col, vs.queries[: args.queries], vs.truth[: args.queries], vs.base)
    ladder = LADDER if not args.ladder else tuple(int(c) for c in args.ladder.split(","))
    wide_ladder = [c for c in WIDE_LADDER if c <= ladder[-1]]
    auto = {c: float(np.mean(hits(held, c, None))) / 10 for c in ladder}
    wide = {c: float(np.mean(hits(held, c, tuning._wide_ef(c)))) / 10 for c in wide_ladder}
    reach = next((c for c in ladder if auto[c] >= 0.99), None)
    out["held_out"] = {"queries": len(held.ids), "auto_ef": auto, "wide_ef": wide, "smallest_0.99_auto_ef": reach}
    log(f"  held out: smallest reaching 0.99 {reach}; " + ", ".join(f"{c}:{r:.4f}" for c, r in auto.items()))
    out["proxies"] = {}
    for s in seeds if args.proxies else ():
        t = time.perf_counter()
        w = Workload(col, *proxy_queries(col, args.proxies, seed=s, shaped=True), k=10)
        per = {c: hits(w, c, None) for c in ladder}
        per_wide = {c: hits(w, c, tuning._wide_ef(c)) for c in wide_ladder}
        # each query's hits as one character of "0123456789a" (a: all 10), one string per count
        out["proxies"][s] = {"n": len(w.ids), "auto_ef": {c: _pack(h) for c, h in per.items()},
                             "wide_ef": {c: _pack(h) for c, h in per_wide.items()}}  # fmt: skip
        log(
            f"  proxies seed {s} ({time.perf_counter() - t:.0f} s): "
            + ", ".join(f"{c}:{np.mean(h) / 10:.4f}" for c, h in per.items())
        )
    n = autotune_queries(args.rows)
    out["autotune"] = {s: autotune_at(col, held, n, s) for s in seeds}
    if args.also_sample:  # the same tune() on more proxies than autotune draws at this size
        out[f"autotune_sample_{args.also_sample}"] = {s: autotune_at(col, held, args.also_sample, s) for s in seeds}
    return out


def autotune_at(col: Any, held: Known, n: int, s: int) -> dict[str, Any]:
    """tune() as autotune() runs it at this size, with proxy seed ``s``; the held-out recall at its choice."""
    t = time.perf_counter()
    r = tuning.tune(col, target_recall=0.99, k=10, sample=n, max_oversample=tuning.AUTOTUNE_MAX_OVERSAMPLE, seed=s)
    at = held.run(oversample=None, ef_search=None).recall  # the catalog's: what a default search runs
    tried = [
        {"candidates": p.candidates, "ef_search": p.ef_search, "proxy": round(p.recall, 4),
         "se": round(p.recall_se, 4),
         "held_out": round(held.run(oversample=p.oversample, ef_search=_ef(p.candidates, p.ef_search)).recall, 4)}
        for p in r.tried
    ]  # fmt: skip
    got = {
        "queries": r.queries, "oversample": r.oversample, "ef_search": r.ef_search, "candidates": r.candidates,
        "proxy_recall": round(r.recall, 4), "held_out_recall": round(at, 4), "reached": r.reached,
        "seconds": round(time.perf_counter() - t, 1), "tried": tried,
    }  # fmt: skip
    log(f"  autotune seed {s}: x{r.oversample} ef {r.ef_search} proxy {r.recall:.4f} held out {at:.4f}")
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries (the set has 1000)")
    ap.add_argument("--builds", type=int, default=1)
    ap.add_argument("--seeds", default="0", help="proxy seeds of the first build (the next add 100 each)")
    ap.add_argument("--proxies", type=int, default=200, help="proxies per seed kept per query for replay (0: none)")
    ap.add_argument("--ladder", help="candidate counts for held-out and proxy recall (default: LADDER)")
    ap.add_argument("--also-sample", type=int, default=0, help="also tune on this many proxies")
    ap.add_argument("--out", default="bench/results/tunebit")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    vs = benchdata.synthetic(args.rows)
    log(f"scale set {args.rows} rows generated")
    res: dict[str, Any] = {
        "command": "python bench/tunebit.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": args.rows,
        "autotune_queries": autotune_queries(args.rows),
        "confidence_z": tuning.CONFIDENCE_Z,
        "builds": [],
    }
    with semsearch.connect() as db:
        for b in range(args.builds):
            res["builds"][b:] = [{"load_at_start": [round(x, 2) for x in os.getloadavg()]}]
            name = "bench_tunebit"
            db.drop_collection(name, missing_ok=True)
            col = db.create_collection(name, dims=1536, model="label", compression="bit", autotune=False)
            t = time.perf_counter()
            col.add_many(
                ({"key": str(i), "content": vs.texts[i], "embedding": v} for i, v in enumerate(vs.base)),
                bulk=True,
                autotune=False,
            )
            log(f"build {b}: loaded + built in {time.perf_counter() - t:.0f} s")
            # each build its own proxy draws: every autotune below is independent of the others
            res["builds"][b].update(one_build(col, vs, args, [s + 100 * b for s in seeds]))
            db.drop_collection(name)
            Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
