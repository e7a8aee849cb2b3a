"""What :class:`~semsearch.collection.Collection` measures and tunes: recall, latency, oversampling, fusion.

Each method is a typed front for its module (:mod:`semsearch.evaluate`,
:mod:`semsearch.tune`, :mod:`semsearch.fusion`), which take the collection's
:class:`~semsearch.faces.Searchable` face.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from semsearch.evaluate import EvalReport, evaluate, sweep
from semsearch.faces import Searchable
from semsearch.fusion import HybridTuneResult, tune_hybrid
from semsearch.tune import TuneResult, tune


class Measuring:
    """The measuring half of :class:`~semsearch.collection.Collection` (a mixin; use a collection)."""

    def evaluate(
        self,
        queries: Any = None,
        *,
        sample: int | None = None,
        k: int = 10,
        qrels: Any = None,
        oversample: float | None = None,
        ef_search: int | None = None,
        repeat: int = 3,
        seed: int = 0,
        measure_build: bool = False,
    ) -> EvalReport:
        """Measure recall@k against exact search, latency and size.

        See :func:`semsearch.evaluate.evaluate` for the arguments.

        Example::

            print(col.evaluate(sample=200))                   # recall, p50/p95 ms, qps, sizes
            col.evaluate(["what is lift?"], qrels="qrels.trec").ndcg_at_10
        """

        return evaluate(
            _collection(self),
            queries,
            sample=sample,
            k=k,
            qrels=qrels,
            oversample=oversample,
            ef_search=ef_search,
            repeat=repeat,
            seed=seed,
            measure_build=measure_build,
        )

    def sweep(
        self,
        queries: Any = None,
        *,
        sample: int | None = None,
        oversamples: Sequence[float] = (1, 2, 4, 8, 16, 32),
        k: int = 10,
        ef_search: int | None = None,
        repeat: int = 3,
        seed: int = 0,
    ) -> list[EvalReport]:
        """Recall and latency at each oversampling factor; see :func:`semsearch.evaluate.sweep`.

        Example::

            from semsearch.evaluate import plot_sweep
            plot_sweep(col.sweep(sample=200, oversamples=[1, 2, 4, 8]), "recall.png")
        """

        return sweep(
            _collection(self),
            queries,
            sample=sample,
            oversamples=oversamples,
            k=k,
            ef_search=ef_search,
            repeat=repeat,
            seed=seed,
        )

    def tune_hybrid(self, queries: Any, qrels: Any) -> HybridTuneResult:
        """Pick the hybrid fusion and weights with the best nDCG@10 on judged queries and store them.

        See :func:`semsearch.fusion.tune_hybrid`; later hybrid searches (and
        ``semsearch.hybrid_search()``) use the stored setting.

        Example::

            col.tune_hybrid(queries, "cranqrel").best      # FusionPoint('blend', 0.35, 0.65, 0.41)
        """

        return tune_hybrid(_collection(self), queries, qrels)

    def tune(
        self,
        *,
        target_recall: float = 0.99,
        k: int = 10,
        sample: int = 200,
        queries: Any = None,
        max_oversample: float = 64.0,
        seed: int = 0,
    ) -> TuneResult:
        """Find and store the smallest oversampling reaching ``target_recall``.

        Searches that give no ``oversample=`` / ``ef_search=`` use the tuned values;
        see :func:`semsearch.tune.tune` for how it searches.

        Example::

            result = col.tune(target_recall=0.99, k=10)
            result.reached, result.oversample, col.info.oversample   # True, 3.2, 3.2
        """

        return tune(
            _collection(self),
            target_recall=target_recall,
            k=k,
            sample=sample,
            queries=queries,
            max_oversample=max_oversample,
            seed=seed,
        )


def _collection(self: Measuring) -> Searchable:
    # only Searchable inherits this mixin
    return cast(Searchable, self)
