"""Defaults that tune themselves: a new collection reaches recall@10 >= 0.99 without tune()."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from semsearch.vectors import check_vectors
from semsearch.workload import Workload


def _held_out_recall(col, queries) -> float:
    """recall@10 of the default search against exact, on queries the collection never saw."""
    vectors = check_vectors(col.embedder.embed(queries), n=len(queries), dims=col.dims)
    w = Workload(col, [str(i) for i in range(len(queries))], vectors, k=10)
    return w.run(oversample=None, ef_search=None).recall


@pytest.mark.parametrize("compression", ["bit", "mrl-bit:128"])
def test_a_new_collection_reaches_0_99_on_cranfield_without_tune(db, cranfield, compression, caplog):
    docs, queries = cranfield
    col = db.create_collection("cran", model="local", dims=256, compression=compression)
    with caplog.at_level(logging.INFO, logger="semsearch.tune"):
        result = col.add_many({"key": k, "content": v} for k, v in docs.items())
    assert result.inserted == 1398 and result.tuned is not None and result.tuned.reached
    assert "autotune of cran took" in caplog.text
    assert col.info.tuned_rows == 1398 and col.info.oversample == pytest.approx(result.tuned.oversample, abs=1e-4)
    # the 225 Cranfield queries are not rows of the collection: held out, as a user's are
    assert _held_out_recall(col, queries) >= 0.99


def test_autotune_runs_again_only_when_the_collection_has_grown_fourfold(db):
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(9000, 64)).astype(np.float32)

    def load(lo, hi):
        return col.add_many({"key": i, "content": f"row {i}", "embedding": vecs[i]} for i in range(lo, hi))

    col = db.create_collection("c", dims=64, model="label", compression="bit")
    assert load(0, 500).tuned is None  # too small to need it
    assert load(500, 1500).tuned is not None  # grown past 1,000 rows, never tuned
    assert col.info.tuned_rows == 1500
    assert load(1500, 4000).tuned is None  # 2.7x
    assert load(4000, 6000).tuned is not None  # 4x
    assert col.info.tuned_rows == 6000
    assert (
        load(
            6000,
            7000,
        ).tuned
        is None
    )


def test_autotune_can_be_turned_off(db):
    rng = np.random.default_rng(4)
    vecs = rng.normal(size=(1200, 16)).astype(np.float32)
    records = [{"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs)]
    col = db.create_collection("off", dims=16, model="label", compression="bit", autotune=False)
    assert col.add_many(records).tuned is None and col.info.tuned_rows is None
    on = db.create_collection("on", dims=16, model="label", compression="bit")
    assert on.add_many(records, autotune=False).tuned is None
    db.alter_collection("on", autotune=False)
    assert on.add_many(records[:10], bulk=True).tuned is None
    assert db.collection("on").info.autotune is False
