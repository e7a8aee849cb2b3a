"""Queries with their exact answers, timed: what evaluation and tuning measure the search path with.

:class:`Workload` holds query vectors (given, embedded from texts, or sampled from the
collection's rows) and their exact top-k; :meth:`Workload.run` times the approximate path
at one setting and scores its recall against those answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from semsearch import exact_scan, vectors
from semsearch.errors import InvalidInputError
from semsearch.faces import Searchable
from semsearch.results import SearchResult
from semsearch.values import float4

#: searches run untimed before timing: the first ones read the index and heap from disk
WARMUP = 20
#: scores this close to the exact k-th score count as found: tied rows have no order
TIE = 1e-9
#: a proxy query mixes a sampled row with this many rows drawn from its nearest ...
PROXY_PARTNERS = 2
#: ... this many (rows that sit together: the mix stays where the data lives)
PROXY_NEIGHBOURS = 10
#: shaped noise is a gaussian combination of this many sampled rows less their mean (as bench/'s scale set)
PROXY_NOISE_ROWS = 4


def recall_vs_exact(approx: SearchResult, exact: SearchResult) -> float:
    """Share of the exact top-k that ``approx`` found; ties with the exact k-th score count."""
    if not exact.hits:
        return 1.0
    truth, kth = set(exact.keys), exact.hits[-1].score
    found = sum(1 for h in approx.hits if h.key in truth or h.score >= kth - TIE)
    return min(found, len(exact.hits)) / len(exact.hits)


def query_vectors(col: Searchable, queries: Any, *, sample: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    """(query ids, unit-norm vectors) from texts, vectors, an {id: query} dict or a sample."""
    if (queries is None) == (sample is None):
        got = "both" if sample is not None else "neither"
        raise InvalidInputError(f"expected queries= or sample=, got {got}")
    if sample is not None:
        return _sample(col, sample, seed)
    if isinstance(queries, Mapping):
        ids, items = [str(q) for q in queries], list(queries.values())
    else:
        items = list(queries)
        ids = [str(i) for i in range(1, len(items) + 1)]  # qrels number queries from 1
    if len(items) == 0:
        raise InvalidInputError("expected at least one query, got none")
    if all(isinstance(q, str) for q in items):
        # embedded once, before any timing: evaluation measures the database, not the model
        texts = [str(q) for q in items]
        if not all(t.strip() for t in texts):
            raise InvalidInputError("expected non-empty query texts, got an empty one")
        return ids, vectors.check_vectors(col.embedder.embed(texts), n=len(texts), dims=col.dims)
    arr = np.asarray(items, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == col.dims:
        arr, ids = arr.reshape(1, -1), ids[:1]
    return ids, vectors.check_vectors(arr, n=len(ids), dims=col.dims)


def _sample(col: Searchable, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"expected sample= as a positive int, got {n!r}")
    table = col.layout.table

    def read(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
        # rows stored with defer=True have no vector yet: they can be neither query nor answer
        ids = conn.execute(
            sql.SQL("SELECT array_agg(id ORDER BY id) FILTER (WHERE embedding IS NOT NULL), count(*) FROM {}").format(
                table
            )
        )
        all_ids, rows_total = ids.fetchone()  # type: ignore[misc]
        all_ids = all_ids or []
        if not all_ids:
            got = "an empty collection" if not rows_total else f"none of {rows_total} row(s) embedded yet (backfill)"
            raise InvalidInputError(f"expected embedded rows to sample in {col.name!r}, got {got}")
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(all_ids, size=min(n, len(all_ids)), replace=False).tolist())
        return conn.execute(
            # an edit since the first query may have reset a vector (the stale trigger): skip that row
            sql.SQL(
                "SELECT key, embedding::vector FROM {} WHERE id = ANY(%s) AND embedding IS NOT NULL ORDER BY id"
            ).format(table),
            [chosen],
        ).fetchall()

    # where searches read (a replica in turn, the primary inside a fresh pin)
    rows = col.db.read(read)
    if not rows:
        raise InvalidInputError(f"expected embedded rows to sample in {col.name!r}, got none left after edits")
    return [r[0] for r in rows], np.stack([r[1].to_numpy().astype(np.float32) for r in rows])


def proxy_queries(
    col: Searchable,
    n: int,
    *,
    seed: int,
    shaped: bool = False,
    partners: int = PROXY_PARTNERS,
    noise_rows: int = PROXY_NOISE_ROWS,
) -> tuple[list[str], np.ndarray]:
    """``n`` synthetic queries for tuning: vectors the collection has never held, as a user's are.

    A stored row sampled as a query is easy for the index (the graph holds it and links it
    to its neighbours): on Jeopardy 9k its recall@10 reaches 0.99 with half the candidates
    1,000 held-out questions need. Each proxy instead mixes a sampled row with
    ``PROXY_PARTNERS`` of its ``PROXY_NEIGHBOURS`` nearest rows (Dirichlet(1) weights), then
    adds isotropic noise scaled so the mix is exactly as similar to its nearest row as the
    sampled row is to its nearest other row: the proxies keep the rows' neighbour-distance
    profile while sitting off the graph. Ids are ``proxy:<sampled key>``.

    Isotropic noise is nearly orthogonal to every row, so it divides every similarity alike and
    leaves the rows' ranking, all an HNSW walk compares, as the mix's: it makes a proxy harder
    for a compressed coarse pass (it flips bits) but not for the graph (Jeopardy 9k, ``halfvec``:
    recall@10 0.99 at ef_search 10, where held-out questions measure 0.92). ``shaped=True``
    draws the noise from the directions rows differ in (``PROXY_NOISE_ROWS`` sampled rows less
    the sample's mean), calibrated to the same similarity: the proxy's neighbours are then no
    longer the sampled row's linked ones, as a real query's are not. ``partners`` and ``noise_rows``
    replace ``PROXY_PARTNERS`` and ``PROXY_NOISE_ROWS`` (bench/graphproxies.py measures other values).

    Example::

        ids, vecs = proxy_queries(col, 100, seed=0)
        Workload(col, ids, vecs, k=10).run(oversample=4, ef_search=None).recall
    """
    keys, rows = _sample(col, n, seed)
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    near = [
        [h.key for h in answer.hits if h.key != key][:PROXY_NEIGHBOURS]
        for key, answer in zip(keys, _exact(col, rows, PROXY_NEIGHBOURS + 1), strict=True)
    ]
    found = _vectors_of(col, sorted({k for ks in near for k in ks}, key=str))
    rng = np.random.default_rng(seed)
    spread = rows - rows.mean(axis=0) if shaped and len(rows) > 1 else None
    out = np.empty_like(rows)
    for i, (v, ks) in enumerate(zip(rows, near, strict=True)):
        others = np.array([found[k] for k in ks if k in found], dtype=np.float32).reshape(-1, rows.shape[1])
        if len(others) == 0:  # a one-row collection (or its neighbours edited away): nothing to mix with
            out[i] = v
            continue
        picked = others[rng.choice(len(others), size=min(partners, len(others)), replace=False)]
        w = rng.dirichlet(np.ones(1 + len(picked)))
        mix = w[0] * v + w[1:] @ picked
        mix /= max(float(np.linalg.norm(mix)), 1e-12)
        # the sampled row's nearest other row: how far a row of this collection is from its neighbours
        target = float(np.max(others @ v))
        if spread is None:
            out[i] = _off(mix, np.vstack([v, others]), target, rng)
        else:
            terms = spread[rng.choice(len(spread), size=min(noise_rows, len(spread)), replace=False)]
            out[i] = _off(mix, np.vstack([v, others]), target, rng, rng.standard_normal(len(terms)) @ terms)
    return [f"proxy:{k}" for k in keys], out


def _off(
    mix: np.ndarray, near: np.ndarray, target: float, rng: np.random.Generator, shape: np.ndarray | None = None
) -> np.ndarray:
    """``mix`` plus random noise (isotropic, or along ``shape``): its best similarity to ``near`` becomes ``target``.

    Isotropic noise of norm sigma, nearly orthogonal to every row in many dimensions, divides
    each similarity by sqrt(1 + sigma^2): sigma follows from the mix's best similarity and the
    target. Noise along the data's directions is not orthogonal to the rows: sigma is bisected.
    """
    best = float(np.max(near @ mix))
    if shape is None:
        sigma = float(np.sqrt((best / target) ** 2 - 1)) if target > 0 and best > target else 0.0
        e = np.asarray(rng.standard_normal(mix.shape[0]), dtype=np.float32)
    else:
        e = np.asarray(shape, dtype=np.float32).copy()
    e -= (e @ mix) * mix  # orthogonal to the mix: the noise moves it off, never toward or away from it
    e /= max(float(np.linalg.norm(e)), 1e-12)

    def moved(sigma: float) -> np.ndarray:
        q = mix + sigma * e
        return (q / np.linalg.norm(q)).astype(np.float32)

    if shape is not None:
        lo, hi = 0.0, 0.0 if best <= target else 8.0
        for _ in range(30):  # to ~1e-8 of sigma: far below any similarity gap between rows
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if float(np.max(near @ moved(mid))) > target else (lo, mid)
        sigma = hi
    return moved(sigma)


def _exact(col: Searchable, queries: np.ndarray, k: int) -> list[SearchResult]:
    """Each query's exact top ``k``: one streamed pass over the table when it can (:mod:`semsearch.exact_scan`),
    else an exact search per query."""
    if exact_scan.streamable(col):
        return exact_scan.exact_answers(col, queries, k)
    return [col.search(vector=v, k=k, exact=True) for v in queries]


def _vectors_of(col: Searchable, keys: list[Any]) -> dict[Any, np.ndarray]:
    """{key: unit-norm stored vector} of the rows with these keys that are still embedded."""
    if not keys:
        return {}
    table = col.layout.table
    rows = col.db.read(
        lambda conn: conn.execute(
            sql.SQL("SELECT key, embedding::vector FROM {} WHERE key = ANY(%s) AND embedding IS NOT NULL").format(
                table
            ),
            [keys],
        ).fetchall()
    )
    out = {}
    for key, v in rows:
        a = v.to_numpy().astype(np.float32)
        out[key] = a / max(float(np.linalg.norm(a)), 1e-12)
    return out


@dataclass(frozen=True)
class Run:
    """One timed pass of the queries at one setting (used by :func:`sweep` and tuning)."""

    results: list[SearchResult]
    ms: list[float]
    recall: float
    #: the standard error of ``recall`` (the per-query recalls' standard deviation / sqrt(queries))
    recall_se: float = 0.0
    #: each query's recall, in the queries' order
    each: tuple[float, ...] = ()

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.ms, 50))

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.ms, 95))

    @property
    def qps(self) -> float:
        return 1000 * len(self.ms) / max(sum(self.ms), 1e-9)


class Workload:
    """Query vectors with their exact answers, to time the approximate path against.

    ``exclude_self=True`` (for stored rows sampled as queries): each query's own row is
    left out of both answers, so recall is measured as for a query the collection has
    never seen, where a row that finds itself would flatter it by about 1/k.
    ``streamed=True`` (tuning): the exact answers come from one streamed pass over the table
    (:mod:`semsearch.exact_scan`) when it can, not from one timed exact search per query;
    ``exact_ms`` is then empty.

    Example::

        w = Workload(col, *query_vectors(col, None, sample=100, seed=0), k=10)
        w.run(oversample=4, ef_search=None).recall
    """

    def __init__(
        self,
        col: Searchable,
        ids: list[str],
        vectors: np.ndarray,
        *,
        k: int,
        exclude_self: bool = False,
        streamed: bool = False,
    ) -> None:
        self.col, self.ids, self.vectors, self.k = col, ids, vectors, k
        self.exclude_self = exclude_self
        if streamed and exact_scan.streamable(col):
            found = exact_scan.exact_answers(col, vectors, self._fetch)
            self.exact = [self._answer(i, r) for i, r in enumerate(found)]
            self.exact_ms: list[float] = []
        else:
            self.exact, self.exact_ms = self._timed(lambda v: col.search(vector=v, k=self._fetch, exact=True))
        self._warm = False

    @property
    def _fetch(self) -> int:
        return self.k + 1 if self.exclude_self else self.k

    def _answer(self, i: int, result: SearchResult) -> SearchResult:
        if not self.exclude_self:
            return result
        others = tuple(h for h in result.hits if h.key != self.ids[i])[: self.k]
        return SearchResult(hits=others, k=self.k, exact=result.exact)

    def _timed(self, search: Any) -> tuple[list[SearchResult], list[float]]:
        results, ms = [], []
        for i, v in enumerate(self.vectors):
            started = time.perf_counter()
            result = search(v)
            ms.append((time.perf_counter() - started) * 1000)
            results.append(self._answer(i, result))
        return results, ms

    def run(self, *, oversample: float | None, ef_search: int | None, repeat: int = 1) -> Run:
        """Search every query ``repeat`` times at these settings (None: the catalog's)."""

        over = oversample
        if self.exclude_self:
            # one more row is fetched, with the candidates a k-row search at this setting takes
            over = (oversample if oversample is not None else catalog_settings(self.col)[0]) * self.k / self._fetch
            over = max(1.0, over)

        def search(v: np.ndarray) -> SearchResult:
            return self.col.search(vector=v, k=self._fetch, oversample=over, ef_search=ef_search)

        if not self._warm:
            for v in self.vectors[:WARMUP]:
                search(v)
            self._warm = True
        results, ms = self._timed(search)
        for _ in range(repeat - 1):
            ms += self._timed(search)[1]
        each = [recall_vs_exact(a, e) for a, e in zip(results, self.exact, strict=True)]
        se = float(np.std(each, ddof=1) / np.sqrt(len(each))) if len(each) > 1 else 0.0
        return Run(results, ms, float(np.mean(each)), se, tuple(each))


def catalog_settings(col: Searchable) -> tuple[float, int | None]:
    """The collection's stored (oversample, ef_search), read fresh rather than from ``col.info``."""
    row = col.db.read(
        lambda conn: conn.execute(
            "SELECT oversample, ef_search FROM semsearch.collections WHERE name = %s", [col.name]
        ).fetchone()
    )
    assert row is not None
    return float4(row[0]), row[1]  # real (float4) in the catalog: 1.3 comes back as 1.2999999523
