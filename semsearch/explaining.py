"""See what a search runs: its statement, its settings, and ``EXPLAIN (ANALYZE, BUFFERS)`` of it.

:meth:`Collection.explain` and ``semsearch explain`` come here; the statement is the one
:func:`semsearch.searching.plan` chooses (for the SQL functions' searches, the per-collection
statement they call, with the filter inline; for a hybrid search, the fusion of the two lists as
``hybrid_search()`` fuses them), run and rolled back. Every decision in it comes from
:mod:`semsearch.planner`, as the search's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch import planner, search_request, searching, statements
from semsearch.bm25 import K1, B

if TYPE_CHECKING:
    from semsearch.layout import Layout

#: the query vector (and its bits) as the plan spells them out, once per node that uses it
_VECTOR = re.compile(r"'\[([^\]']*)\]'")
_BITS = re.compile(r"'([01]{33,})'")


@dataclass(frozen=True)
class Explained:
    """What a search runs: its SQL, the settings it sets, and ``EXPLAIN (ANALYZE, BUFFERS)`` of it.

    Example::

        print(col.explain(vector=q, k=10))     # the statement, then the plan with timings
    """

    sql: str
    settings: Mapping[str, str]
    plan: str

    def __str__(self) -> str:
        sets = "".join(f"SET LOCAL {k} = {v};\n" for k, v in self.settings.items())
        return f"{sets}{self.sql};\n\n{self.plan}"


@dataclass(frozen=True)
class Composed:
    """The statement a search runs, as explain shows it: values inline but the query's, and its settings."""

    statement: sql.SQL | sql.Composed
    params: dict[str, Any]
    settings: dict[str, str]
    distributed: bool = False


def explain(
    conn: psycopg.Connection,
    layout: Layout,
    oversample: float,
    info_ef: int | None,
    request: search_request.Request,
    *,
    extra: Mapping[str, str] | None = None,
    bm25: tuple[float, float] = (K1, B),
    hybrid: Mapping[str, Any] | None = None,
) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement ``request`` runs, with its settings, rolled back.

    Filtered, text and hybrid searches run inside the SQL functions: explained here is
    the per-collection statement they call (:func:`compose`), with the filter inline, composed as
    those functions were (with the collection's BM25 ``(k1, b)`` and tuned ``hybrid`` setting).
    """
    c = compose(conn, layout, oversample, info_ef, request, bm25=bm25, hybrid=hybrid)
    text = c.statement.as_string(conn)
    with conn.transaction(force_rollback=True):
        if c.distributed:
            conn.execute(searching.PROPAGATE)
            for name, value in c.settings.items():
                conn.execute(searching.set_local(name, value))
        for name, value in {**c.settings, **(extra or {})}.items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) {}").format(c.statement), c.params).fetchall()
    return Explained(sql=text, settings=c.settings, plan=shorten("\n".join(r[0] for r in rows)))


def compose(
    conn: psycopg.Connection,
    layout: Layout,
    oversample: float,
    info_ef: int | None,
    request: search_request.Request,
    *,
    bm25: tuple[float, float] = (K1, B),
    hybrid: Mapping[str, Any] | None = None,
) -> Composed:
    """The statement and settings ``request`` runs, decided by :mod:`semsearch.planner` as the search decides.

    A Python search's own statement (:func:`semsearch.searching.plan`), else the statement of the
    per-collection function ``semsearch.search()``, ``text_search()`` or ``hybrid_search()`` calls, with
    the values those decide (a filter's exact-or-index asks the SQL planner function, on the same
    estimate), fused as ``hybrid_search()`` fuses for a hybrid search.
    """
    p = searching.plan(layout, "", oversample, info_ef, request)
    distributed = p.distributed
    if request.mode == "vector" and (not request.filtered or (layout.routes_by_tenant and request.tenant)):
        params = p.params if layout.routes_by_tenant and request.tenant is not None else {"q": request.vector}
        return Composed(p.statement, params, dict(p.settings), distributed)
    spec = searching.spec(request)
    spec_sql = sql.Literal(Jsonb(spec)) if spec is not None else sql.SQL("NULL")
    k1, b = planner.bm25(*bm25)
    if request.mode == "text":
        stmt = statements.text_call(
            layout, query=_TEXT, k=sql.Literal(request.k), spec=spec_sql, filtered=spec is not None, k1=k1, b=b
        )
        return Composed(stmt, {"text": request.text}, {}, distributed)
    if request.mode == "vector":
        stmt, settings = _vector_list(conn, layout, oversample, info_ef, request, spec, spec_sql)
        return Composed(stmt, {"q": request.vector}, settings, distributed)
    h = planner.hybrid(
        request.k,
        fusion=request.fusion,
        vector_weight=request.vector_weight,
        text_weight=request.text_weight,
        tuned=hybrid,
    )
    # the lists as hybrid_search() asks them: search() and text_search() for list_size rows, nothing else
    listed = replace(request, k=h.list_size, oversample=None, ef_search=None, exact=False)
    vector, settings = _vector_list(conn, layout, oversample, info_ef, listed, spec, spec_sql)
    text = statements.text_call(
        layout, query=_TEXT, k=sql.Literal(h.list_size), spec=spec_sql, filtered=spec is not None, k1=k1, b=b
    )
    plan = sql.SQL(
        "SELECT {}::text AS fusion, {}::float8 AS vector_weight, {}::float8 AS text_weight, "
        "{}::integer AS list_size, {}::integer AS rrf_k"
    ).format(*map(sql.Literal, (h.fusion, h.vector_weight, h.text_weight, h.list_size, h.rrf_k)))
    stmt = statements.fused(plan=plan, vector=vector, text=text, k=sql.Literal(request.k))
    return Composed(stmt, {"q": request.vector, "text": request.text}, settings, distributed)


_TEXT = sql.Placeholder("text")


def _vector_list(
    conn: psycopg.Connection,
    layout: Layout,
    oversample: float,
    info_ef: int | None,
    request: search_request.Request,
    spec: Any,
    spec_sql: sql.Composable,
) -> tuple[sql.Composed, dict[str, str]]:
    """What ``semsearch.search()`` runs for ``request``: ``<table>_exact`` or ``<table>_ann``, and its settings."""
    k = sql.Literal(request.k)
    n = planner.candidates(request.k, request.oversample or oversample)
    if request.exact or (spec is not None and _exact_by_filter(conn, layout, spec, n)):
        return statements.exact_call(layout, q=searching.Q, k=k, spec=spec_sql), {}
    stmt = statements.ann_call(layout, q=searching.Q, k=k, candidates=sql.Literal(n), spec=spec_sql)
    return stmt, planner.vector_settings(planner.ef_search(request.ef_search, info_ef, n), filtered=spec is not None)


def _exact_by_filter(conn: psycopg.Connection, layout: Layout, spec: Any, n: int) -> bool:
    """What ``semsearch.search()`` decides for this filter: the planner's SQL function, on the same estimate."""
    stmt = sql.SQL(
        "SELECT semsearch.plan_exact({}({}::jsonb), (SELECT reltuples FROM pg_class WHERE oid = {}::regclass), {})"
    ).format(
        statements.function_name(layout, "_matching"),
        sql.Literal(Jsonb(spec)),
        sql.Literal(f"semsearch.{layout.table_name}"),
        sql.Literal(n),
    )
    return bool(conn.execute(stmt).fetchone()[0])  # type: ignore[index]


def shorten(plan: str) -> str:
    """``plan`` with each query vector literal cut to its first values and its length.

    >>> shorten("Order By: (embedding <=> '[0.1,0.2,0.3,0.4,0.5]'::vector(5))")
    "Order By: (embedding <=> '[0.1,0.2,0.3,... 5 values]'::vector(5))"
    """

    def values(m: re.Match[str]) -> str:
        parts = m.group(1).split(",")
        return m.group(0) if len(parts) <= 4 else f"'[{','.join(parts[:3])},... {len(parts)} values]'"

    def bits(m: re.Match[str]) -> str:
        return f"'{m.group(1)[:16]}... {len(m.group(1))} bits'"

    return _BITS.sub(bits, _VECTOR.sub(values, plan))
