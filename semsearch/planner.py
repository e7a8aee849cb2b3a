"""What a vector search runs, decided once: candidates, ``hnsw.ef_search``, index or exact scan.

Each rule is written here twice in one place: as a Python function (Python's unfiltered
searches and ``explain`` call it) and as the SQL function :func:`function_statements` makes
from the same constants (``semsearch.search()`` calls those, and ``semsearch db upgrade``
makes them from this module, see :mod:`semsearch.generated`). A test checks the two agree
on a grid of inputs, so the SQL functions, Python and ``explain`` follow one decision.

- **candidates**: ``min(MAX_CANDIDATES, ceil(k * oversample))``, with ``oversample`` a float4
  as the catalog stores it;
- **ef_search**: HNSW returns at most ef_search rows per scan, so never fewer than the
  candidates: ``min(MAX_EF, max(requested or stored or EF_FLOOR, candidates))``;
- **exact**: a filter matching ``m`` of ``n`` rows starves the index scan (it visits about
  ``candidates * n / m`` tuples) while an exact scan of the matches costs about ``m``; the
  planner's row estimate of the filter decides (``<table>_matching``).
"""

from __future__ import annotations

import math

import numpy as np
from psycopg import sql

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


def exact(matching: float, total: float, n: int, max_scan: float = MAX_SCAN_TUPLES) -> bool:
    """Whether a filter matching about ``matching`` of ``total`` rows is searched exactly, not by the index.

    >>> exact(5, 100_000, 100), exact(50_000, 100_000, 100)
    (True, False)
    """
    return total > 0 and (matching * matching < n * total or n * total / matching > max_scan)


def function_statements() -> list[sql.Composed]:
    """The SQL twins of :func:`candidates`, :func:`ef_search` and :func:`exact` (``semsearch.plan_*``)."""
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
            "CREATE OR REPLACE FUNCTION semsearch.plan_exact(matching float8, total float8, n integer) "
            "RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE {} "
            "RETURN total > 0 AND (matching * matching < n * total OR n * total / matching "
            "> coalesce(current_setting('hnsw.max_scan_tuples', true)::float8, {}))"
        ).format(pin, sql.Literal(float(MAX_SCAN_TUPLES))),
    ]
