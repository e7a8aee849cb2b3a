"""How tune() walks the (candidates, ef_search) plane of a compressed plan.

The measurements are scripted here, in the shape measured at a million rows (bench/efgrid.py): the
bits cap recall by the candidate count, the coarse walk caps it by ef_search, a candidate costs a
heap row and a step of ef_search much less. What is tested is the search over that plane, which
the real collections in tests/test_autotune.py cannot make the walk limit (they are too small).
"""

from __future__ import annotations

from dataclasses import dataclass

from semsearch.results import TunePoint
from semsearch.tune import EF_LADDER, _best_short, _by_candidates, _Search
from semsearch.workload import Run


@dataclass
class Plane:
    """Recall and p50 of a (candidates, ef_search) point, and the points asked for."""

    k: int = 10
    #: candidates whose bits hold 0.99 of the answers, given a long enough walk
    bits_enough: int = 60
    #: ef_search whose walk finds the bits' nearest candidates
    walk_enough: int = 600

    def run(self, *, oversample: float, ef_search: int) -> Run:
        c = round(oversample * self.k)
        recall = 0.995 if c >= self.bits_enough and ef_search >= self.walk_enough else 0.95
        return Run(results=[], ms=[0.02 * c + 0.004 * ef_search], recall=recall, recall_se=0.001)


def test_a_wider_walk_with_fewer_candidates_is_found_when_the_automatic_one_never_reaches() -> None:
    # a million rows: the automatic ef_search (= candidates) would reach at 600 candidates, 320 are allowed
    search = _Search(Plane(), 0.99, 1.0)  # type: ignore[arg-type]
    best = _by_candidates(search, 10, 320)
    assert best is not None
    # at ef_search 640 about 60 candidates reach (within the bisection's ~6%)
    assert best.ef_search == 640 and 60 <= best.candidates <= 64
    assert not any(search.reaches(p) for (_, ef), p in search.points.items() if ef is None)
    # every level was probed (one point each below 640, where the walk is too short)
    assert {ef for _, ef in search.points if ef is not None} == set(EF_LADDER)


def test_the_ladder_finds_the_walk_a_collection_needs_with_few_candidates() -> None:
    # the walk needs ef_search 320, the bits 40 candidates; 160 candidates allowed: the automatic
    # ef_search never reaches, and at ef_search 320 itself 40 candidates do
    search = _Search(Plane(bits_enough=40, walk_enough=320), 0.99, 1.0)  # type: ignore[arg-type]
    best = _by_candidates(search, 10, 160)
    assert best is not None and best.ef_search == 320 and 40 <= best.candidates <= 42


def test_the_automatic_point_stays_when_it_reaches_and_no_wider_level_is_tried() -> None:
    # the walk is long enough at the automatic ef_search from 600 candidates: kept, though ef_search 640
    # would reach with 60 (a p50 measured in the tuning run chose such points and lost held out at 9k)
    search = _Search(Plane(), 0.99, 1.0)  # type: ignore[arg-type]
    best = _by_candidates(search, 10, 1280)
    assert best is not None and best.ef_search is None and 600 <= best.candidates <= 640
    assert not [ef for _, ef in search.points if ef is not None]


def test_short_of_the_target_the_automatic_points_best_recall_is_kept() -> None:
    # a million rows, 20 proxies: nothing reaches 0.99 less its standard error; a wider level's
    # point and a cheaper automatic one tie the best recall on the proxies with half the candidates
    # (held out both measured 0.980, against 0.997)
    search = _Search(Plane(bits_enough=10**6), 0.99, 1.0)  # type: ignore[arg-type]
    search.points = {
        (160, None): TunePoint(16.0, None, 160, 0.980, 4.0, 0.004),
        (320, None): TunePoint(32.0, None, 320, 0.985, 9.0, 0.004),
        (640, None): TunePoint(64.0, None, 640, 0.985, 20.0, 0.004),
        (320, 320): TunePoint(32.0, 320, 320, 0.985, 5.0, 0.004),
    }
    best = _best_short(search)
    assert (best.candidates, best.ef_search) == (640, None)
