"""Defaults that tune themselves: a new collection reaches recall@10 >= 0.99 without tune()."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import semsearch.tune as tuning
from semsearch.tune import (
    AUTOTUNE_MAX_QUERIES,
    COMPRESSED_Z,
    CONFIDENCE_Z,
    STUCK_FLOOR,
    graph_queries,
    lower_bound,
)
from semsearch.vectors import check_vectors
from semsearch.workload import Workload, proxy_queries


def _held_out_recall(col, queries) -> float:
    """recall@10 of the default search against exact, on queries the collection never saw."""
    vectors = check_vectors(col.embedder.embed(queries), n=len(queries), dims=col.dims)
    w = Workload(col, [str(i) for i in range(len(queries))], vectors, k=10)
    return w.run(oversample=None, ef_search=None).recall


@pytest.mark.parametrize("compression", ["bit", "mrl-bit:128", "halfvec"])
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


def _clustered(n: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 40, dims))
    return (centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dims))).astype(np.float32)


def test_proxy_queries_sit_off_the_rows_as_far_as_a_row_from_its_nearest_other(db):
    vecs = check_vectors(_clustered(2000, 128, 5), n=2000, dims=128)
    col = db.create_collection("px", dims=128, model="label", compression="bit", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    ids, proxies = proxy_queries(col, 60, seed=0)
    assert len(ids) == 60 and all(i.startswith("proxy:") for i in ids)
    assert np.allclose(np.linalg.norm(proxies, axis=1), 1.0, atol=1e-5)
    sims = proxies @ vecs.T
    # never a stored row (a row is found by the graph that holds it: the bias the proxies remove)
    assert sims.max() < 0.999
    # each proxy is as similar to its nearest row as its sampled row is to that row's nearest other row
    rows = np.array([int(i.removeprefix("proxy:")) for i in ids])
    own = vecs[rows] @ vecs.T
    own[np.arange(len(rows)), rows] = -1
    assert np.median(np.abs(sims.max(axis=1) - own.max(axis=1))) < 0.03
    # the same seed makes the same proxies
    assert np.array_equal(proxy_queries(col, 60, seed=0)[1], proxies)


def test_tune_on_proxies_chooses_a_setting_whose_recall_clears_its_standard_error(db):
    vecs = _clustered(3000, 64, 6)
    col = db.create_collection("se", dims=64, model="label", compression="bit", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    result = col.tune(target_recall=0.95, k=10, sample=80)
    assert result.reached and result.queries == 80
    # a compressed plan's proxies are judged by lower_bound (stuck ones counted for half, COMPRESSED_Z):
    # the same proxies, searched again at each point tried, give the per-proxy recalls it saw
    w = Workload(col, *proxy_queries(col, 80, seed=0, shaped=True), k=10)

    def bound(p) -> float:
        run = w.run(oversample=p.oversample, ef_search=p.ef_search or max(40, p.candidates))
        assert run.recall == pytest.approx(p.recall, abs=1e-9)
        return lower_bound(run.each, COMPRESSED_Z, STUCK_FLOOR)

    chosen = next(p for p in result.tried if (p.candidates, p.ef_search) == (result.candidates, result.ef_search))
    assert bound(chosen) >= 0.95
    # every smaller count tried at the same ef policy fell short of that bound
    below = [p for p in result.tried if p.ef_search == result.ef_search and p.candidates < result.candidates]
    assert below and all(bound(p) < 0.95 for p in below)
    assert all(p.recall_se > 0 for p in below)


def test_autotune_stores_the_setting_it_measured_without_a_flat_headroom(db):
    vecs = _clustered(1500, 64, 7)
    col = db.create_collection("nm", dims=64, model="label", compression="bit")
    tuned = col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs)).tuned
    assert tuned is not None and tuned.reached and tuned.margin == 1.0
    assert col.info.oversample == pytest.approx(tuned.oversample, abs=1e-6)
    assert tuned.queries == AUTOTUNE_MAX_QUERIES  # 1,500 rows: the budget allows the most proxies


def _low_rank(n: int, dims: int, latent: int, seed: int) -> np.ndarray:
    """Rows spanning ``latent`` of ``dims`` directions: isotropic noise falls mostly outside their span."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, latent)) @ rng.normal(size=(latent, dims))
    return (base + 0.5 * rng.normal(size=(n, dims))).astype(np.float32)


def test_shaped_proxies_leave_their_rows_neighbourhood_where_isotropic_ones_keep_it(db):
    vecs = check_vectors(_low_rank(2000, 256, 32, 9), n=2000, dims=256)
    col = db.create_collection("sh", dims=256, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    own = vecs @ vecs.T

    def kept(proxies: np.ndarray, ids: list[str]) -> float:
        """Share of each proxy's top-10 among its sampled row and that row's 10 nearest others."""
        rows = [int(i.removeprefix("proxy:")) for i in ids]
        top = np.argsort(-(proxies @ vecs.T), axis=1)[:, :10]
        return float(
            np.mean([len(set(t) & set(np.argsort(-own[r])[:11])) / 10 for t, r in zip(top, rows, strict=True)])
        )

    iso_ids, iso = proxy_queries(col, 60, seed=0)
    ids, shaped = proxy_queries(col, 60, seed=0, shaped=True)
    assert ids == iso_ids and np.allclose(np.linalg.norm(shaped, axis=1), 1.0, atol=1e-5)
    # isotropic noise scales every similarity alike: the walk meets the sampled row's own neighbours
    assert kept(shaped, ids) < kept(iso, ids) - 0.1
    # the same calibration: as similar to the nearest of those rows as the sampled row is to its nearest other
    rows = np.array([int(i.removeprefix("proxy:")) for i in ids])
    nearest_other = np.where(np.eye(len(vecs), dtype=bool)[rows], -1, own[rows]).max(axis=1)
    assert np.median(np.abs((shaped @ vecs.T).max(axis=1) - nearest_other)) < 0.05
    assert np.array_equal(proxy_queries(col, 60, seed=0, shaped=True)[1], shaped)


def test_tune_of_a_graph_only_plan_tunes_ef_search_at_k_candidates(db):
    vecs = _clustered(3000, 64, 6)
    col = db.create_collection("gr", dims=64, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    result = col.tune(target_recall=0.99, k=10, sample=80)
    # the coarse pass ranks as the full vectors do: more candidates would rescore nothing
    assert result.reached and result.candidates == 10 and result.oversample == 1.0
    assert result.ef_search is not None and col.info.ef_search == result.ef_search
    assert all(p.candidates == 10 and p.ef_search is not None for p in result.tried)
    chosen = next(p for p in result.tried if p.ef_search == result.ef_search)
    assert chosen.recall - CONFIDENCE_Z * chosen.recall_se >= 0.99
    assert all(p.recall - CONFIDENCE_Z * p.recall_se < 0.99 for p in result.tried if p.ef_search < result.ef_search)


def test_tune_of_a_compressed_plan_measures_on_data_shaped_proxies(db):
    # at 50k+ rows a bit plan's coarse pass misses by the graph walk too: isotropic proxies were too easy
    vecs = check_vectors(_low_rank(2000, 256, 32, 9), n=2000, dims=256)
    col = db.create_collection("bs", dims=256, model="label", compression="bit", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    result = col.tune(target_recall=0.99, k=10, sample=60)
    auto = sorted((p for p in result.tried if p.ef_search is None), key=lambda p: p.candidates)

    def recall(shaped: bool, oversample: float) -> float:
        # at the automatic ef_search the points were measured at (the tuned one may be wider)
        w = Workload(col, *proxy_queries(col, 60, seed=0, shaped=shaped), k=10)
        return w.run(oversample=oversample, ef_search=max(40, round(oversample * 10))).recall

    # every point tune() measured is the shaped proxies' recall, not the isotropic ones'
    assert len(auto) >= 2
    for p in auto[:2]:
        assert p.recall == pytest.approx(recall(True, p.oversample), abs=1e-9)
        assert p.recall != pytest.approx(recall(False, p.oversample), abs=1e-9)


def test_tune_of_a_graph_only_plan_measures_on_ten_partner_sixteen_row_proxies(db, monkeypatch):
    # 2 partners and 4 noise rows asked 2.1-2.5x the ef_search held-out queries need (bench/results/autotune.md)
    asked = []

    def spy(col, n, **kw):
        asked.append((col.layout.plan.kind, kw))
        return proxy_queries(col, n, **kw)

    monkeypatch.setattr(tuning, "proxy_queries", spy)
    vecs = _clustered(3000, 64, 6)
    for plan in ("halfvec", "bit"):
        col = db.create_collection(f"g{plan}", dims=64, model="label", compression=plan, autotune=False)
        col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
        assert col.tune(target_recall=0.99, k=10, sample=80).reached
    assert asked == [
        ("halfvec", {"seed": 0, "shaped": True, "partners": 10, "noise_rows": 16}),
        ("bit", {"seed": 0, "shaped": True}),  # the compressed plans keep 2 partners and 4 noise rows
    ]


def test_autotune_of_a_graph_only_plan_draws_up_to_a_thousand_proxies(db):
    vecs = _clustered(1500, 32, 8)
    col = db.create_collection("gq", dims=32, model="label", compression="halfvec")
    tuned = col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs)).tuned
    # its recall flattens near 0.99: 200 proxies' standard error alone moved the stored ef_search 1.5-2x
    assert tuned is not None and tuned.queries == 1000 == graph_queries(1500)
    assert graph_queries(9000) == 1000 and graph_queries(50_000) == 200  # the same row budget as the other plans
