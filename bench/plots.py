"""Plots for one run (matplotlib, Agg backend): recall vs latency, index size and build time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGET = 0.99
MB = 1024 * 1024


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recall_latency(name: str, ds: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, zoom in zip(axes, (False, True), strict=True):
        for label, c in ds["contenders"].items():
            pts = c["points"]
            xs, ys = [p["p50_ms"] for p in pts], [p["recall"] for p in pts]
            style = "--" if c["family"] == "pgvector" else "-"
            (line,) = ax.plot(xs, ys, style, marker="o" if len(pts) > 1 else "s", ms=3.5, label=label)
            for mark, key, size in (("o", "default", 10), ("*", "at_target", 13)):
                if c.get(key):
                    ax.plot(
                        [c[key]["p50_ms"]],
                        [c[key]["recall"]],
                        mark,
                        mfc="none" if mark == "o" else None,
                        ms=size,
                        color=line.get_color(),
                    )
        ax.axhline(TARGET, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("p50 latency per query, ms (log; single client, warm cache)")
        ax.grid(True, which="both", alpha=0.3)
        if zoom:
            ax.set_ylim(0.95, 1.002)
            ax.set_title("zoom: recall@10 >= 0.95", fontsize=9)
        else:
            ax.set_ylim(
                max(0.0, min(p["recall"] for c in ds["contenders"].values() for p in c["points"]) - 0.02), 1.005
            )
            ax.set_ylabel("recall@10 vs exact")
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"{name}: {ds['rows']:,} x {ds['dims']} — recall vs latency; curves over oversample "
        "(semsearch) / ef_search (pgvector); ○ default, ★ first >= 0.99",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_index_build(name: str, ds: dict[str, Any], path: Path) -> None:
    plt = _plt()
    items = [(k, c) for k, c in ds["contenders"].items() if c.get("build")]
    labels = [k.replace("semsearch ", "ss ").replace("pgvector hnsw ", "pgv ") for k, _ in items]
    colors = ["tab:orange" if c["family"] == "pgvector" else "tab:blue" for _, c in items]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    b1 = a1.bar(labels, [c["sizes"]["index_bytes"] / MB for _, c in items], color=colors)
    a1.bar_label(b1, fmt="%.0f", fontsize=7)
    a1.set_ylabel("HNSW index size, MB")
    b2 = a2.bar(labels, [c["build"]["seconds"] for _, c in items], color=colors)
    a2.bar_label(b2, fmt="%.1f", fontsize=7)
    a2.set_ylabel("HNSW build time, s (m=16, ef_construction=64)")
    for ax in (a1, a2):
        ax.tick_params(axis="x", rotation=35, labelsize=8)
        for lab in ax.get_xticklabels():
            lab.set_ha("right")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{name}: {ds['rows']:,} x {ds['dims']} — index size and build time (same run)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
