"""Replay tune()'s acceptance rule for ``bit`` on the per-proxy hits bench/tunebit.py recorded.

    python bench/tunebit_replay.py bench/results/tunebit_spread_50k.json [...] [--draws 400]

For each build, proxy seed, number of proxies ``n`` and rule, ``--draws`` random subsets of ``n`` of
the recorded proxies choose a setting on the ladder as ``_by_candidates`` does (the fewest candidates
at automatic ef_search reaching the target, or the fewest at the 4x wider ef_search when fewer), and
the held-out recall at that setting is looked up in the same build's ladder. Printed: the share of
draws short of 0.99 held out, and the mean candidates chosen. Ladder-grained (tune bisects finer).
Rules: the mean less z standard errors (``--z``), with the standard error floored (default), a
trimmed mean (``--trim``), each query's recall floored (``--cap``: semsearch.tune.lower_bound
with STUCK_FLOOR). ``--bootstrap`` draws n above the recorded pool with replacement.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tunebit import unpack  # bench/ is on sys.path when run as a script

#: (name, lower bound of a recall estimate from per-query recalls r): the rules compared
Rule = Callable[[np.ndarray], float]


def z_rule(z: float) -> Rule:
    return lambda r: float(r.mean() - z * r.std(ddof=1) / np.sqrt(len(r)))


def floor_rule(z: float, target: float) -> Rule:
    """As z_rule, the standard error at least n * 10 independent hits' at the target (never 0)."""

    def bound(r: np.ndarray) -> float:
        se = max(float(r.std(ddof=1)), np.sqrt(target * (1 - target) / 10)) / np.sqrt(len(r))
        return float(r.mean() - z * se)

    return bound


def trimmed_rule(z: float, trim: float) -> Rule:
    """As z_rule on the per-query recalls less the lowest ``trim`` share (semsearch.tune.TRIM)."""

    def bound(r: np.ndarray) -> float:
        kept = np.sort(r)[int(np.floor(trim * len(r))) :]
        return z_rule(z)(kept)

    return bound


def capped_rule(z: float, floor: float) -> Rule:
    """As z_rule, each query's recall counted as at least ``floor`` (a stuck proxy costs at most 1 - floor)."""
    return lambda r: z_rule(z)(np.maximum(r, floor))


def choose(auto: dict[int, np.ndarray], wide: dict[int, np.ndarray], rule: Rule, target: float) -> tuple[int, bool]:
    """(candidates, wide?) as _by_candidates picks them on the ladder; (0, False) when none reaches."""
    a = next((c for c in sorted(auto) if rule(auto[c]) >= target), 0)
    w = next((c for c in sorted(wide) if rule(wide[c]) >= target and (not a or c < a)), 0)
    return (w, True) if w else (a, False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--n", default="20,40,100,200", help="proxy counts replayed (at most those recorded)")
    ap.add_argument("--z", default="1,1.5,2")
    ap.add_argument("--trim", default="", help="trimmed-mean rules: shares of the lowest queries dropped (z=1)")
    ap.add_argument("--cap", default="", help="capped rules: each query's recall floored at these (each --z)")
    ap.add_argument("--no-floor", action="store_true", help="leave out the SE-floor rules")
    ap.add_argument(
        "--bootstrap", action="store_true", help="n above the pool: draw with replacement (overlapping draws)"
    )
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    rows: list[dict] = []
    rng = np.random.default_rng(0)
    print("| rows | build | seed | proxies | rule | short of 0.99 held out | mean candidates | mean held out |")
    print("|---|---|---|---|---|---|---|---|")
    for f in args.files:
        d = json.loads(Path(f).read_text())
        for b, build in enumerate(d["builds"]):
            held = build["held_out"]
            h_auto = {int(c): r for c, r in held["auto_ef"].items()}
            h_wide = {int(c): r for c, r in held["wide_ef"].items()}
            for seed, px in build.get("proxies", {}).items():
                auto = {int(c): np.asarray(unpack(s)) / 10 for c, s in px["auto_ef"].items()}
                wide = {int(c): np.asarray(unpack(s)) / 10 for c, s in px["wide_ef"].items()}
                pool = len(next(iter(auto.values())))
                for n in [int(x) for x in args.n.split(",") if args.bootstrap or int(x) <= pool]:
                    rules = [(f"z={z:g}", z_rule(z)) for z in [float(x) for x in args.z.split(",")]]
                    if not args.no_floor:
                        rules += [
                            (f"floor z={z:g}", floor_rule(z, args.target))
                            for z in [float(x) for x in args.z.split(",")]
                        ]
                    zs, trims = [float(x) for x in args.z.split(",")], [float(x) for x in args.trim.split(",") if x]
                    rules += [(f"trim {t:g} z=1", trimmed_rule(1.0, t)) for t in trims]
                    caps = [float(x) for x in args.cap.split(",") if x]
                    rules += [(f"cap {f:g} z={z:g}", capped_rule(z, f)) for z in zs for f in caps]
                    for name, rule in rules:
                        got = []
                        for _ in range(args.draws if n < pool or args.bootstrap else 1):
                            idx = rng.choice(pool, size=n, replace=n > pool)
                            c, is_wide = choose(
                                {c: r[idx] for c, r in auto.items()}, {c: r[idx] for c, r in wide.items()},
                                rule, args.target,
                            )  # fmt: skip
                            got.append((c, (h_wide if is_wide else h_auto).get(c, float("nan")) if c else np.nan))
                        cs, hs = np.array([g[0] for g in got]), np.array([g[1] for g in got])
                        row = {"rows": d["rows"], "build": b, "seed": seed, "proxies": n, "rule": name}
                        if np.isnan(hs).all():  # no draw reached the target on the ladder
                            rows.append(row)
                            print(f"| {d['rows']} | {b} | {seed} | {n} | {name} | none reached | - | - |")
                            continue
                        row |= {
                            "short": round(float(np.mean(hs < 0.99)), 4),
                            "mean_candidates": round(float(cs.mean()), 1),
                            "mean_held_out": round(float(np.nanmean(hs)), 4),
                        }
                        rows.append(row)
                        print(
                            f"| {d['rows']} | {b} | {seed} | {n} | {name} | {np.mean(hs < 0.99):.2f} "
                            f"| {cs.mean():.0f} | {np.nanmean(hs):.4f} |"
                        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": "python bench/tunebit_replay.py " + " ".join(a for a in sys.argv[1:]),
                    "draws": args.draws,
                    "rows": rows,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
