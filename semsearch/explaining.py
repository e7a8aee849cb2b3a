"""See what a search runs: its statement, its settings, and ``EXPLAIN (ANALYZE, BUFFERS)`` of it.

:meth:`Collection.explain` and ``semsearch explain`` come here; the statement is the one
:func:`semsearch.searching.plan` chooses (for the SQL functions' searches, the per-collection
statement they call, with the filter inline), run and rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch import planner, searching, statements
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


def explain(
    conn: psycopg.Connection,
    layout: Layout,
    oversample: float,
    info_ef: int | None,
    request: searching.Request,
    *,
    extra: Mapping[str, str] | None = None,
    bm25: tuple[float, float] = (K1, B),
) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement ``request`` runs, with its settings, rolled back.

    Filtered, text and hybrid searches run inside the SQL functions: explained here is
    the per-collection statement they call, with the filter inline, composed as those functions
    were (with the collection's BM25 ``(k1, b)``: the catalog's, not the defaults).
    """
    p = searching.plan(layout, "", oversample, info_ef, request)
    settings = dict(p.settings)
    statement: sql.SQL | sql.Composed = p.statement
    params: dict[str, Any] = {"q": request.vector}
    if layout.routes_by_tenant and request.tenant is not None and request.mode == "vector":
        params = p.params  # routed to the tenant's shard (see search._routed)
    elif request.mode != "vector" or request.filtered:
        spec = statements.spec_filter(sql.Literal(Jsonb(searching.spec(request))))
        k = sql.Literal(request.k)
        if request.mode == "text":
            statement, params = (
                statements.text(
                    layout,
                    query=sql.Placeholder("text"),
                    k=k,
                    where=spec,
                    tenant=sql.Literal(request.tenant),
                    k1=bm25[0],
                    b=bm25[1],
                ),
                {"text": request.text},
            )
        elif request.exact or (
            request.mode == "vector" and _exact_by_filter(conn, layout, searching.spec(request), request, oversample)
        ):
            statement = statements.exact(layout, q=searching.Q, k=k, where=spec)
        else:
            n = planner.candidates(request.k, request.oversample or oversample)
            statement = statements.ann(layout, q=searching.Q, k=k, candidates=sql.Literal(n), where=spec)
            settings = {
                "hnsw.ef_search": str(planner.ef_search(request.ef_search, info_ef, n)),
                "hnsw.iterative_scan": "relaxed_order",
            }
    text = statement.as_string(conn)
    with conn.transaction(force_rollback=True):
        if p.distributed:
            conn.execute(searching.PROPAGATE)
            for name, value in settings.items():
                conn.execute(searching.set_local(name, value))
        for name, value in {**settings, **(extra or {})}.items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) {}").format(statement), params).fetchall()
    return Explained(sql=text, settings=settings, plan=shorten("\n".join(r[0] for r in rows)))


def _exact_by_filter(
    conn: psycopg.Connection, layout: Layout, spec: Any, request: searching.Request, oversample: float
) -> bool:
    """What ``semsearch.search()`` decides for this filter: the planner's SQL function, on the same estimate."""
    n = planner.candidates(request.k, request.oversample or oversample)
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
