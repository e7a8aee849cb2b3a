"""What a collection measures and tunes: recall, latency, oversampling, fusion.

Each method is a typed front for its module (:mod:`semsearch.evaluate`, :mod:`semsearch.tune`,
:mod:`semsearch.fusion`), which take the sync collection's :class:`~semsearch.faces.Searchable`
face: many exact searches, written once, for the sync API. The async twin runs that one
implementation in a worker thread on a sync handle of the same server
(:func:`semsearch.aio.flavour.offload`); the errors are the same.
Written once, for asyncio, in ``semsearch/aio/measuring.py``;
``semsearch/measuring.py`` is generated from it (``tools/make_sync.py``).

Example::

    print(await col.evaluate(sample=200))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from semsearch.aio.faces import Searchable
from semsearch.aio.flavour import offload
from semsearch.aio.pending import awaitable
from semsearch.evaluate import EvalReport, evaluate, sweep
from semsearch.fusion import HybridTuneResult, tune_hybrid
from semsearch.tune import TuneResult, tune


class AsyncMeasuring:
    """The measuring half of a collection (a mixin; use a collection)."""

    @awaitable
    async def evaluate(
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

            print(await col.evaluate(sample=200))                   # recall, p50/p95 ms, qps, sizes
            (await col.evaluate(["what is lift?"], qrels="qrels.trec")).ndcg_at_10
        """
        return await offload(
            _collection(self), evaluate, queries, sample=sample, k=k, qrels=qrels, oversample=oversample,
            ef_search=ef_search, repeat=repeat, seed=seed, measure_build=measure_build,
        )  # fmt: skip

    @awaitable
    async def sweep(
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
            plot_sweep(await col.sweep(sample=200, oversamples=[1, 2, 4, 8]), "recall.png")
        """
        return await offload(
            _collection(self), sweep, queries, sample=sample, oversamples=oversamples, k=k, ef_search=ef_search,
            repeat=repeat, seed=seed,
        )  # fmt: skip

    @awaitable
    async def tune_hybrid(self, queries: Any, qrels: Any) -> HybridTuneResult:
        """Pick the hybrid fusion and weights with the best nDCG@10 on judged queries and store them.

        See :func:`semsearch.fusion.tune_hybrid`; later hybrid searches (and
        ``semsearch.hybrid_search()``) use the stored setting.

        Example::

            (await col.tune_hybrid(queries, "cranqrel")).best      # FusionPoint('blend', 0.35, 0.65, 0.41)
        """
        return await offload(_collection(self), tune_hybrid, queries, qrels)

    @awaitable
    async def tune(
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

            result = await col.tune(target_recall=0.99, k=10)
            result.reached, result.oversample, col.info.oversample   # True, 3.2, 3.2
        """
        return await offload(
            _collection(self), tune, target_recall=target_recall, k=k, sample=sample, queries=queries,
            max_oversample=max_oversample, seed=seed,
        )  # fmt: skip


def _collection(self: AsyncMeasuring) -> Searchable:
    # only a collection inherits this mixin
    return cast(Searchable, self)
