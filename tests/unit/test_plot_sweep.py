"""The sweep plot: its oversampling axis is labelled with the factors, plainly."""

from __future__ import annotations

from semsearch.evaluate import EvalReport, sweep_figure


def _report(oversample: float, recall: float) -> EvalReport:
    return EvalReport(
        collection="movies", compression="bit", rows=1000, queries=50, k=10, oversample=oversample,
        ef_search=None, candidates=int(10 * oversample), recall=recall, p50_ms=oversample / 2, p95_ms=oversample,
        qps=100.0, exact_p50_ms=9.0, index_bytes=1, table_bytes=1, indexes_bytes=1, bytes_per_row=1.0,
    )  # fmt: skip


def test_the_oversampling_axis_reads_as_the_factors():
    fig = sweep_figure([_report(f, r) for f, r in ((1, 0.6), (2, 0.8), (4, 0.95), (8, 0.99))])
    fig.canvas.draw()
    by_factor = fig.axes[0]
    major = [t.get_text() for t in by_factor.get_xticklabels()]
    minor = [t.get_text() for t in by_factor.get_xticklabels(minor=True)]
    assert major == ["1", "2", "4", "8"]
    assert not any(minor), minor  # no "2×10^0"
