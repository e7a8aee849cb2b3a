"""Neighbour-similarity profiles of held-out queries, rows and graph-only proxies, in numpy (no database).

    python bench/proxyprofile.py --data jeopardy,synthetic10000 --proxies 2:4,10:16,10:50,4:50,5:50

Per data set (``jeopardy``: ada-002 1,536 dims; ``jeopardy256``: the local model; ``synthetic<N>``:
bench/benchdata.py's scale set, seed 1): the median similarity of the 1st, 2nd, 5th, 10th, 30th and 100th
nearest row of the held-out queries, of 1,000 sampled rows (to their nearest others), and of proxies built
as :func:`semsearch.workload.proxy_queries` builds shaped ones (``P:R``: P partners of the 10 nearest,
noise from R sampled rows, calibrated to the sampled row's nearest-other similarity), from the same
1,000 rows. Also how concentrated a departure from the neighbourhood is: the median of a vector's largest
|cosine| with a centred sampled row, for the rows' and queries' offsets from their 10 nearest rows' mean
and for R-row noise. Exact by numpy; no HNSW, no timings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import benchdata  # bench/ is on sys.path when run as a script
import numpy as np

from semsearch.workload import _off

RANKS = (0, 1, 4, 9, 29, 99)


def data(which: str) -> benchdata.VectorSet:
    if which == "jeopardy":
        return benchdata.jeopardy(n_queries=1000)
    if which == "jeopardy256":
        return benchdata.jeopardy_local(n_queries=1000)
    return benchdata.synthetic(int(which.removeprefix("synthetic")), n_queries=1000)


def profile(x: np.ndarray, base: np.ndarray) -> list[float]:
    s = -np.sort(-(x @ base.T), axis=1)
    return [round(float(np.median(s[:, r])), 4) for r in RANKS]


def one(which: str, proxies: list[str]) -> dict[str, Any]:
    vs = data(which)
    base = vs.base / np.linalg.norm(vs.base, axis=1, keepdims=True)
    idx = np.sort(np.random.default_rng(0).choice(len(base), 1000, replace=False))
    rows = base[idx]
    sims = rows @ base.T
    sims[np.arange(len(idx)), idx] = -9  # a row is not its own neighbour
    nn = np.argsort(-sims, axis=1)[:, :10]
    queries = vs.queries / np.linalg.norm(vs.queries, axis=1, keepdims=True)
    spread = rows - rows.mean(axis=0)
    unit = spread / np.linalg.norm(spread, axis=1, keepdims=True)

    def concentration(x: np.ndarray, own: np.ndarray | None = None) -> float:
        c = np.abs((x / np.linalg.norm(x, axis=1, keepdims=True)) @ unit.T)
        if own is not None:
            c[np.arange(len(x)), own] = 0
        return round(float(np.median(c.max(axis=1))), 4)

    qnn = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    out: dict[str, Any] = {
        "held_out": profile(queries, base),
        "rows": [round(float(np.median(-np.sort(-sims, axis=1)[:, r])), 4) for r in RANKS],
        "offset_concentration": {
            "rows": concentration(rows - base[nn].mean(axis=1), np.arange(len(idx))),
            "held_out": concentration(queries - base[qnn].mean(axis=1)),
        },
        "proxies": {},
    }
    for spec in proxies:
        partners, noise_rows = (int(x) for x in spec.split(":"))
        rng = np.random.default_rng(0)
        made = np.empty_like(rows)
        noise = []
        for i, v in enumerate(rows):
            others = base[nn[i]]
            picked = others[rng.choice(len(others), size=partners, replace=False)]
            w = rng.dirichlet(np.ones(1 + partners))
            mix = w[0] * v + w[1:] @ picked
            mix /= np.linalg.norm(mix)
            terms = spread[rng.choice(len(spread), size=noise_rows, replace=False)]
            noise.append(rng.standard_normal(noise_rows) @ terms)
            made[i] = _off(mix, np.vstack([v, others]), float(np.max(others @ v)), rng, noise[-1])
        out["proxies"][spec] = profile(made, base)
        out["offset_concentration"][f"noise {noise_rows} rows"] = concentration(np.stack(noise))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="jeopardy,synthetic10000")
    ap.add_argument("--proxies", default="2:4,10:16,10:50,4:50,5:50")
    ap.add_argument("--out", default="bench/results/proxyprofile.json")
    args = ap.parse_args()
    res: dict[str, Any] = {
        "command": f"python bench/proxyprofile.py --data {args.data} --proxies {args.proxies}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "ranks": [r + 1 for r in RANKS],
        "sets": {},
    }
    for which in args.data.split(","):
        res["sets"][which] = one(which, args.proxies.split(","))
        print(which, json.dumps(res["sets"][which]), flush=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
