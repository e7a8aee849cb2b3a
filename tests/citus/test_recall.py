"""The same real vectors on one node and distributed: the same answers, at single-node recall."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import semsearch


def test_distributed_search_agrees_with_one_node_on_jeopardy(
    cdb: semsearch.Database, fresh: Callable[[str], str], jeopardy: tuple[np.ndarray, np.ndarray, list[str]]
) -> None:
    base, queries, texts = jeopardy
    keys = [f"j{i}" for i in range(len(base))]
    # the single node is a plain table on the coordinator; both use the default plan (bit + rescore)
    one = cdb.create_collection(fresh("one"), dims=1536, model="text-embedding-ada-002", autotune=False)
    many = cdb.create_collection(
        fresh("many"), dims=1536, model="text-embedding-ada-002", autotune=False, distribute_by="key"
    )
    for col in (one, many):
        col.add_many(
            ({"key": k, "content": t, "embedding": v} for k, t, v in zip(keys, texts, base, strict=True)),
            autotune=False,
        )
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    agree = recall = 0.0
    for q, best in zip(queries, truth, strict=True):
        a = [h.key for h in one.search(vector=q, k=10)]
        b = [h.key for h in many.search(vector=q, k=10)]
        agree += len(set(a) & set(b)) / 10
        recall += len(set(b) & {keys[i] for i in best}) / 10
    assert agree / len(queries) >= 0.98
    assert recall / len(queries) >= 0.99
