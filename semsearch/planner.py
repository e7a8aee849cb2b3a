"""What a search runs, decided once: candidates, ``hnsw.ef_search``, index or exact scan, the
iterative scan, hybrid's list sizes and fusion, BM25's parameters.

Each rule is written here twice in one place: as a Python function (Python's unfiltered
searches and ``explain`` call it) and as the SQL function :func:`function_statements` makes
from the same constants (``semsearch.search()`` calls those, and ``semsearch db upgrade``
makes them from this module, see :mod:`semsearch.generated`). A test checks the two agree
on a grid of inputs, so the SQL functions, Python and ``explain`` follow one decision.

- **candidates**: ``min(MAX_CANDIDATES, ceil(k * oversample))``, with ``oversample`` a float4
  as the catalog stores it;
- **ef_search**: HNSW returns at most ef_search rows per scan, so never fewer than the
  candidates: ``min(MAX_EF, max(requested or stored or EF_FLOOR, candidates))``;
- **coarse rows**: a plan whose coarse pass ranks as the full vectors do (``none``, ``halfvec``)
  fetches only ``k`` rows (``halfvec``: ``2k``, its half precision swaps near ties) when
  unfiltered: HNSW returns its ef_search best in distance order, so further candidates would be
  rescored only to be dropped (each one a heap row read: at 1,536 dims a page); its oversample
  still widens ef_search. Filtered, the iterative scan's relaxed order needs the rescore of all
  ``candidates``;
- **exact**: a filter matching ``m`` of ``n`` rows starves the index scan (it visits about
  ``candidates * n / m`` tuples) while an exact scan of the matches costs about ``m``; the
  planner's row estimate of the filter decides (``<table>_matching``);
- **iterative scan**: a filtered index scan continues (``hnsw.iterative_scan = relaxed_order``)
  until it found its candidates; the exact rescore re-sorts them, so the relaxed order is free;
- **hybrid**: each list (text and vector) fetches ``min(MAX_CANDIDATES, max(candidates, 4 * k, 40))``
  rows; the fusion and its weights are the ones asked for, else the collection's tuned ones
  (``tune_hybrid``), else blend 0.3 (vector) / 0.7 (text); weights are float4s, as SQL takes them;
- **BM25**: ``k1`` and ``b`` are the collection's (the catalog's float4s), composed into its
  ``<table>_text`` function and into what ``explain`` shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql

from semsearch import statements
from semsearch.errors import InvalidInputError

#: limits of a search, the same in Python and SQL
MAX_K = 10000
MAX_OVERSAMPLE = 1000
MAX_EF = 1000
MAX_CANDIDATES = 10000
#: pgvector's default ``hnsw.ef_search``: what an untuned search asks for at least
EF_FLOOR = 40
#: an index scan of a filtered search visits at most this many tuples before the exact scan wins
#: (pgvector's ``hnsw.max_scan_tuples`` when set)
MAX_SCAN_TUPLES = 20000
#: how a filtered index scan goes on until it found its candidates (pgvector >= 0.8)
ITERATIVE_SCAN = "relaxed_order"
#: hybrid: each list fetches at least this many rows, and at least LIST_FACTOR * k
MIN_LIST = 40
LIST_FACTOR = 4
#: hybrid: reciprocal rank fusion's k (a rank r adds weight / (RRF_K + r))
RRF_K = 60
FUSIONS = ("blend", "rrf")
#: what hybrid search uses when nothing was asked or tuned (measured on Cranfield with the local model:
#: blend 0.3/0.7 nDCG@10 0.376, text 0.361, vector 0.308, rrf 0.5/0.5 0.374; see README)
DEFAULT_FUSION = "blend"
DEFAULT_VECTOR_WEIGHT = 0.3
DEFAULT_TEXT_WEIGHT = 0.7


def candidates(k: int, oversample: float) -> int:
    """Rows the coarse pass fetches.

    >>> candidates(10, 1.5), candidates(10, 1.7), candidates(5000, 3)
    (15, 18, 10000)
    """
    # the catalog's oversample is a float4 (1.7 is 1.70000005 there) that SQL multiplies in float8:
    # 10 * 1.7 is 17.0000005, so 18 (a float4 product would round it to 17: Python said 17 before)
    return min(MAX_CANDIDATES, math.ceil(k * float(np.float32(oversample))))


def ef_search(requested: int | None, stored: int | None, n: int) -> int:
    """``hnsw.ef_search`` for ``n`` candidates: the requested one, else the tuned one, else the floor.

    >>> ef_search(None, None, 15), ef_search(None, 120, 15), ef_search(64, 120, 200)
    (40, 120, 200)
    """
    return min(MAX_EF, max(requested or stored or EF_FLOOR, n))


def coarse_rows(k: int, n: int, *, per_k: int | None, filtered: bool) -> int:
    """Rows the coarse pass returns for the rescore: ``per_k * k`` when its order is the full vectors' and unfiltered.

    >>> coarse_rows(10, 85, per_k=2, filtered=False), coarse_rows(10, 85, per_k=2, filtered=True)
    (20, 85)
    """
    return min(per_k * k, n) if per_k is not None and not filtered else n


def exact(matching: float, total: float, n: int, max_scan: float = MAX_SCAN_TUPLES) -> bool:
    """Whether a filter matching about ``matching`` of ``total`` rows is searched exactly, not by the index.

    >>> exact(5, 100_000, 100), exact(50_000, 100_000, 100)
    (True, False)
    """
    return total > 0 and (matching * matching < n * total or n * total / matching > max_scan)


def iterative_scan(filtered: bool) -> str | None:
    """``hnsw.iterative_scan`` for an index scan: relaxed order when filtered, else none (the session's).

    >>> iterative_scan(True), iterative_scan(False)
    ('relaxed_order', None)
    """
    return ITERATIVE_SCAN if filtered else None


def vector_settings(ef: int, *, filtered: bool) -> dict[str, str]:
    """The settings an index scan runs with: its ``hnsw.ef_search`` and, filtered, its iterative scan.

    >>> vector_settings(40, filtered=True)
    {'hnsw.ef_search': '40', 'hnsw.iterative_scan': 'relaxed_order'}
    """
    settings = {"hnsw.ef_search": str(ef)}
    scan = iterative_scan(filtered)
    if scan is not None:
        settings["hnsw.iterative_scan"] = scan
    return settings


def real(w: float) -> float:
    """A weight as SQL takes it: a float4, through ``numeric`` (6 significant digits) to float8.

    >>> real(0.3), real(1 / 3)
    (0.3, 0.333333)
    """
    return float(f"{float(np.float32(w)):.6g}")


@dataclass(frozen=True)
class HybridPlan:
    """What a hybrid search runs: each list's size, the fusion and its weights, RRF's k.

    Example::

        hybrid(10, tuned=col.info.hybrid)     # HybridPlan(fusion='blend', ..., list_size=40, rrf_k=60)
    """

    fusion: str
    vector_weight: float
    text_weight: float
    list_size: int
    rrf_k: int


def hybrid(
    k: int,
    *,
    candidates: int | None = None,
    fusion: str | None = None,
    vector_weight: float | None = None,
    text_weight: float | None = None,
    rrf_k: int = RRF_K,
    tuned: Mapping[str, Any] | None = None,
) -> HybridPlan:
    """A hybrid search's plan: the arguments given, else the collection's ``tuned`` setting, else the defaults.

    >>> hybrid(10)
    HybridPlan(fusion='blend', vector_weight=0.3, text_weight=0.7, list_size=40, rrf_k=60)
    >>> hybrid(20, fusion="rrf", tuned={"fusion": "blend", "vector_weight": 0.65}).vector_weight
    0.65
    """
    tuned = tuned or {}
    chosen = fusion or tuned.get("fusion") or DEFAULT_FUSION
    if chosen not in FUSIONS:
        raise InvalidInputError(f"expected fusion 'rrf' or 'blend', got {chosen!r}")

    def weight(given: float | None, name: str, default: float) -> float:
        w = given if given is not None else tuned.get(name)
        return real(w if w is not None else default)

    return HybridPlan(
        fusion=chosen,
        vector_weight=weight(vector_weight, "vector_weight", DEFAULT_VECTOR_WEIGHT),
        text_weight=weight(text_weight, "text_weight", DEFAULT_TEXT_WEIGHT),
        list_size=min(MAX_CANDIDATES, max(candidates or 0, LIST_FACTOR * k, MIN_LIST)),
        rrf_k=rrf_k,
    )


def bm25(k1: float, b: float) -> tuple[float, float]:
    """BM25's ``(k1, b)`` for a collection storing these (float4s, read back as their shortest decimals).

    >>> bm25(2.0, 0.3)
    (2.0, 0.3)
    """
    return float(k1), float(b)


def function_statements() -> list[sql.Composed]:
    """The SQL twins of the rules above (``semsearch.plan_*``) and ``semsearch.hybrid_search_rows``: made from them."""
    pin = sql.SQL("SET search_path = pg_catalog, pg_temp")
    return [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION semsearch.plan_candidates(k integer, oversample real) RETURNS integer "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE {} RETURN least({}, ceil(k * oversample))::integer"
        ).format(pin, sql.Literal(MAX_CANDIDATES)),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION semsearch.plan_ef_search(requested integer, stored integer, n integer) "
            "RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE {} "
            "RETURN least({}, greatest(coalesce(nullif(requested, 0), nullif(stored, 0), {}), n))"
        ).format(pin, sql.Literal(MAX_EF), sql.Literal(EF_FLOOR)),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION semsearch.plan_coarse_rows(k integer, n integer, per_k integer, "
            "filtered boolean) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE {} "
            "RETURN CASE WHEN per_k IS NOT NULL AND NOT filtered THEN least(per_k * k, n) ELSE n END"
        ).format(pin),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION semsearch.plan_exact(matching float8, total float8, n integer) "
            "RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE {} "
            "RETURN total > 0 AND (matching * matching < n * total OR n * total / matching "
            "> coalesce(current_setting('hnsw.max_scan_tuples', true)::float8, {}))"
        ).format(pin, sql.Literal(float(MAX_SCAN_TUPLES))),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION semsearch.plan_iterative_scan(filtered boolean) RETURNS text "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE {} RETURN CASE WHEN filtered THEN {} END"
        ).format(pin, sql.Literal(ITERATIVE_SCAN)),
        _plan_hybrid(pin),
        hybrid_function(),
        statements.PIN_SEARCH_PATHS,  # hybrid_search's: the schema pgvector is in
    ]


def _plan_hybrid(pin: sql.Composable) -> sql.Composed:
    """The SQL twin of :func:`hybrid` (weights through numeric, as :func:`real`)."""
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION semsearch.plan_hybrid(k integer, requested_candidates integer, "
        "requested_fusion text, requested_vector_weight real, requested_text_weight real, requested_rrf_k integer, "
        "tuned jsonb, OUT fusion text, OUT vector_weight float8, OUT text_weight float8, OUT list_size integer, "
        "OUT rrf_k integer) LANGUAGE sql STABLE PARALLEL SAFE {pin} AS {body}"
    ).format(
        pin=pin,
        body=sql.Literal(
            sql.SQL(
                "SELECT c.f, "
                "coalesce(requested_vector_weight, (tuned ->> 'vector_weight')::real, {wv})::numeric::float8, "
                "coalesce(requested_text_weight, (tuned ->> 'text_weight')::real, {wt})::numeric::float8, "
                "least({max}, greatest(coalesce(requested_candidates, 0), {factor} * k, {floor})), requested_rrf_k "
                "FROM (SELECT coalesce(requested_fusion, tuned ->> 'fusion', {fusion}) AS f) c "
                "WHERE c.f IN ({fusions}) "
                "OR semsearch.fail(format('expected fusion ''rrf'' or ''blend'', got %L', c.f))"
            )
            .format(
                wv=sql.Literal(DEFAULT_VECTOR_WEIGHT),
                wt=sql.Literal(DEFAULT_TEXT_WEIGHT),
                max=sql.Literal(MAX_CANDIDATES),
                factor=sql.Literal(LIST_FACTOR),
                floor=sql.Literal(MIN_LIST),
                fusion=sql.Literal(DEFAULT_FUSION),
                fusions=sql.SQL(", ").join(map(sql.Literal, FUSIONS)),
            )
            .as_string(None)
        ),
    )


def hybrid_function() -> sql.Composed:
    """``semsearch.hybrid_search_rows()``: :func:`semsearch.statements.fused` over ``search_rows()`` and
    ``text_search_rows()``, the rows (passages) as stored; ``hybrid_search()`` calls it (schema 0013).

    Its arguments checked, its plan from ``semsearch.plan_hybrid`` with the collection's tuned setting.
    ``lists_for`` (NULL: ``k``) sizes the lists as for a search of that many rows: a documents search
    fuses the passages its lists hold for the documents it wants (:func:`semsearch.passages.grouping.lists_for`).
    """
    filters = sql.SQL("filter => filter, filter_path => filter_path, filter_vars => filter_vars, tenant => tenant")
    body = statements.fused(
        plan=sql.SQL(
            "SELECT p.* FROM (SELECT semsearch.check_hybrid(k, vector_weight, text_weight, rrf_k, candidates) AS ok) "
            "checked, semsearch.plan_hybrid(coalesce(lists_for, k), candidates, fusion, vector_weight, text_weight, "
            "rrf_k, "
            "(SELECT hybrid FROM semsearch.collections WHERE name = collection)) p WHERE checked.ok"
        ),
        vector=sql.SQL("SELECT h.* FROM cfg, semsearch.search_rows(collection, query, cfg.list_size, {}) h").format(
            filters
        ),
        text=sql.SQL(
            "SELECT h.* FROM cfg, semsearch.text_search_rows(collection, query_text, cfg.list_size, {}) h"
        ).format(filters),
        k=sql.SQL("k"),
    )
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION semsearch.hybrid_search_rows(collection text, query_text text, query vector, "
        "k integer DEFAULT 10, vector_weight real DEFAULT NULL, text_weight real DEFAULT NULL, "
        "rrf_k integer DEFAULT {rrf_k}, candidates integer DEFAULT NULL, filter jsonb DEFAULT NULL, "
        "filter_path jsonpath DEFAULT NULL, filter_vars jsonb DEFAULT NULL, tenant text DEFAULT NULL, "
        "fusion text DEFAULT NULL, lists_for integer DEFAULT NULL) RETURNS SETOF semsearch.hit LANGUAGE sql AS {body}"
    ).format(rrf_k=sql.Literal(RRF_K), body=sql.Literal(body.as_string(None)))
