"""Choose and store how hybrid search fuses its text (BM25) and vector lists, on judged queries.

The fusion itself runs in SQL (``semsearch.hybrid_search()``); this module measures
nDCG@10 of each candidate setting through that same function and stores the best in
the catalog, where later hybrid searches, from Python and from SQL, find it.

Example::

    result = tune_hybrid(col, queries, qrels)
    print(result)     # blend 0.35/0.65: nDCG@10 0.41 (text 0.37, vector 0.33) ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import catalog
from semsearch.errors import InvalidInputError
from semsearch.evaluate import ndcg
from semsearch.faces import Searchable
from semsearch.planner import DEFAULT_FUSION, DEFAULT_TEXT_WEIGHT, FUSIONS
from semsearch.readers import Qrels, read_qrels

#: the text list's share of the weight; the vector list gets the rest
TEXT_SHARES = (0.2, 0.35, 0.5, 0.65, 0.8)
#: what hybrid search uses when nothing was tuned: the planner's default (its text weight is its share)
DEFAULT_TEXT_SHARE = DEFAULT_TEXT_WEIGHT


@dataclass(frozen=True)
class FusionPoint:
    """nDCG@10 of one fusion setting."""

    fusion: str
    vector_weight: float
    text_weight: float
    ndcg_at_10: float


@dataclass(frozen=True)
class HybridTuneResult:
    """What :func:`tune_hybrid` stored, what the parts score alone, and every setting tried.

    Example::

        result = col.tune_hybrid(queries, qrels)
        result.best.fusion, result.best.ndcg_at_10, result.text_ndcg_at_10
    """

    collection: str
    queries: int
    best: FusionPoint
    default: FusionPoint
    text_ndcg_at_10: float
    vector_ndcg_at_10: float
    tried: tuple[FusionPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        b = self.best
        return (
            f"{self.collection}: {b.fusion} {b.vector_weight:g}/{b.text_weight:g} (vector/text): nDCG@10 "
            f"{b.ndcg_at_10:.4f}; default {self.default.ndcg_at_10:.4f}, text alone {self.text_ndcg_at_10:.4f}, "
            f"vector alone {self.vector_ndcg_at_10:.4f}; {self.queries} judged queries, {len(self.tried)} settings"
        )


def tune_hybrid(
    col: Searchable,
    queries: Sequence[str] | Mapping[str, str],
    qrels: Qrels | str | Path,
    *,
    fusions: Sequence[str] = FUSIONS,
    text_shares: Sequence[float] = TEXT_SHARES,
) -> HybridTuneResult:
    """Find the fusion and weights with the best mean nDCG@10 on judged queries, and store them.

    ``queries``: texts (query ids 1, 2, ... in order, as qrels number them) or
    ``{query_id: text}``; ``qrels``: judgments (a dict or a file for
    :func:`~semsearch.readers.read_qrels`). Each setting runs every judged query through
    ``semsearch.hybrid_search()``; the queries are embedded once. The default setting
    (blend 0.3/0.7) is always among those compared: a tuned one is stored only when it
    scores higher.

    Example::

        result = tune_hybrid(col, queries, "cranqrel")
        col.search("boundary layer", mode="hybrid")     # now fused as tuned
    """
    if isinstance(qrels, (str, Path)):
        qrels = read_qrels(qrels)
    items = list(queries.items()) if isinstance(queries, Mapping) else [(str(i + 1), q) for i, q in enumerate(queries)]
    judged = [(qid, text) for qid, text in items if any(g > 0 for g in qrels.get(qid, {}).values())]
    if not judged:
        raise InvalidInputError(f"expected judgments for query ids like {items[0][0] if items else '1'}, got none")
    if any(f not in FUSIONS for f in fusions) or not all(0 <= w <= 1 for w in text_shares):
        raise InvalidInputError(
            f"expected fusions in {FUSIONS} and text shares in [0, 1], got {fusions}, {text_shares}"
        )
    with col.db.router.pinned(fresh=True):  # measured where the result is stored (replicas may lag)
        vectors = col.embedder.embed([text for _, text in judged])

        def mean_ndcg(**search: Any) -> float:
            scores = [
                ndcg(col.search(text, vector=v, k=10, **search).keys, qrels[qid], 10)
                for (qid, text), v in zip(judged, np.asarray(vectors), strict=True)
            ]
            return float(np.mean(scores))

        def point(fusion: str, share: float) -> FusionPoint:
            wv, wt = round(1 - share, 4), round(share, 4)
            return FusionPoint(
                fusion, wv, wt, mean_ndcg(mode="hybrid", fusion=fusion, vector_weight=wv, text_weight=wt)
            )

        # the default is one of the candidates, first, so that a setting is stored only if it beats it
        settings = dict.fromkeys(
            [(DEFAULT_FUSION, DEFAULT_TEXT_SHARE), *((f, w) for f in fusions for w in text_shares)]
        )
        tried = tuple(point(f, w) for f, w in settings)
        default = tried[0]
        best = max(tried, key=lambda p: p.ndcg_at_10)
        text_alone = float(np.mean([ndcg(col.search(t, k=10, mode="text").keys, qrels[q], 10) for q, t in judged]))
        vector_alone = float(
            np.mean(
                [
                    ndcg(col.search(vector=v, k=10).keys, qrels[qid], 10)
                    for (qid, _), v in zip(judged, np.asarray(vectors), strict=True)
                ]
            )
        )
        stored = {
            "fusion": best.fusion, "vector_weight": best.vector_weight, "text_weight": best.text_weight,
            "ndcg_at_10": round(best.ndcg_at_10, 4), "queries": len(judged),
            "tuned_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }  # fmt: skip
    with col.db.connection() as conn:
        conn.execute(catalog.update_statement(col.name, hybrid=stored))
    col._reload()
    return HybridTuneResult(col.name, len(judged), best, default, text_alone, vector_alone, tried)
