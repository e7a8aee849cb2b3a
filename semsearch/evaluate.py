"""Measure a collection: recall of its search path against exact search, latency, size,
and relevance (nDCG@10, recall@100) when judgments are given.

Example::

    report = evaluate(col, sample=200, k=10)
    print(report)                       # recall@10, p50/p95 ms, qps, index size ...
    curve = sweep(col, sample=200, oversamples=[1, 2, 4, 8, 16])
    plot_sweep(curve, "recall.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import InvalidInputError
from semsearch.faces import Searchable
from semsearch.layout import SCHEMA
from semsearch.readers import Qrels, read_qrels
from semsearch.results import SearchResult
from semsearch.workload import Run, Workload, catalog_settings, query_vectors


@dataclass(frozen=True)
class EvalReport:
    """What :func:`evaluate` measured. Sizes are bytes; latencies are per search call.

    ``recall`` is recall@k of the search path (at ``oversample`` / ``ef_search``,
    the catalog's when not given; ``ef_search`` None is automatic) against exact
    search on the full vectors. ``ndcg_at_10`` / ``recall_at_100`` are set when
    judgments were given, averaged over the ``judged_queries`` with a relevant doc.

    Example::

        report = col.evaluate(sample=100)
        report.recall, report.p50_ms, report.to_dict()
    """

    collection: str
    compression: str
    rows: int
    queries: int
    k: int
    oversample: float
    ef_search: int | None
    candidates: int
    recall: float
    p50_ms: float
    p95_ms: float
    qps: float
    exact_p50_ms: float
    index_bytes: int
    table_bytes: int
    indexes_bytes: int
    bytes_per_row: float
    ndcg_at_10: float | None = None
    recall_at_100: float | None = None
    judged_queries: int | None = None
    index_build_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

    def table(self) -> str:
        """The report as aligned ``name  value`` lines."""
        ef = "auto" if self.ef_search is None else self.ef_search
        lines = [
            f"collection    {self.collection} ({self.compression}, {self.rows:,} rows)",
            f"queries       {self.queries}, k={self.k}, oversample {self.oversample:g} "
            f"({self.candidates} candidates), ef_search {ef}",
            f"{'recall@' + str(self.k):<14}{self.recall:.4f} (vs exact search)",
            f"latency       p50 {self.p50_ms:.2f} ms, p95 {self.p95_ms:.2f} ms, {self.qps:,.0f} qps "
            f"(exact p50 {self.exact_p50_ms:.2f} ms)",
            f"size          hnsw index {self.index_bytes / 1024:,.0f} kB, table with indexes "
            f"{self.table_bytes / 1024:,.0f} kB ({self.bytes_per_row:,.0f} B/row)",
        ]
        if self.ndcg_at_10 is not None:
            lines.append(
                f"relevance     nDCG@10 {self.ndcg_at_10:.4f}, recall@100 {self.recall_at_100:.4f} "
                f"({self.judged_queries} judged queries)"
            )
        if self.index_build_seconds is not None:
            lines.append(f"index build   {self.index_build_seconds:.2f} s")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def ndcg(ranked: Sequence[str], gains: Mapping[str, float], at: int = 10) -> float:
    """nDCG@at with linear gain, as trec_eval's ``ndcg_cut``.

    DCG = sum over ranks i = 1..at of gain(doc_i) / log2(i + 1); grades <= 0 gain 0.
    The ideal DCG ranks the judged docs by gain. 0.0 when nothing is relevant.

    >>> round(ndcg(["a", "b", "c"], {"a": 1, "c": 2, "d": 3}), 4)   # 2 / (3 + 2/log2(3) + 1/2)
    0.42
    """
    dcg = sum(max(gains.get(d, 0.0), 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:at]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:at]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


#: a distributed table's sizes: its shards' on the workers (the coordinator's table is an empty shell)
_SHARD_HNSW_BYTES = (
    "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = '%s'::regclass AND a.amname = 'hnsw'"
)
_DISTRIBUTED_SIZES = (
    "SELECT citus_total_relation_size(%(t)s::regclass), "
    "citus_total_relation_size(%(t)s::regclass) - citus_table_size(%(t)s::regclass), "
    "(SELECT coalesce(sum(result::bigint), 0) FROM run_command_on_shards(%(t)s::regclass, %(hnsw)s))"
)


def sizes(col: Searchable) -> tuple[int, int, int]:
    """(HNSW index, table with TOAST and indexes, all indexes) in bytes; of all shards when distributed."""
    if col.layout.distributed:
        table = f"{SCHEMA}.{col.layout.table_name}"  # a regclass literal, sent as a parameter
        row = col.db.read(
            lambda conn: conn.execute(_DISTRIBUTED_SIZES, {"t": table, "hnsw": _SHARD_HNSW_BYTES}).fetchone()
        )
        assert row is not None
        return int(row[2]), int(row[0]), int(row[1])
    row = col.db.read(
        lambda conn: conn.execute(
            "SELECT pg_total_relation_size(t.oid), pg_indexes_size(t.oid), "
            "coalesce((SELECT pg_relation_size(i.oid) FROM pg_class i "
            "WHERE i.relnamespace = t.relnamespace AND i.relname = %s), 0) "
            "FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND t.relname = %s",
            [col.layout.table_name + "_hnsw", SCHEMA, col.layout.table_name],
        ).fetchone()
    )
    assert row is not None
    return int(row[2]), int(row[0]), int(row[1])


def _relevance(
    col: Searchable, w: Workload, top: list[SearchResult], qrels: Qrels, settings: dict[str, Any]
) -> tuple[float, float, int]:
    """(mean nDCG@10, mean recall@100, judged queries) over queries with a relevant judged doc."""
    ndcgs, recalls = [], []
    for i, (qid, v) in enumerate(zip(w.ids, w.vectors, strict=True)):
        gains = qrels.get(qid, {})
        relevant = {d for d, g in gains.items() if g > 0}
        if not relevant:
            continue
        # ranked as a caller asking for 10 (or 100) rows would get them
        ten = top[i] if w.k == 10 else col.search(vector=v, k=10, **settings)
        hundred = col.search(vector=v, k=100, **settings)
        ndcgs.append(ndcg(ten.keys, gains, 10))
        recalls.append(len(relevant & set(hundred.keys)) / len(relevant))
    if not ndcgs:
        raise InvalidInputError(f"expected judgments for query ids {w.ids[:3]}..., got ids {sorted(qrels)[:3]}...")
    return float(np.mean(ndcgs)), float(np.mean(recalls)), len(ndcgs)


def _report(col: Searchable, w: Workload, run: Run, oversample: float, ef: int | None) -> EvalReport:
    index_bytes, table_bytes, indexes_bytes = sizes(col)
    rows = col.count()
    return EvalReport(
        collection=col.name, compression=col.info.compression, rows=rows, queries=len(w.ids),
        k=w.k, oversample=oversample, ef_search=ef, candidates=math.ceil(w.k * oversample),
        recall=run.recall, p50_ms=run.p50_ms, p95_ms=run.p95_ms, qps=run.qps,
        exact_p50_ms=float(np.percentile(w.exact_ms, 50)), index_bytes=index_bytes,
        table_bytes=table_bytes, indexes_bytes=indexes_bytes,
        bytes_per_row=table_bytes / rows if rows else 0.0,
    )  # fmt: skip


def evaluate(
    col: Searchable,
    queries: Any = None,
    *,
    sample: int | None = None,
    k: int = 10,
    qrels: Qrels | str | Path | None = None,
    oversample: float | None = None,
    ef_search: int | None = None,
    repeat: int = 3,
    seed: int = 0,
    measure_build: bool = False,
) -> EvalReport:
    """Measure recall@k against exact search, latency and size of a collection.

    ``queries``: texts (embedded once, before timing), an ``(n, dims)`` array, or a
    ``{query_id: text or vector}`` dict; a list's query ids are 1, 2, ... in order.
    ``sample=N``: N stored rows' own vectors (chosen with ``seed``; all rows when
    fewer; query ids are their keys); nothing is excluded, so each row finds itself,
    which counts like any other exact neighbour. Latency is per search
    call (p50/p95 over ``repeat`` passes, after a warm-up). ``qrels`` (a dict or a
    file for :func:`~semsearch.readers.read_qrels`) adds nDCG@10 and recall@100 of
    the judged relevant docs; it needs ``queries`` (sampled rows are no judged queries).
    ``measure_build=True`` rebuilds the HNSW index first and reports its build time. The
    ground truth is one exact search (a full scan) per query: on millions of rows that,
    not the timed searches, takes the time.

    Example::

        evaluate(col, sample=200).recall                          # 0.97
        evaluate(col, ["what is lift?"], qrels="qrels.trec", k=10)
        evaluate(col, vectors, oversample=4, ef_search=100).p50_ms
    """
    if not isinstance(repeat, int) or repeat < 1:
        raise InvalidInputError(f"expected repeat >= 1, got {repeat!r}")
    if qrels is not None and queries is None:
        # a sampled row's id is its key, which qrels would take for a query id
        raise InvalidInputError("expected queries with qrels (their ids are the judged query ids), got sampled rows")
    built = col.rebuild_index() if measure_build else None
    if isinstance(qrels, (str, Path)):
        qrels = read_qrels(qrels)
    with col.db.router.pinned():  # one server: the exact and the approximate answers from the same data
        w = Workload(col, *query_vectors(col, queries, sample=sample, seed=seed), k=k)
        stored = catalog_settings(col)
        used = (float(oversample) if oversample is not None else stored[0], ef_search or stored[1])
        run = w.run(oversample=oversample, ef_search=ef_search, repeat=repeat)
        report = _report(col, w, run, *used)
        extra: dict[str, Any] = {"index_build_seconds": built}
        if qrels is not None:
            settings = {"oversample": oversample, "ef_search": ef_search}
            nd, r100, judged = _relevance(col, w, run.results, qrels, settings)
            extra.update(ndcg_at_10=nd, recall_at_100=r100, judged_queries=judged)
        return EvalReport(**{**report.to_dict(), **extra})


def sweep(
    col: Searchable,
    queries: Any = None,
    *,
    sample: int | None = None,
    oversamples: Sequence[float] = (1, 2, 4, 8, 16, 32),
    k: int = 10,
    ef_search: int | None = None,
    repeat: int = 3,
    seed: int = 0,
) -> list[EvalReport]:
    """:func:`evaluate` at each oversampling factor: the recall / latency curve.

    The queries are embedded and their exact answers found once for all points.

    Example::

        for r in sweep(col, sample=200, oversamples=[1, 2, 4, 8]):
            print(r.oversample, r.recall, r.p50_ms)
    """
    if not oversamples:
        raise InvalidInputError("expected at least one oversampling factor, got none")
    with col.db.router.pinned():  # one server: the exact and the approximate answers from the same data
        w = Workload(col, *query_vectors(col, queries, sample=sample, seed=seed), k=k)
        ef = ef_search or catalog_settings(col)[1]
        return [
            _report(col, w, w.run(oversample=f, ef_search=ef_search, repeat=repeat), float(f), ef) for f in oversamples
        ]


def plot_sweep(reports: Sequence[EvalReport], path: str | Path) -> Path:
    """Write a PNG of recall against oversampling and against p50 latency.

    Needs matplotlib (``pip install 'semsearch[plot]'``); draws with the Agg
    backend, without pyplot, so it works headless and leaves global state alone.

    Example::

        plot_sweep(sweep(col, sample=200), "recall.png")
    """
    out = Path(path)
    sweep_figure(reports).savefig(out, format="png", dpi=100)
    return out


def sweep_figure(reports: Sequence[EvalReport]) -> Any:
    """The matplotlib ``Figure`` :func:`plot_sweep` writes (for a notebook, or to draw more on it).

    Example::

        fig = sweep_figure(sweep(col, sample=200)); fig.savefig("recall.svg")
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_sweep needs matplotlib: pip install 'semsearch[plot]'") from exc
    if not reports:
        raise InvalidInputError("expected at least one report to plot, got none")
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    by_factor, by_latency = fig.subplots(1, 2)
    recalls = [r.recall for r in reports]
    by_factor.plot([r.oversample for r in reports], recalls, marker="o")
    by_factor.set(xscale="log", xlabel="oversample (candidates / k)", ylabel=f"recall@{reports[0].k}")
    # the factors themselves as ticks, plainly: a log axis labels its minor ticks "2×10^0"
    factors = sorted({r.oversample for r in reports})
    by_factor.set_xticks(factors, labels=[f"{f:g}" for f in factors])
    by_factor.set_xticks([], minor=True)
    by_latency.plot([r.p50_ms for r in reports], recalls, marker="o")
    by_latency.set(xlabel="p50 latency per search (ms)", ylabel=f"recall@{reports[0].k}")
    for r in reports:
        by_latency.annotate(f"×{r.oversample:g}", (r.p50_ms, r.recall), textcoords="offset points",
                            xytext=(4, -10), fontsize=8)  # fmt: skip
    for ax in (by_factor, by_latency):
        ax.grid(True, alpha=0.3)
    first = reports[0]
    fig.suptitle(f"{first.collection}: {first.compression}, {first.rows:,} rows, {first.queries} queries")
    return fig
