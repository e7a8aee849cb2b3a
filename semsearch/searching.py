"""Running a search: which statement, with which settings, in one round trip.

:meth:`Collection.search` checks its arguments and comes here. An unfiltered vector
search composes its statement in Python (:mod:`semsearch.statements`) with literal
LIMITs and the query vector as a binary parameter, and sends it, prepared, pipelined
behind its ``hnsw.ef_search`` setting: one network round trip, and no generic plan
can lose the index. Filtered, text and
hybrid searches call the SQL functions (``semsearch.search_rows()`` and friends: rows as stored), which
estimate a filter's selectivity, choose the index or an exact scan, and fuse.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.adapt import PyFormat
from psycopg.types.json import Jsonb

from semsearch import guards, session_settings, statements
from semsearch.passages import grouping
from semsearch.planner import (
    candidates,
    coarse_rows,
    ef_search,
    vector_settings,
)  # fmt: skip
from semsearch.results import Hit, SearchResult
from semsearch.search_request import Request

if TYPE_CHECKING:
    import psycopg

    from semsearch.layout import Layout

Q = sql.Placeholder("q", PyFormat.BINARY)
#: a search's settings are the session's; its time limit is local to its round trip's (implicit) transaction
_SET_CALL = {False: sql.SQL("set_config(%s, %s, false)"), True: sql.SQL("set_config(%s, %s, true)")}
_SET_LOCAL = sql.SQL("SELECT set_config(%s, %s, true)")
_FUNCTION: dict[str, sql.SQL] = {
    "vector": sql.SQL(
        "SELECT key, content, score, metadata FROM semsearch.search_rows(collection => %(name)s, query => %(q)b, "
        "k => %(k)s::int, oversample => %(oversample)s::real, ef_search => %(ef_search)s::int, "
        "exact => %(exact)s::bool, filter => %(filter)s::jsonb, filter_path => %(path)s::jsonpath, "
        "filter_vars => %(vars)s::jsonb, tenant => %(tenant)s::text)"
    ),
    "text": sql.SQL(
        "SELECT key, content, score, metadata FROM semsearch.text_search_rows(collection => %(name)s, "
        "query_text => %(text)s::text, k => %(k)s::int, filter => %(filter)s::jsonb, "
        "filter_path => %(path)s::jsonpath, filter_vars => %(vars)s::jsonb, tenant => %(tenant)s::text)"
    ),
    "hybrid": sql.SQL(
        "SELECT key, content, score, metadata FROM semsearch.hybrid_search_rows(collection => %(name)s, "
        "query_text => %(text)s::text, query => %(q)b, k => %(k)s::int, filter => %(filter)s::jsonb, "
        "filter_path => %(path)s::jsonpath, filter_vars => %(vars)s::jsonb, tenant => %(tenant)s::text, "
        "fusion => %(fusion)s::text, vector_weight => %(wv)s::real, text_weight => %(wt)s::real, "
        "lists_for => %(lists_for)s::int)"
    ),
}


@dataclass(frozen=True)
class SearchPlan:
    """The statement a request runs, its parameters and the settings it needs (made just before it, pipelined)."""

    statement: sql.SQL | sql.Composed
    params: dict[str, Any]
    settings: dict[str, str]
    #: the direct two-stage statement: when it returns fewer than ``k`` rows, the exact one decides
    fallback: sql.SQL | sql.Composed | None = None
    k: int = 0
    #: a Citus distributed collection: settings go to the workers as SET LOCAL, in a transaction
    distributed: bool = False
    #: the statement's time limit (``statement_timeout``, local to the search), None: none
    timeout_ms: int | None = None


@lru_cache(maxsize=256)
def direct(layout: Layout, k: int, n: int | None) -> sql.SQL:
    """The unfiltered two-stage (``n`` coarse rows) or exact statement, composed once per shape.

    Plan ``none`` fetching ``k`` coarse rows needs no rescore: its one-stage statement.

    Composing costs more than a search's own Python work, so each shape is kept as text.
    """
    q, limit = Q, sql.Literal(k)
    if n is None:
        stmt = statements.exact(layout, q=q, k=limit)
    elif n == k and layout.plan.spec.exact and layout.rows_per_k is not None:
        stmt = statements.nearest(layout, q=q, k=limit)
    else:
        stmt = statements.ann(layout, q=q, k=limit, candidates=sql.Literal(n))
    return sql.SQL(stmt.as_string(None))


def plan(
    layout: Layout, name: str, oversample: float, info_ef: int | None, request: Request, *, timeout: float | None = None
) -> SearchPlan:
    """Choose the statement for ``request`` on a collection with these stored settings.

    ``timeout`` (seconds, None: no limit) becomes the statement's ``statement_timeout``.
    """
    p = _plan(layout, name, oversample, info_ef, request)
    ms = None if timeout is None else max(1, round(timeout * 1000))
    return replace(p, distributed=layout.distributed, timeout_ms=ms)


def _plan(layout: Layout, name: str, oversample: float, info_ef: int | None, request: Request) -> SearchPlan:
    if layout.routes_by_tenant and request.tenant is not None and request.mode == "vector":
        return _routed(layout, oversample, info_ef, request)
    if request.mode == "vector" and not request.filtered:
        params: dict[str, Any] = {"q": request.vector}
        exact = direct(layout, request.k, None)
        if request.exact:
            return SearchPlan(exact, params, {})
        n = candidates(request.k, request.oversample or oversample)
        ef = str(ef_search(request.ef_search, info_ef, n))
        rows = coarse_rows(request.k, n, per_k=layout.rows_per_k, filtered=False)
        return SearchPlan(direct(layout, request.k, rows), params, {"hnsw.ef_search": ef}, fallback=exact, k=request.k)
    f = request.filter
    params = {
        "name": name,
        "q": request.vector,
        "text": request.text,
        "k": request.k,
        "oversample": request.oversample,
        "ef_search": request.ef_search,
        "exact": request.exact,
        "filter": Jsonb(f.contains) if f.contains is not None else None,
        "path": f.path,
        "vars": Jsonb(f.vars) if f.vars is not None else None,
        "tenant": request.tenant,
        "fusion": request.fusion,
        "wv": request.vector_weight,
        "wt": request.text_weight,
        "lists_for": request.lists_for,
    }
    if request.snippets is not None and request.mode != "vector":
        params["snip_from"], params["snip_to"] = request.snippets[0], request.snippets[0] + request.snippets[1]
        return SearchPlan(_snippeted(request.mode, layout.text_config), params, {})
    return SearchPlan(_FUNCTION[request.mode], params, {})


@lru_cache(maxsize=64)
def _snippeted(mode: str, text_config: str) -> sql.SQL:
    """A text or hybrid passage search highlighting its page's documents (composed once per shape)."""
    stmt = grouping.snippeted(_FUNCTION[mode], text_config, query=sql.SQL("{}::text").format(sql.Placeholder("text")))
    return sql.SQL(stmt.as_string(None))


#: one statement of a round trip and its parameters
Step = tuple[sql.SQL | sql.Composed, Any]


def round_trip(p: SearchPlan, check: str | None = None, carried: dict[str, str] | None = None) -> list[Step]:
    """What :func:`execute` (and the async API's) sends for a plan, pipelined, in one round trip.

    The plan's time limit and settings, then, with ``check`` (a collection name), a read of
    its catalog row and its index's state (:data:`semsearch.guards.CHECK`),
    then the plan's statement (always last). ``carried``: what the connection's session
    already carries (:func:`semsearch.session_settings.carried`): then the settings and the time
    limit are made for the session, and only those it lacks are sent (often none: the statement
    alone). On a Citus distributed collection the settings are ``SET LOCAL``s that Citus
    propagates to the workers (a session setting stays on the coordinator), so the caller runs
    them in a transaction.
    """
    steps: list[Step]
    if p.distributed:
        steps = [(PROPAGATE, None), *((set_local(name, value), None) for name, value in p.settings.items())]
        steps += _limit(p)  # after Citus' PROPAGATE: the workers' statements have the limit too
    elif carried is not None:
        steps = _session(session_settings.missing(carried, session_settings.wanted(p.settings, p.timeout_ms)))
    else:
        steps = _settings(p)
    if check is not None:
        steps.append((guards.CHECK, [check]))
    steps.append((p.statement, p.params))
    return steps


def _settings(p: SearchPlan) -> list[Step]:
    """The plan's session settings, then its time limit (local to the round trip), as one statement.

    One ``SELECT set_config(...), set_config(...)``: each statement more in the pipeline costs
    the server a bind and an execute and the client a result to read.
    """
    calls = [(name, value, False) for name, value in p.settings.items()]
    if p.timeout_ms is not None:
        # pipelined, the statements up to the round trip's Sync are one implicit transaction
        calls.append(("statement_timeout", str(p.timeout_ms), True))
    if not calls:
        return []
    return [(_set_many(tuple(local for _, _, local in calls)), [x for name, value, _ in calls for x in (name, value)])]


def _session(settings: dict[str, str]) -> list[Step]:
    """One ``SELECT set_config(..., false), ...`` making ``settings`` the session's; none when empty."""
    if not settings:
        return []
    return [(_set_many((False,) * len(settings)), [x for item in settings.items() for x in item])]


@lru_cache(maxsize=16)
def _set_many(local: tuple[bool, ...]) -> sql.Composed:
    """``SELECT set_config(%s, %s, <local>), ...``: one call per setting, values bound."""
    return sql.SQL("SELECT {}").format(sql.SQL(", ").join(_SET_CALL[x] for x in local))


def _limit(p: SearchPlan) -> list[Step]:
    """The plan's time limit: ``statement_timeout`` until its round trip's transaction ends."""
    if p.timeout_ms is None:
        return []
    if p.distributed:
        return [(set_local("statement_timeout", str(p.timeout_ms)), None)]
    # pipelined, the statements up to the round trip's Sync are one implicit transaction
    return [(_SET_LOCAL, ["statement_timeout", str(p.timeout_ms)])]


def fallback(p: SearchPlan, rows: list[tuple[Any, ...]], *, carried: bool = False) -> list[Step]:
    """The exact statement (after the time limit) to run when the two-stage one returned fewer than ``k`` rows.

    ``carried``: the round trip made its time limit the session's (no local one to send again).
    """
    if p.fallback is None or len(rows) >= p.k:
        return []
    # fewer than k from the index (dead tuples, a scan limit): the exact pass decides
    return [*([] if carried else _limit(p)), (p.fallback, p.params)]


def check_for(p: SearchPlan, name: str, *, due: bool) -> str | None:
    """The collection name to check in the plan's round trip, or None.

    Always when the SQL functions (which go by name) run, else when the handle's last
    check is ``due`` (at most once a second).
    """
    return name if (p.fallback is None or due) else None


def _routed(layout: Layout, oversample: float, info_ef: int | None, request: Request) -> SearchPlan:
    """A tenant's vector search on a collection distributed by tenant: one shard's statement.

    ``tenant = %(tenant)s`` lets Citus route it to the shard of that tenant; the filter
    goes along as the same spec the SQL functions take.
    """
    where = statements.routed(layout, statements.spec_filter(sql.Placeholder("spec")), sql.Placeholder("tenant"))
    params: dict[str, Any] = {"q": request.vector, "tenant": request.tenant, "spec": Jsonb(spec(request))}
    k = sql.Literal(request.k)
    exact = statements.exact(layout, q=Q, k=k, where=where)
    if request.exact:
        return SearchPlan(exact, params, {})
    n = candidates(request.k, request.oversample or oversample)
    stmt = statements.ann(layout, q=Q, k=k, candidates=sql.Literal(n), where=where)
    settings = vector_settings(ef_search(request.ef_search, info_ef, n), filtered=True)
    return SearchPlan(stmt, params, settings, fallback=exact, k=request.k)


#: Citus sends SET LOCAL commands to the workers when asked to (session settings stay on the coordinator)
PROPAGATE = sql.SQL("SET LOCAL citus.propagate_set_commands = 'local'")


def set_local(name: str, value: str) -> sql.Composed:
    """``SET LOCAL name = 'value'`` for a setting semsearch names itself (SET takes no parameters)."""
    if name not in ("hnsw.ef_search", "hnsw.iterative_scan", "semsearch.upsert", "statement_timeout"):
        raise ValueError(f"expected a setting semsearch sets, got {name!r}")
    return sql.SQL("SET LOCAL {} = {}").format(sql.SQL(name), sql.Literal(value))


def execute(
    conn: psycopg.Connection, p: SearchPlan, *, check: str | None = None
) -> tuple[list[tuple[Any, ...]], guards.Checked | None]:
    """Run a plan: its settings and statement pipelined, one round trip; ``(rows, found)``.

    The settings are made for the session (measured: a pipelined transaction with
    ``SET LOCAL`` costs 0.16 ms more per search, the session setting 0.03 ms), so a
    connection from :meth:`Database.connection` may carry the last search's
    ``hnsw.ef_search``. On an idle connection the time limit is the session's too, and only
    what the session lacks is sent (:mod:`semsearch.session_settings`: a warm search sends its
    statement alone); in a transaction each search sends its settings, its time limit local to
    the round trip. ``check`` (a collection name) pipelines a read of its catalog row and of its index's
    state, returned as :class:`~semsearch.guards.Checked` (None without ``check``), so a caller
    holding an old row finds out in the same round trip (see :mod:`semsearch.handle`).
    """
    carried = None if p.distributed else session_settings.carried(conn)
    steps = round_trip(p, check, carried)
    # Citus: the SET LOCALs and the statement in one transaction, planned each time
    prepare = not p.distributed
    try:
        with conn.transaction() if p.distributed else nullcontext():
            if len(steps) == 1:
                rows, found = conn.execute(*steps[0], prepare=prepare).fetchall(), None
            else:
                with conn.pipeline():
                    curs = [conn.execute(stmt, params, prepare=prepare) for stmt, params in steps]
                rows = curs[-1].fetchall()
                found = guards.checked(curs[-2].fetchone()) if check is not None else None
            again = fallback(p, rows, carried=carried is not None)
            if again:
                with conn.pipeline():
                    curs = [conn.execute(stmt, params, prepare=prepare) for stmt, params in again]
                rows = curs[-1].fetchall()
    except BaseException:
        session_settings.doubted(conn)
        raise
    if carried is not None:
        session_settings.kept(conn, session_settings.wanted(p.settings, p.timeout_ms))
    return rows, found


def hits(rows: list[tuple[Any, ...]], request: Request, *, indexed: bool = True) -> SearchResult:
    """Rows as a :class:`SearchResult`; ``indexed``: the collection's HNSW index was there (else warned)."""
    unindexed = guards.scans_unindexed(request.mode, request.exact, indexed)
    return SearchResult(
        hits=tuple(
            Hit(key=r[0], content=r[1], score=float(r[2]), metadata=r[3], snippet=r[4] if len(r) > 4 else None)
            for r in rows
        ),
        k=request.k,
        exact=request.exact,
        unindexed=unindexed,
    )


def spec(request: Request) -> dict[str, Any] | None:
    f = request.filter
    parts = {"contains": f.contains, "path": f.path, "vars": f.vars, "tenant": request.tenant}
    return {k: v for k, v in parts.items() if v is not None} or None
