"""Does autotune hit recall@10 0.99 on held-out real queries, and with how many candidates?

    python bench/autotune.py [--sets jeopardy cranfield-bit cranfield-mrl jeopardy-halfvec ...] [--seeds 0 1 2]
                             [--out bench/results/autotune]

Sets are ``<data>-<plan>``: data ``jeopardy`` (ada-002, 1,536 dims), ``jeopardy256`` (the same texts by the
local model, 256 dims) or ``cranfield``, plan ``bit``, ``mrl`` (mrl-bit:128), ``halfvec`` or ``none``; plain
``jeopardy`` is ``jeopardy-bit``.

Per set a collection is loaded with autotune off; then autotune runs as current main has it
(``--before`` library, default /work/main: sampled rows left out of their own answers, stored
x1.4) in a subprocess on the same server, and as this tree has it (proxy queries, no
headroom), each followed by recall@10 of the set's held-out real queries at the stored
setting. The lowest oversample reaching 0.99 on those queries (the oracle) is found by
bisection over candidate counts; for the graph-only plans (halfvec, none) it is the lowest
ef_search at k candidates instead. ``--seeds`` reruns this tree's tune() with other samples.
Recall only: no latencies are claimed (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchdata  # bench/ is on sys.path when run as a script
import numpy as np

import semsearch
from semsearch.tune import (
    AUTOTUNE_BUDGET_ROWS,
    AUTOTUNE_MAX_QUERIES,
    AUTOTUNE_MIN_QUERIES,
    GRAPH_ONLY,
    _oversample,
    autotune,
    graph_queries,
    tune,
)
from semsearch.workload import Workload

BEFORE = """
import json, sys, semsearch
from semsearch.tune import autotune
with semsearch.connect() as db:
    r = autotune(db.collection(sys.argv[1]), after_bulk_load=True)
    print(json.dumps({"oversample": r.oversample, "ef_search": r.ef_search, "candidates": r.candidates,
                      "estimate": r.recall, "queries": r.queries, "margin": r.margin}))
"""


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


PLANS = {"bit": "bit", "mrl": "mrl-bit:128", "halfvec": "halfvec", "none": "none"}


def load(db: semsearch.Database, which: str) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """(collection, held-out real query vectors, notes)."""
    name = "bench_autotune_" + which.replace("-", "_")
    db.drop_collection(name, missing_ok=True)
    data_name, _, plan_name = which.partition("-")
    plan = PLANS[plan_name or "bit"]
    if data_name in ("jeopardy", "jeopardy256"):
        vs = benchdata.jeopardy(n_queries=1000) if data_name == "jeopardy" else benchdata.jeopardy_local(n_queries=1000)
        dims = vs.base.shape[1]
        col = db.create_collection(name, dims=dims, model="label", compression=plan, autotune=False)
        rows = zip(vs.texts, vs.base, strict=True)
        col.add_many({"key": str(i), "content": t, "embedding": v} for i, (t, v) in enumerate(rows))
        return col, vs.queries, {"rows": len(vs.base), "queries": len(vs.queries), "source": vs.notes["source"]}
    data = benchdata.cranfield()
    col = db.create_collection(name, model="local", dims=256, compression=plan, autotune=False)
    col.add_many({"key": i, "content": t} for i, t in zip(data["doc_ids"], data["doc_texts"], strict=True))
    texts = [" ".join(q.split()) for q in data["queries"]]
    queries = np.asarray(col.embedder.embed(texts), dtype=np.float32)
    return col, queries, {"rows": len(data["doc_ids"]), "queries": len(texts), "model": "local (256 dims)"}


def held_out(w: Workload, oversample: float, ef_search: int | None) -> float:
    return round(w.run(oversample=oversample, ef_search=ef_search).recall, 4)


def oracle(w: Workload, target: float = 0.99) -> dict[str, Any]:
    """The fewest candidates (ef automatic) at which the real queries reach ``target``."""
    lo, hi = 9, 10
    while held_out(w, _oversample(hi, 10), None) < target:
        lo, hi = hi, hi * 2
        if hi > 2560:
            return {"candidates": None}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if held_out(w, _oversample(mid, 10), None) >= target else (mid, hi)
    return {"candidates": hi, "oversample": _oversample(hi, 10), "recall": held_out(w, _oversample(hi, 10), None)}


def oracle_ef(w: Workload, target: float = 0.99) -> dict[str, Any]:
    """The lowest ef_search at k candidates at which the real queries reach ``target``."""
    lo, hi = 9, 10
    while held_out(w, 1.0, hi) < target:
        lo, hi = hi, hi * 2
        if hi > 1000:
            return {"ef_search": None}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if held_out(w, 1.0, mid) >= target else (mid, hi)
    return {"ef_search": hi, "recall": held_out(w, 1.0, hi)}


def run_set(db: semsearch.Database, which: str, args: argparse.Namespace) -> dict[str, Any]:
    col, queries, notes = load(db, which)
    w = Workload(col, [str(i) for i in range(len(queries))], queries, k=10)
    log(f"{which}: {notes}")
    out: dict[str, Any] = {"notes": notes, "plan": col.info.compression}
    db.alter_collection(col.name, autotune=True)  # loaded with it off: autotune() now runs when asked
    env = dict(os.environ, PYTHONPATH=args.before)
    before = json.loads(subprocess.run([sys.executable, "-c", BEFORE, col.name], env=env, check=True, cwd=args.before,
                                       stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1])  # fmt: skip
    before["held_out_recall"] = held_out(w, before["oversample"], before["ef_search"])
    out["before"] = before
    log(f"  before: {before}")
    result = autotune(col, after_bulk_load=True)
    assert result is not None
    after = {"oversample": result.oversample, "ef_search": result.ef_search, "candidates": result.candidates,
             "estimate": result.recall, "queries": result.queries, "margin": result.margin}  # fmt: skip
    after["held_out_recall"] = held_out(w, result.oversample, result.ef_search)
    out["after"] = after
    log(f"  after: {after}")
    n = max(AUTOTUNE_MIN_QUERIES, min(AUTOTUNE_MAX_QUERIES, AUTOTUNE_BUDGET_ROWS // (2 * notes["rows"])))
    if col.layout.plan.kind in GRAPH_ONLY:
        n = graph_queries(notes["rows"])  # as many as autotune() draws for them
    out["after_seeds"] = []
    for seed in args.seeds:
        r = tune(col, target_recall=0.99, k=10, sample=n, seed=seed)
        row = {"seed": seed, "oversample": r.oversample, "ef_search": r.ef_search, "candidates": r.candidates,
               "estimate": r.recall, "held_out_recall": held_out(w, r.oversample, r.ef_search)}  # fmt: skip
        out["after_seeds"].append(row)
        log(f"  seed {seed}: {row}")
    # a graph-only plan's search at oversample 1.0 runs at the ef_search tuned above: its oracle is over ef_search
    out["oracle"] = {"at_k": oracle_ef(w)} if col.layout.plan.kind in GRAPH_ONLY else oracle(w)
    log(f"  oracle: {out['oracle']}")
    db.drop_collection(col.name)
    return out


def setting(r: dict[str, Any]) -> str:
    """x<oversample>, and the ef_search when one is stored (automatic: max(40, candidates))."""
    return f"x{r['oversample']:.1f}" + (f" ef {r['ef_search']}" if r.get("ef_search") else "")


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# autotune: stored setting, the tuner's estimate and held-out recall@10 (target 0.99)",
        "",
        f"`{res['command']}`, {res['date']}. Held-out = the set's real queries, never rows of the collection.",
        "",
        "| set | plan | before: setting (est. / held-out) | after: setting (est. / held-out) |"
        " after, other seeds: setting (held-out) | fewest reaching 0.99 held-out |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["sets"].items():
        b, a, o = r["before"], r["after"], r["oracle"]
        seeds = ", ".join(f"{setting(s)} ({s['held_out_recall']:.4f})" for s in r["after_seeds"])
        if "at_k" in o:
            at_k = o["at_k"]
            best = f"x1.0 ef {at_k['ef_search']} ({at_k['recall']:.4f})" if at_k["ef_search"] else "not within ef 1000"
        elif o.get("candidates"):
            best = f"x{o['oversample']:.1f} ({o['recall']:.4f})"
        else:
            best = "not within 2560 candidates"
        lines.append(
            f"| {name} ({r['notes']['rows']} rows, {r['notes']['queries']} queries) | {r['plan']} "
            f"| {setting(b)} ({b['estimate']:.4f} / **{b['held_out_recall']:.4f}**) "
            f"| {setting(a)} ({a['estimate']:.4f} / **{a['held_out_recall']:.4f}**) | {seeds} | {best} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--sets",
        nargs="+",
        default=[
            "jeopardy",
            "cranfield-bit",
            "cranfield-mrl",
            "jeopardy-halfvec",
            "jeopardy-none",
            "cranfield-halfvec",
            "cranfield-none",
            "jeopardy256-halfvec",
        ],
    )
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--before", default="/work/main", help="the library tree autotune runs from for 'before'")
    ap.add_argument("--out", default="bench/results/autotune")
    args = ap.parse_args()
    res: dict[str, Any] = {
        "command": "python bench/autotune.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sets": {},
    }
    with semsearch.connect() as db:
        for which in args.sets:
            res["sets"][which] = run_set(db, which, args)
    Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")
    Path(args.out + ".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
