"""Tune a collection's oversampling (and ef_search) to a target recall, and store them.

Recall is recall@k of the two-stage search against exact search on the full
vectors, measured on proxy queries made from sampled rows (or on given queries). The chosen settings go to
the catalog, where ``semsearch.search()`` reads them when a call gives none.

Example::

    result = tune(col, target_recall=0.99, k=10)
    print(result)      # oversample 3.2 (32 candidates), ef_search auto: recall 0.9915 ...
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from semsearch import exact_scan
from semsearch.autoplan import Size
from semsearch.errors import InvalidInputError
from semsearch.faces import Searchable
from semsearch.planner import EF_FLOOR, MAX_EF, MAX_K
from semsearch.results import TunePoint, TuneResult
from semsearch.values import float4
from semsearch.workload import Workload, catalog_settings, proxy_queries, query_vectors

log = logging.getLogger(__name__)

#: semsearch.search() runs HNSW with ef_search = max(this, candidates) when none is stored
AUTO_EF_FLOOR = EF_FLOOR
#: the wider ef_search levels tried when the automatic one (ef_search = candidates) reaches nothing
#: up to the most candidates allowed: at a million rows the coarse walk, not the bits, limits a ``bit`` plan's
#: recall, and rescoring a candidate (one heap row of the full vector) costs more than walking
#: further: held out, (60 candidates, ef_search 600) reached 0.993 where the automatic ef_search
#: needed 640 candidates, 0.75x against 1.22x pgvector's p50 (bench/results/efgrid/)
EF_LADDER = (80, 160, 320, 640, MAX_EF)
#: a setting reaches the target when its measured recall, less this many standard errors over the
#: queries, does: the smallest count that clears a noisy estimate is otherwise chosen for its luck
#: (100 proxies on Cranfield: 160 to 290 candidates by seed). More queries, less headroom
CONFIDENCE_Z = 1.0
#: a compressed plan's proxies (``bit``, ``mrl-bit``, ...) are judged on their recalls each counted as
#: at least this, with ``COMPRESSED_Z`` standard errors of those: a proxy whose neighbours the coarse
#: walk never reaches ("stuck", recall 0 at every count tried) costs half a query, not a whole one,
#: so one or two of them no longer hold the estimate down while every other proxy is found (250k,
#: 120 proxies: x22 stored where held out needed 40 candidates at a 4x ef_search). Chosen by replaying
#: the recorded per-proxy hits (bench/results/tunebit_rules.md, 200 proxies at 250k: 4-9% of draws
#: short of 0.99 held out at 54-62 candidates; the plain mean at z = 1: 10-12%; 40 proxies today:
#: 20-31%; a trimmed mean dropping the lowest 1%: 20-48% short, for the proxies stuck at the
#: automatic ef_search stand for held-out queries the walk misses there too: so not dropped)
STUCK_FLOOR = 0.5
COMPRESSED_Z = 1.5
#: plans whose coarse pass ranks as the full vectors do (the vectors at half precision, or themselves):
#: more candidates rescore nothing, recall is the graph's, so ef_search is tuned at k candidates
#: (falling back to more candidates if no ef_search reaches: halfvec's rounding can tie rows)
GRAPH_ONLY = ("halfvec", "none")
#: plans tuned on proxies with data-shaped noise: isotropic noise leaves the walk's ranking as it was
#: (too easy for the graph: the graph-only plans, and full-dimension ``bit`` at 50k rows and up),
#: but flips more of a short prefix's bits (Cranfield ``mrl-bit:128``: shaped proxies stored x56,
#: 0.99 missed held out; isotropic x64 reached it), so ``mrl-bit`` keeps isotropic proxies
SHAPED_PROXIES = (*GRAPH_ONLY, "bit")
#: the graph-only plans' proxies mix a sampled row with this many of its 10 nearest (Dirichlet weights) ...
GRAPH_PROXY_PARTNERS = 10
#: ... and take their shaped noise from this many sampled rows. On 1,000 proxies (stored / fewest ef_search
#: reaching 0.99 held out): 2 partners and 4 rows (the compressed plans' proxies) asked 2.1x on Jeopardy 9k and
#: the synthetic 10k set, 2.2-2.5x on jeopardy256; 10 and 50 fitted Jeopardy (1.2x) but missed 0.99 on synthetic
#: (0.9870) and jeopardy256 ``none``; 10 and 16: synthetic 1.13x, jeopardy256 1.45-1.78x, Jeopardy 1,536 dims 2.2-2.8x
#: (bench/results/autotune.md)
GRAPH_PROXY_NOISE_ROWS = 16


def _oversample(candidates: int, k: int) -> float:
    """candidates / k as the catalog's real (float4), never rounding up past ``candidates``."""
    # semsearch.search() takes ceil(k * oversample) in float4: 1.7 is 1.70000005, giving 18 of 10*1.7
    x = np.float32(candidates / k)
    while math.ceil(float(x) * k) > candidates:
        x = np.nextafter(x, np.float32(0))
    return float4(float(x))


class _Search:
    """Measures (candidates, ef policy) points once each and finds the smallest that reaches."""

    def __init__(self, w: Workload, target: float, z: float, floor: float = 0.0) -> None:
        self.w, self.target, self.z, self.floor = w, target, z, floor
        self.points: dict[tuple[int, int | None], TunePoint] = {}
        self.bounds: dict[tuple[int, int | None], float] = {}

    def reaches(self, p: TunePoint) -> bool:
        bound = self.bounds.get((p.candidates, p.ef_search))
        return (p.recall - self.z * p.recall_se if bound is None else bound) >= self.target

    def measure(self, candidates: int, ef: int | None) -> TunePoint:
        if (candidates, ef) not in self.points:
            used = ef if ef is not None else min(MAX_EF, max(AUTO_EF_FLOOR, candidates))
            over = _oversample(candidates, self.w.k)
            run = self.w.run(oversample=over, ef_search=used)
            self.points[candidates, ef] = TunePoint(over, ef, candidates, run.recall, run.p50_ms, run.recall_se)
            if run.each:  # else (a run without per-query recalls) its mean and standard error
                self.bounds[candidates, ef] = lower_bound(run.each, self.z, self.floor)
        return self.points[candidates, ef]

    def smallest(self, lo: int, hi: int, at: Callable[[int], tuple[int, int | None]]) -> TunePoint | None:
        """Smallest x in [lo, hi] whose point ``at(x)`` (candidates, ef) reaches: doubling, then bisection."""
        failed, c = lo - 1, lo
        while True:
            if self.reaches(self.measure(*at(c))):
                break
            if c >= hi:
                return None
            failed, c = c, min(hi, c * 2)
        # bisect to ~6%: finer steps would fit the sampled queries' noise, not the data
        while c - failed > max(1, c // 16):
            mid = (failed + c) // 2
            if self.reaches(self.measure(*at(mid))):
                c = mid
            else:
                failed = mid
        return self.measure(*at(c))


def lower_bound(each: Any, z: float, floor: float = 0.0) -> float:
    """The recall a setting is judged by: the mean of the per-query recalls ``each`` (each at least
    ``floor``) less ``z`` standard errors of them.

    >>> two_stuck = [1.0] * 198 + [0.0] * 2
    >>> round(lower_bound(two_stuck, z=1.0), 4), round(lower_bound(two_stuck, 1.5, 0.5), 4)
    (0.9829, 0.9897)
    """
    r = np.maximum(np.asarray(each, dtype=np.float64), floor)
    if len(r) == 0:
        return 0.0
    se = float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else 0.0
    return float(r.mean()) - z * se


def tune(
    col: Searchable,
    *,
    target_recall: float = 0.99,
    k: int = 10,
    sample: int = 200,
    queries: Any = None,
    max_oversample: float = 64.0,
    seed: int = 0,
    rows: int | None = None,
) -> TuneResult:
    """Find and store the cheapest oversampling (and ef_search) reaching ``target_recall``.

    On ``sample`` proxy queries made from stored rows (see
    :func:`~semsearch.workload.proxy_queries`; or on ``queries``: texts or vectors, see
    :func:`~semsearch.evaluate.evaluate`) it doubles the candidate count from ``k``
    until recall@k against exact search reaches the target (on proxies: the recall less
    ``CONFIDENCE_Z`` standard errors over the queries), then bisects down to the
    smallest count that does. ef_search is left automatic (max(40, candidates)) unless
    a wider one of ``EF_LADDER`` reaches the target with fewer candidates at a >10% lower p50
    (each level searched the same way, below the fewest candidates found so far).
    The proxies' noise is data-shaped (``shaped=True``) for the ``SHAPED_PROXIES`` plans: isotropic
    noise leaves the rows' ranking, all the HNSW walk compares, unchanged, and at 50k rows and up
    the walk's misses are part of ``bit``'s too (scale set 50k: isotropic proxies reach 0.99 at 40
    candidates where held-out queries need 120). A ``GRAPH_ONLY`` plan (halfvec, none)
    keeps ``k`` candidates and the same search runs over ef_search instead (from 40 up), since its
    recall is the graph walk's. The catalog then holds the choice (and a ``tuning`` record), so searches without
    ``oversample=`` use it. Unreachable within ``max_oversample``: the best recall
    found is stored and ``reached`` is False. Retune after the data grows by calling
    this again. ``rows``: what ``col.count()`` says, when the caller has just counted it (recorded
    as the rows the setting was tuned at; else counted here).

    Example::

        result = tune(col, target_recall=0.99, k=10, sample=200)
        col.search("jet engine noise", k=10)          # now at the tuned oversample
    """
    if not 0 < target_recall <= 1:
        raise InvalidInputError(f"expected target_recall in (0, 1], got {target_recall!r}")
    if not 1 <= max_oversample <= 1000:
        raise InvalidInputError(f"expected max_oversample between 1 and 1000, got {max_oversample!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"expected k between 1 and {MAX_K}, got {k!r}")
    with col.db.router.pinned(fresh=True):  # measured where the data and the result live (replicas may lag)
        previous = catalog_settings(col)
        # without queries: proxies made from sampled rows, off the graph as a user's queries are
        # (a stored row, even left out of its own answer, is found too easily: see proxy_queries)
        if queries is None:
            # noise that changes their neighbours where the walk's misses count (see SHAPED_PROXIES)
            if col.layout.plan.kind in GRAPH_ONLY:
                picked = _graph_proxies(col, sample, seed)
            else:
                picked = proxy_queries(col, sample, seed=seed, shaped=col.layout.plan.kind in SHAPED_PROXIES)
        else:
            picked = query_vectors(col, queries, sample=None, seed=seed)
        # their exact answers in one streamed pass over the table (many proxies for the cost of one scan)
        w = Workload(col, *picked, k=k, streamed=True)
        # given queries are the user's own: taken at their word; proxies must clear their noise, and a
        # compressed plan's stuck proxies count for half (see STUCK_FLOOR)
        if queries is not None:
            search = _Search(w, target_recall, 0.0)
        elif col.layout.plan.kind in GRAPH_ONLY:
            search = _Search(w, target_recall, CONFIDENCE_Z)
        else:
            search = _Search(w, target_recall, COMPRESSED_Z, STUCK_FLOOR)
        best = _graph_only(search, k) if col.layout.plan.kind in GRAPH_ONLY else None
        if best is None:
            best = _by_candidates(search, k, max(k, math.floor(k * max_oversample)))
        reached = best is not None
        if best is None:
            best = _best_short(search)
        result = TuneResult(
            collection=col.name, target=target_recall, k=k, reached=reached,
            oversample=best.oversample, ef_search=best.ef_search, candidates=best.candidates,
            recall=best.recall, p50_ms=best.p50_ms, queries=len(w.ids), rows=col.count() if rows is None else rows,
            previous_oversample=previous[0], previous_ef_search=previous[1],
            tried=tuple(sorted(search.points.values(), key=lambda p: (p.ef_search or 0, p.candidates))),
        )  # fmt: skip
        _store(col, best, result)
        return result


def _graph_proxies(col: Searchable, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Shaped proxies of ``GRAPH_PROXY_PARTNERS`` partners and ``GRAPH_PROXY_NOISE_ROWS`` noise rows.

    Mixed with all 10 nearest rows, a proxy's 10th-nearest row is as close as a held-out query's (with 2: further,
    an isolated point); noise from 16 rows rather than 4 pulls it less toward a few unrelated rows the walk does
    not reach. Still harder than Jeopardy's questions (2.2-2.8x the fewest ef_search at 1,536 dims), never easier on
    the sets measured: 50 rows fitted Jeopardy but missed 0.99 held out on the synthetic scale set.
    """
    return proxy_queries(
        col, n, seed=seed, shaped=True, partners=GRAPH_PROXY_PARTNERS, noise_rows=GRAPH_PROXY_NOISE_ROWS
    )


def _graph_only(search: _Search, k: int) -> TunePoint | None:
    """The smallest ef_search from the untuned floor (40) reaching the target at ``k`` candidates.

    None when none up to ``MAX_EF`` does. Never below the floor: even shaped proxies can be easier
    than real queries (256-dim rows spanning 32 directions: ef 32 stored, 0.975 held out vs 0.988 at 40).
    """
    return search.smallest(max(k, AUTO_EF_FLOOR), MAX_EF, lambda ef: (k, ef))


def _by_candidates(search: _Search, k: int, most: int) -> TunePoint | None:
    """The fewest candidates (up to ``most``) reaching the target at the automatic ef_search; when
    none does, the fastest point of a wider one of ``EF_LADDER``.

    The ladder is for a walk too short at every automatic ef_search (a million rows: 60 candidates
    at ef_search 600 reach, 640 at the automatic one are needed). Where the automatic point
    reaches, it is kept: a wider level chosen by its p50 in the tuning run lost held out (Jeopardy
    9k ``bit``: 115 candidates at ef_search 320, proxies 0.9930, held out 0.9890 at 1.64x pgvector
    by hand, where the automatic x15 measured 0.9927 at 1.17x; bench/results/querypath/session9_9k_ladder.md).
    A level is probed once at its most candidates and searched only if that reaches; the ladder
    stops at the first level whose fastest point is slower than the best so far.
    """
    auto = search.smallest(k, most, lambda c: (c, None))
    if auto is not None:
        return auto
    best: TunePoint | None = None
    fewest = most
    for ef in EF_LADDER:
        hi = min(fewest, ef)
        if hi < k:
            break
        if not search.reaches(search.measure(hi, ef)):
            continue  # one probe: not even its most candidates reach at this ef_search
        wide = search.smallest(k, hi, lambda c, ef=ef: (c, ef))  # type: ignore[misc]
        if wide is None:
            continue
        if best is not None and wide.p50_ms >= best.p50_ms:
            break
        best, fewest = wide, wide.candidates - 1
    return best


def _best_short(search: _Search) -> TunePoint:
    """Nothing reached: the best recall at the automatic ef_search, the most candidates of equals.

    Short of the target, recall is what is missing, and a tie on few proxies (20 at a million rows:
    one miss is 0.005) is noise: so not a wider level's point (it keeps fewer candidates, which cost
    recall on unseen queries) and not the cheaper of equals. Held out at 1M, with the proxies tied
    at 0.985: 320 candidates at ef_search 320 measured 0.980, 320 at the automatic one 0.980, 640
    at the automatic one 0.997 (bench/results/efgrid/).
    """
    auto = [p for (_, ef), p in search.points.items() if ef is None] or list(search.points.values())
    return max(auto, key=lambda p: (p.recall, p.candidates))


def _store(col: Searchable, best: TunePoint, result: TuneResult) -> None:
    tuning = {
        "target": result.target, "k": result.k, "recall": result.recall, "reached": result.reached,
        "p50_ms": round(result.p50_ms, 3), "queries": result.queries, "rows": result.rows,
        "candidates": result.candidates,
        "tuned_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    with col.db.connection() as conn:
        conn.execute(
            "UPDATE semsearch.collections SET oversample = %s, ef_search = %s, tuning = %s, tuned_rows = %s "
            "WHERE name = %s",
            [best.oversample, best.ef_search, Jsonb(tuning), result.rows, col.name],
        )
    # Searchable caches its catalog row; later reads of col.info must see the tuned values
    col._reload()


#: automatic tuning: collections smaller than this keep their plan's default
AUTOTUNE_MIN_ROWS = 1000
#: ... and are tuned again when they have grown this many times since
AUTOTUNE_GROWTH = 4
#: where the exact answers cannot be streamed (:func:`semsearch.exact_scan.streamable`: a distributed
#: table, passages, isolated tenants) they cost full scans (two per proxy query: its sampled row's
#: neighbours, then its own answer): about this many rows scanned in all. Streamed, two scans in all
#: answer every proxy, and autotune takes ``AUTOTUNE_MAX_QUERIES`` at any size
AUTOTUNE_BUDGET_ROWS = 20_000_000
#: 200 proxies: a standard error near 0.002 at recall 0.99, the headroom CONFIDENCE_Z adds; at 250k
#: rows 40 proxies left 17-27% of draws short of 0.99 held out (bench/results/tunebit_spread.md)
AUTOTUNE_MAX_QUERIES = 200
AUTOTUNE_MIN_QUERIES = 20
#: graph-only plans: up to this many, within the same budget (1,000 at 10,000 rows, 200 at 50,000). Their recall
#: flattens near 0.99 (Jeopardy 9k held out: 0.989 / 0.991 / 0.993 at ef_search 60 / 80 / 120), so 200 proxies'
#: standard error alone moved the stored ef_search 1.5-2x (10-partner / 50-row proxies: 280 with 200, 105 with 1,000)
AUTOTUNE_GRAPH_MAX_QUERIES = 1000
#: the proxies ask more of a low-dimension bit plan than real queries do (Cranfield, local model,
#: mrl-bit:128: past 64x): automatic tuning looks this far rather than store a plan short of 0.99
AUTOTUNE_MAX_OVERSAMPLE = 128.0


def autotune_queries(col: Searchable, rows: int) -> int:
    """How many proxy queries autotune measures on: all ``AUTOTUNE_MAX_QUERIES`` when their exact
    answers stream (one pass for all), else as many as ``AUTOTUNE_BUDGET_ROWS`` of exact scans allow;
    a ``GRAPH_ONLY`` plan at least as many, and up to :func:`graph_queries` (1,000 on small tables)."""
    most = AUTOTUNE_GRAPH_MAX_QUERIES if col.layout.plan.kind in GRAPH_ONLY else AUTOTUNE_MAX_QUERIES
    budgeted = _budgeted(rows, most)
    return max(AUTOTUNE_MAX_QUERIES, budgeted) if exact_scan.streamable(col) else budgeted


def _budgeted(rows: int, most: int) -> int:
    """Up to ``most`` proxies whose exact scans (two each) stay within ``AUTOTUNE_BUDGET_ROWS`` rows."""
    return max(AUTOTUNE_MIN_QUERIES, min(most, AUTOTUNE_BUDGET_ROWS // (2 * rows)))


def autotune(col: Searchable, *, after_bulk_load: bool = False, size: Size | None = None) -> TuneResult | None:
    """Tune ``col`` for recall@10 >= 0.99 if it asks for it and needs it; None when it does not.

    It needs it after a bulk load, and when its embedded rows have grown
    ``AUTOTUNE_GROWTH``-fold since the last tune (or were never tuned). The cost is
    bounded: ``AUTOTUNE_MAX_QUERIES`` proxy queries (up to ``AUTOTUNE_GRAPH_MAX_QUERIES`` for a
    ``GRAPH_ONLY`` plan, see :func:`graph_queries`) whose exact answers take two streamed
    passes over the table (:mod:`semsearch.exact_scan`; where they cannot stream, fewer
    proxies on large collections: ``AUTOTUNE_BUDGET_ROWS`` rows scanned), and it is logged. The
    setting stored is the one measured: no flat headroom (the proxies are as hard as unseen
    queries, and a setting must clear its recall's standard error, see ``CONFIDENCE_Z``).
    Off with ``create_collection(autotune=False)`` or ``alter_collection(..., autotune=False)``.
    ``size``: the count the plan rule made after the same load (:class:`semsearch.autoplan.Size`), not made again.

    Example::

        result = autotune(col, after_bulk_load=True)
        print(result or "not needed")
    """
    info = col.db.collection(col.name).info
    if not info.autotune:
        return None
    rows = (size or Size()).documents(col.db, info)  # what col.count() says, as tune() records it in tuned_rows
    grown = info.tuned_rows is None or rows >= AUTOTUNE_GROWTH * info.tuned_rows
    if rows < AUTOTUNE_MIN_ROWS or not (after_bulk_load or grown):
        return None
    queries = autotune_queries(col, rows)
    started = time.perf_counter()
    # stored as tuned: the proxy queries stand for unseen ones, no flat headroom on top
    result = tune(col, target_recall=0.99, k=10, sample=queries, max_oversample=AUTOTUNE_MAX_OVERSAMPLE, rows=rows)
    log.info("autotune of %s took %.1f s: %s", col.name, time.perf_counter() - started, result)
    log.debug(
        "autotune of %s tried (candidates@ef_search: proxies' recall, SE, p50): %s",
        col.name,
        "; ".join(
            f"{p.candidates}@{p.ef_search or 'auto'}: {p.recall:.4f} {p.recall_se:.4f} {p.p50_ms:.2f} ms"
            for p in result.tried
        ),
    )
    return result


def graph_queries(rows: int) -> int:
    """How many proxies autotune draws for a ``GRAPH_ONLY`` plan of ``rows`` rows (the budget's share).

    >>> graph_queries(1400), graph_queries(9000), graph_queries(50_000), graph_queries(250_000)
    (1000, 1000, 200, 40)
    """
    return _budgeted(rows, AUTOTUNE_GRAPH_MAX_QUERIES)
