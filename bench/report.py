"""Ratios, the issue-3 goal check and the markdown fragment (plots: plots.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

BASELINE = "pgvector hnsw vector"
TARGET = 0.99
MB = 1024 * 1024


def ratios(ds: dict[str, Any]) -> dict[str, Any]:
    """Each contender against the full-vector pgvector HNSW measured in the same run.

    index/build: baseline ÷ contender (bigger is better for the contender);
    p50: contender ÷ baseline at matched recall (both at the smallest setting
    reaching recall@10 >= 0.99; smaller is better), and at their defaults.
    """
    base = ds["contenders"].get(BASELINE)
    out: dict[str, Any] = {}
    if not base:
        return out
    for name, c in ds["contenders"].items():
        if name == BASELINE or c["family"] == "exact":
            continue
        r: dict[str, Any] = {}
        if c["sizes"]["index_bytes"]:
            r["index_size_x_smaller"] = round(base["sizes"]["index_bytes"] / c["sizes"]["index_bytes"], 2)
        if c.get("build"):
            r["build_x_faster"] = round(base["build"]["seconds"] / c["build"]["seconds"], 2)
        if c.get("at_target") and base.get("at_target"):
            r["p50_ratio_at_0_99"] = round(c["at_target"]["p50_ms"] / base["at_target"]["p50_ms"], 3)
        if c.get("default") and base.get("default"):
            r["p50_ratio_at_defaults"] = round(c["default"]["p50_ms"] / base["default"]["p50_ms"], 3)
        out[name] = r
    return out


def goal(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 3: at recall@10 >= 0.99, the default plan on the scale set vs pgvector full-vector HNSW:
    index >= 10x smaller, build >= 3x faster, p50 no worse."""
    name = results.get("scale_set")
    if not name:
        return {"checked": False, "why": "no scale set in this run"}
    ds = results["datasets"][name]
    plan = f"semsearch {ds['default_plan']}"
    c, b = ds["contenders"][plan], ds["contenders"][BASELINE]
    g: dict[str, Any] = {
        "checked": True,
        "dataset": name,
        "rows": ds["rows"],
        "plan": plan,
        "plan_at_target": c.get("at_target"),
        "baseline_at_target": b.get("at_target"),
    }
    idx = b["sizes"]["index_bytes"] / c["sizes"]["index_bytes"]
    bld = b["build"]["seconds"] / c["build"]["seconds"]
    g["index_x_smaller"] = {"value": round(idx, 2), "need": 10, "met": idx >= 10}
    g["build_x_faster"] = {"value": round(bld, 2), "need": 3, "met": bld >= 3}
    if c.get("at_target") and b.get("at_target"):
        p = c["at_target"]["p50_ms"] / b["at_target"]["p50_ms"]
        g["p50_ratio"] = {"value": round(p, 3), "need": "<= 1", "met": p <= 1.0}
    else:
        g["p50_ratio"] = {
            "value": None,
            "need": "<= 1",
            "met": False,
            "why": "a contender never reached recall@10 >= 0.99 in the sweep",
        }
    g["met"] = all(g[k]["met"] for k in ("index_x_smaller", "build_x_faster", "p50_ratio"))
    return g


# --- markdown ------------------------------------------------------------------------


def _f(x: Any, nd: int = 2) -> str:
    return "—" if x is None else (f"{x:,.{nd}f}" if isinstance(x, float) else f"{x:,}")


def table(name: str, ds: dict[str, Any]) -> list[str]:
    r = ds.get("ratios", {})
    lines = [
        "| contender | setting | recall@10 | p50 ms | p95 ms | QPS | index MB | table MB "
        "| build s | index ×smaller | build ×faster | p50 ÷ baseline |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, c in ds["contenders"].items():
        rows = [("default", c.get("default"))]
        if c.get("at_target") and c["at_target"] != c.get("default"):
            rows.append(("first ≥ 0.99", c["at_target"]))
        elif not c.get("at_target") and c["family"] != "exact":
            best = max(c["points"], key=lambda p: p["recall"])
            rows.append(("best (never ≥ 0.99)", best))
        for i, (what, p) in enumerate(rows):
            if p is None:
                continue
            knob = "full scan" if p["knob"] is None else f"{c['knob']}={p['knob']:g}"
            rr = r.get(label, {})
            p50r = (
                rr.get("p50_ratio_at_defaults")
                if what == "default"
                else (rr.get("p50_ratio_at_0_99") if what == "first ≥ 0.99" else None)
            )
            if c["family"] == "exact":
                what = "exact"
            elif what == "default" and c.get("at_target") == c.get("default") and c.get("at_target"):
                what, p50r = "default (≥ 0.99)", rr.get("p50_ratio_at_0_99")
            first = i == 0
            lines.append(
                f"| {label if first else ''} | {what}: {knob} | {p['recall']:.4f} | {p['p50_ms']:.2f} | "
                f"{p['p95_ms']:.2f} | {p['qps']:.0f} | "
                f"{_f(c['sizes']['index_bytes'] / MB, 1) if first and c['sizes']['index_bytes'] else ''} | "
                f"{_f(c['sizes']['total_bytes'] / MB, 0) if first else ''} | "
                f"{_f(c['build']['seconds'], 1) if first and c.get('build') else ''} | "
                f"{_f(rr.get('index_size_x_smaller')) if first and rr else ''} | "
                f"{_f(rr.get('build_x_faster')) if first and rr else ''} | "
                f"{_f(p50r, 3) if p50r is not None else ''} |"
            )
    return lines


def sweep_lines(ds: dict[str, Any]) -> list[str]:
    out = []
    for label, c in ds["contenders"].items():
        if c["family"] == "exact":
            continue
        pts = " · ".join(f"{p['knob']:g}: {p['recall']:.3f} / {p['p50_ms']:.2f}" for p in c["points"])
        out.append(f"- **{label}** ({c['knob']}: recall@10 / p50 ms): {pts}")
    return out


def ingest_lines(ds: dict[str, Any]) -> list[str]:
    s, p = ds["ingest"]["semsearch_bulk"], ds["ingest"].get("pgvector_copy", {})
    return [
        "| path | rows | load rows/s | load s | index s | load+index rows/s |",
        "|---|---|---|---|---|---|",
        f"| semsearch `add_many(bulk=True)` ({ds['default_plan']}, library build settings) | {s['rows']:,} | "
        f"{s['load_rows_per_s']:,.0f} | {s['load_s']:.1f} | {s['index_s']:.1f} | "
        f"{s['load_index_rows_per_s']:,.0f} |",
        f"| pgvector by hand: one binary COPY + `CREATE INDEX` (vector) | {p.get('rows', 0):,} | "
        f"{p.get('load_rows_per_s', 0):,.0f} | {p.get('load_s', 0):.1f} | {p.get('index_s', 0):.1f} | "
        f"{p.get('load_index_rows_per_s', 0):,.0f} |",
    ]


def profile_lines(ds: dict[str, Any]) -> list[str]:
    lines = [
        "| oversample | candidates | planning ms | execution ms | coarse HNSW ms (blocks) | "
        "rescore join+fetch ms (blocks) | sort+agg ms | client p50: function / prepared ann_sql / "
        "coarse only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in ds.get("profile", []):
        m, c = p["medians"], p["client_p50_ms"]
        lines.append(
            f"| {p['oversample']:g} | {p['candidates']} | {m['planning_ms']:.3f} | "
            f"{m['execution_ms']:.3f} | {m['coarse_ms']:.3f} ({m['coarse_blocks']:.0f}) | "
            f"{m['rescore_ms']:.3f} ({m['rescore_blocks']:.0f}) | {m['sort_agg_ms']:.3f} | "
            f"{c['function_call']:.2f} / {c['prepared_ann_sql']:.2f} / {c['coarse_only']:.2f} |"
        )
    return lines


def cranfield_lines(cr: dict[str, Any]) -> list[str]:
    i = cr["ingest"]
    lines = [
        f"{cr['docs']:,} docs, {cr['queries']} queries ({cr['judged_queries']} judged), "
        f"{cr['embedder']}; default plan `{cr['default_plan']}`. Ingest end to end "
        f"(`add_many(bulk=True)` of texts: embed + COPY + index): **{i['end_to_end_texts_per_s']:,.0f} "
        f"texts/s**; embedder alone {i['embed_only_texts_per_s']:,.0f} texts/s; model load "
        f"{i['model_load_s']:.2f} s.",
        "",
        "| search | nDCG@10 | recall@10 vs exact | p50 ms |",
        "|---|---|---|---|",
    ]
    for label, p in cr["plans"].items():
        lines.append(f"| {label} | {p['ndcg_at_10']:.4f} | {p['recall_at_10_vs_exact']:.4f} | {p['p50_ms']:.2f} |")
    return lines


def goal_lines(g: dict[str, Any]) -> list[str]:
    if not g.get("checked"):
        return [f"Not checked: {g.get('why')}"]
    verdict = "**MET**" if g["met"] else "**MISSED**"
    out = [f"{verdict} on {g['dataset']} ({g['rows']:,} rows), {g['plan']} vs {BASELINE}:", ""]
    for k, what in (
        ("index_x_smaller", "index ×smaller (need ≥ 10)"),
        ("build_x_faster", "build ×faster (need ≥ 3)"),
        ("p50_ratio", "p50 ÷ baseline at recall ≥ 0.99 (need ≤ 1)"),
    ):
        v = g[k]
        out.append(
            f"- {what}: {_f(v['value'], 3) if v['value'] is not None else '—'} → "
            f"{'met' if v['met'] else 'missed'}{' (' + v['why'] + ')' if v.get('why') else ''}"
        )
    pa, ba = g.get("plan_at_target"), g.get("baseline_at_target")
    if pa and ba:
        out.append(
            f"- at recall ≥ 0.99: {g['plan']} oversample={pa['knob']:g} recall {pa['recall']:.4f} "
            f"p50 {pa['p50_ms']:.2f} ms; baseline ef_search={ba['knob']:g} recall {ba['recall']:.4f} "
            f"p50 {ba['p50_ms']:.2f} ms"
        )
    return out


def elide(plan: str) -> str:
    """Shorten the literal query vector and its bit string in a pasted plan."""
    plan = re.sub(r"'\[[^\]]{60,}\]'", "'[...1536 floats...]'", plan)
    return re.sub(r"'[01]{60,}'", "'0101...(bit string)'", plan)


def markdown(results: dict[str, Any], rel: str) -> str:
    m = results["machine"]
    out = [
        f"## Results: `{results['command']}` ({results['started']}, {results['elapsed_s'] / 60:.1f} min)",
        "",
        f"Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('mem_gib')} GiB RAM, load average at "
        f"start {' '.join(m.get('loadavg_at_start', []))}; {m['postgres'].split(' on ')[0]}, pgvector "
        f"{m['pgvector']}; server settings {json.dumps(m['settings'])}; every HNSW build m=16, "
        f"ef_construction=64, maintenance_work_mem={results['config']['build_memory']}, "
        f"min_parallel_table_scan_size=0. Library {results['library']['head']} "
        f"(+{results['library']['library_uncommitted_files']} uncommitted library files).",
        "",
    ]
    for name, ds in results["datasets"].items():
        out += [
            f"### {name}: {ds['rows']:,} rows x {ds['dims']}, {ds['queries']} timed queries per setting",
            "",
            f"Set: {ds['notes'].get('source')}; {ds['notes'].get('split')}. Neighbour cosine "
            f"top-1 p5/p50/p95 {ds['notes'].get('top1_cos_p5_p50_p95')}, top-10 "
            f"{ds['notes'].get('top10_cos_p5_p50_p95')}, random pair p50 "
            f"{ds['notes'].get('random_pair_cos_p50')}; brute-force bit-candidate recall@10 by "
            f"oversample {ds['notes'].get('bruteforce_bit_candidate_recall_at10_by_oversample')}.",
            "",
        ]
        out += [*table(name, ds), ""]
        out += [
            f"![recall vs latency]({rel}/recall_latency_{name}.png)",
            f"![index size and build time]({rel}/index_build_{name}.png)",
            "",
            "Sweeps:",
            "",
        ]
        out += [*sweep_lines(ds), "", "Ingest (precomputed vectors):", "", *ingest_lines(ds), ""]
        out += [
            f"Profile of the default plan ({ds['default_plan']}), medians over "
            f"{ds['profile'][0]['queries'] if ds.get('profile') else 0} queries:",
            "",
        ]
        out += [*profile_lines(ds), ""]
    if "cranfield" in results:
        out += ["### Cranfield (relevance-judged, local wordllama embeddings)", ""]
        out += [*cranfield_lines(results["cranfield"]), ""]
    if "explain_10k" in results:
        e = results["explain_10k"]
        out += [
            f"### One two-stage search on {e['rows']:,} rows ({e['compression']}, oversample "
            f"{e['oversample']:g} → {e['candidates']} candidates, ef_search {e['ef_search']})",
            "",
            f"One round trip: `{e['call']}`. Inside, the function runs the catalog's `ann_sql`:",
            "",
            "```sql",
            e["ann_sql"],
            "```",
            "",
            f"`{e['prepare']}`:",
            "",
            "```",
            elide(e["plan"]),
            "```",
            "",
        ]
    out += ["### Issue 3 goal", "", *goal_lines(results.get("goal", {})), ""]
    return "\n".join(out)


def write(results: dict[str, Any], out: Path) -> None:
    from plots import plot_index_build, plot_recall_latency

    for name, ds in results["datasets"].items():
        plot_recall_latency(name, ds, out / f"recall_latency_{name}.png")
        plot_index_build(name, ds, out / f"index_build_{name}.png")
    try:
        rel = str(out.resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        rel = str(out)
    (out / "results.md").write_text(markdown(results, rel))
