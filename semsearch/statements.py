"""The search statements: composed from a collection's :class:`~semsearch.layout.Layout`.

Every statement a search runs is built here, with ``psycopg.sql``, from the
catalog's data (plan, dims, storage, table). Nothing is stored as SQL text and
executed later: Python composes the statement for each search (and psycopg
prepares it server-side after a few runs), and the SQL functions call
per-collection functions that :func:`function_statements` creates by DDL from the
very same composition.

The values a statement needs go where the caller says: Python passes named
placeholders (``%(q)b``, sent in binary) and literal LIMITs; a SQL function passes
its parameters (``$1``). Either way the coarse ``ORDER BY`` repeats the HNSW
index's expression, because both come from :meth:`Layout.coarse_expression`.

Example::

    stmt = ann(layout, q=sql.Placeholder("q", PyFormat.BINARY), k=sql.Literal(10),
               candidates=sql.Literal(100))
    conn.execute(stmt, {"q": vector}).fetchall()   # [(key, content, score, metadata), ...]
"""

from __future__ import annotations

from psycopg import sql

from semsearch import bm25
from semsearch.layout import SCHEMA, Layout

#: bump when a statement below changes: the catalog records, per collection, the version
#: its SQL functions were created with, and migrations re-create them from this module
STATEMENTS_VERSION = 3
#: the rows every search returns, in this order
HIT_COLUMNS = sql.SQL("key, content, score, metadata")
TRUE = sql.SQL("TRUE")


def _query(layout: Layout, q: sql.Composable) -> sql.Composable:
    """The query vector as the column's type, so expressions match the index's."""
    return sql.SQL("({})::{}").format(q, layout.vector_type)


def _score(layout: Layout, q: sql.Composable) -> sql.Composable:
    return sql.SQL("(1 - (embedding <=> {}))::float8").format(_query(layout, q))


def ann(
    layout: Layout,
    *,
    q: sql.Composable,
    k: sql.Composable,
    candidates: sql.Composable,
    where: sql.Composable = TRUE,
) -> sql.Composed:
    """Two-stage search: the ``candidates`` nearest by the compressed copy (HNSW), rescored exactly.

    The coarse subquery returns the rows it found, full vectors included (the index
    scan fetches each heap row anyway), so the rescore needs no join back to the table.
    A funnel's middle stages (``bit->mrl:256``) each keep the best quarter (at least
    ``k``) by a stored smaller copy before the full vectors decide.
    """
    middle = [layout.middle_column(d) for d in layout.plan.middle]
    # distributed, the candidates come from every shard to the coordinator: only their identity
    # travels (not 6 kB vectors), and the rescore runs on the shards, by key
    ident = layout.unique_key if layout.distributed else sql.SQL("key, content, metadata, embedding")
    carried = sql.SQL(", ").join([ident, *middle])
    candidates_sql: sql.Composable = sql.SQL(
        "SELECT {carried} FROM {table} WHERE embedding IS NOT NULL AND {where} ORDER BY {col} {op} {qc} LIMIT {n}"
    ).format(
        carried=carried,
        table=layout.table,
        where=where,
        col=layout.coarse_expression(sql.Identifier("embedding")),
        op=layout.plan.operator(),
        qc=layout.coarse_expression(_query(layout, q)),
        n=candidates,
    )
    for d in layout.plan.middle:
        candidates_sql = sql.SQL(
            "SELECT {carried} FROM ({prev}) p ORDER BY {col} <#> {qm} LIMIT greatest({k}, {n} / 4)"
        ).format(
            carried=carried,
            prev=candidates_sql,
            col=layout.middle_column(d),
            qm=layout.middle_expression(d, _query(layout, q)),
            k=k,
            n=candidates,
        )
    if layout.distributed:
        return sql.SQL(
            "SELECT key, content, {score} AS score, metadata FROM {table} WHERE ({ident}) IN "
            "(SELECT {ident} FROM ({cand}) c) AND {where} ORDER BY embedding <=> {q} LIMIT {k}"
        ).format(
            score=_score(layout, q), table=layout.table, ident=ident, cand=candidates_sql, where=where,
            q=_query(layout, q), k=k,
        )  # fmt: skip
    return sql.SQL(
        "SELECT key, content, {score} AS score, metadata FROM ({cand}) c ORDER BY embedding <=> {q} LIMIT {k}"
    ).format(score=_score(layout, q), cand=candidates_sql, q=_query(layout, q), k=k)


def nearest(layout: Layout, *, q: sql.Composable, k: sql.Composable) -> sql.Composed:
    """One stage: the ``k`` nearest by the index on the full vectors (plan ``none``), scored as :func:`ann` scores.

    What :func:`ann` runs when its coarse pass fetches ``k`` rows in the full vectors' own order:
    the rescore would sort them again by the same distance (measured: 0.05 ms of a 0.8 ms search at
    256 dims).
    """
    return sql.SQL(
        "SELECT key, content, {score} AS score, metadata FROM {table} WHERE embedding IS NOT NULL "
        "ORDER BY embedding <=> {q} LIMIT {k}"
    ).format(score=_score(layout, q), table=layout.table, q=_query(layout, q), k=k)


def exact(layout: Layout, *, q: sql.Composable, k: sql.Composable, where: sql.Composable = TRUE) -> sql.Composed:
    """Exact search: cosine on every (filtered) embedded row; never uses the HNSW index."""
    # ORDER BY the similarity (not the distance operator) so no index can serve it
    return sql.SQL(
        "SELECT key, content, {score} AS score, metadata FROM {table} "
        "WHERE embedding IS NOT NULL AND {where} ORDER BY score DESC, id LIMIT {k}"
    ).format(score=_score(layout, q), table=layout.table, where=where, k=k)


def text(
    layout: Layout,
    *,
    query: sql.Composable,
    k: sql.Composable,
    where: sql.Composable | None = None,
    k1: float = bm25.K1,
    b: float = bm25.B,
    tenant: sql.Composable | None = None,
) -> sql.Composed:
    """Full-text search ranked by BM25 over the statistics :mod:`semsearch.bm25` keeps.

    ``tenant`` (text, may be NULL) is the search's tenant: a collection with isolated tenants
    keeps its statistics per tenant and ranks by that tenant's (by the sums over the tenants
    the caller may see when NULL).

    Rows with any of the query's lexemes; ``where=None`` (no filter) picks the top k from
    the postings alone, before reading any row. A distributed collection keeps no BM25
    statistics (their triggers would write across nodes): it ranks by ``ts_rank``,
    each shard its own top k, merged by the coordinator.
    """
    if not layout.statement_triggers:
        words = sql.SQL("semsearch.any_words({}::regconfig, {})").format(sql.Literal(layout.text_config), query)
        return sql.SQL(
            "SELECT key, content, ts_rank(tsv, {words})::float8 AS score, metadata FROM {table} "
            "WHERE tsv @@ {words} AND {where} ORDER BY score DESC, key LIMIT {k}"
        ).format(words=words, table=layout.table, where=where if where is not None else TRUE, k=k)
    return bm25.search_statement(
        layout.table_name,
        layout.text_config,
        where=where,
        params={"text": query, "k": k, "k1": sql.Literal(float(k1)), "b": sql.Literal(float(b))},
        tenant=(tenant if tenant is not None else sql.SQL("NULL")) if layout.tenant_setting else None,
    )


def ann_call(
    layout: Layout, *, q: sql.Composable, k: sql.Composable, candidates: sql.Composable, spec: sql.Composable
) -> sql.Composed:
    """What ``semsearch.<table>_ann(q, k, candidates, spec)`` runs: :func:`ann` filtered by a filter spec.

    The function holds it with its parameters (``$1``...); ``explain`` composes it with the values.
    A plan in the full vectors' order fetches the rows ``semsearch.plan_coarse_rows()`` says
    (:func:`semsearch.planner.coarse_rows`: ``k`` or ``2k`` unfiltered).
    """
    if layout.rows_per_k is not None:
        candidates = sql.SQL("semsearch.plan_coarse_rows({}, {}, {}, {} IS NOT NULL)").format(
            k, candidates, sql.Literal(layout.rows_per_k), spec
        )
    return ann(layout, q=q, k=k, candidates=candidates, where=spec_filter(spec))


def exact_call(layout: Layout, *, q: sql.Composable, k: sql.Composable, spec: sql.Composable) -> sql.Composed:
    """What ``semsearch.<table>_exact(q, k, spec)`` runs."""
    return exact(layout, q=q, k=k, where=spec_filter(spec))


def text_call(
    layout: Layout,
    *,
    query: sql.Composable,
    k: sql.Composable,
    spec: sql.Composable,
    filtered: bool,
    k1: float = bm25.K1,
    b: float = bm25.B,
) -> sql.Composed:
    """What ``semsearch.<table>_text(query, k, spec)`` runs: ``filtered`` when its spec is not NULL.

    Unfiltered, the BM25 top k come from the postings alone; a filter joins every match first.
    """
    tenant = sql.SQL("({} ->> 'tenant')").format(spec)
    where = spec_filter(spec) if filtered else None
    return text(layout, query=query, k=k, k1=k1, b=b, where=where, tenant=tenant)


def fused(*, plan: sql.Composable, vector: sql.Composable, text: sql.Composable, k: sql.Composable) -> sql.Composed:
    """Hybrid search: the ``vector`` and ``text`` lists (best first) fused as ``plan`` says, top ``k``.

    ``plan`` is one row ``(fusion, vector_weight, text_weight, list_size, rrf_k)`` (see
    :func:`semsearch.planner.hybrid`); the lists may read it as ``cfg``. ``fusion`` 'blend'
    sums the weighted scores scaled to [0, 1] per list (a row missing from a list adds 0, a
    list of equal scores counts them all as 1); 'rrf' sums ``weight / (rrf_k + rank)``.
    ``semsearch.hybrid_search()`` is this with the SQL searches as lists; ``explain`` shows it
    with the statements those run.
    """
    return sql.SQL(
        "WITH cfg AS MATERIALIZED ({plan}),\n"
        "v AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM ({vector}) h),\n"
        "t AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM ({text}) h),\n"
        "vs AS (SELECT max(score) AS hi, min(score) AS lo FROM v),\n"
        "ts AS (SELECT max(score) AS hi, min(score) AS lo FROM t)\n"
        "SELECT coalesce(v.key, t.key) AS key, coalesce(v.content, t.content) AS content,\n"
        "       (CASE cfg.fusion\n"
        "            WHEN 'rrf' THEN coalesce(cfg.vector_weight / (cfg.rrf_k + v.r), 0)\n"
        "                          + coalesce(cfg.text_weight / (cfg.rrf_k + t.r), 0)\n"
        "            ELSE CASE WHEN v.key IS NULL THEN 0\n"
        "                      ELSE cfg.vector_weight * coalesce((v.score - vs.lo) / nullif(vs.hi - vs.lo, 0), 1) END\n"
        "               + CASE WHEN t.key IS NULL THEN 0\n"
        "                      ELSE cfg.text_weight * coalesce((t.score - ts.lo) / nullif(ts.hi - ts.lo, 0), 1) END\n"
        "        END)::float8 AS score,\n"
        "       coalesce(v.metadata, t.metadata) AS metadata\n"
        "FROM v FULL JOIN t ON v.key = t.key CROSS JOIN cfg CROSS JOIN vs CROSS JOIN ts\n"
        "ORDER BY score DESC, coalesce(v.r, 1e9), coalesce(t.r, 1e9)\n"
        "LIMIT {k}"
    ).format(plan=plan, vector=vector, text=text, k=k)


def matching(layout: Layout, *, where: sql.Composable) -> sql.Composed:
    """Rows a filter keeps: EXPLAINed (never run) to estimate its selectivity from statistics."""
    return sql.SQL("SELECT 1 FROM {} WHERE embedding IS NOT NULL AND {}").format(layout.table, where)


def count(layout: Layout) -> sql.Composed:
    """Rows stored (embedded or pending)."""
    return sql.SQL("SELECT count(*) FROM {}").format(layout.table)


def spec_filter(spec: sql.Composable) -> sql.Composed:
    """The WHERE condition for a filter spec, the jsonb ``semsearch.filter_spec()`` builds.

    ``{"contains": {...}, "path": "<jsonpath>", "vars": {...}, "tenant": "..."}``, each
    part optional. Planned with the spec known (a custom plan), the parts that are
    absent fold away and ``contains`` uses the GIN index on metadata.
    """
    f = sql.SQL("({})::jsonb").format(spec)
    return sql.SQL(
        "({f} IS NULL OR ((NOT {f} ? 'contains' OR metadata @> ({f} -> 'contains')) "
        "AND (NOT {f} ? 'path' OR jsonb_path_match(metadata, ({f} ->> 'path')::jsonpath, "
        "coalesce({f} -> 'vars', '{{}}'::jsonb), true)) "
        "AND (NOT {f} ? 'tenant' OR tenant = ({f} ->> 'tenant'))))"
    ).format(f=f)


def function_name(layout: Layout, suffix: str) -> sql.Identifier:
    """``semsearch.<table>_ann`` and friends: one per statement above, made by DDL."""
    return sql.Identifier(SCHEMA, layout.table_name + suffix)


def routed(layout: Layout, where: sql.Composable, tenant: sql.Composable) -> sql.Composed:
    """``where`` and ``tenant = <tenant>``: on a table distributed by tenant Citus sends the query to one shard."""
    return sql.SQL("tenant = {} AND {}").format(tenant, where)


def _distributed_functions(layout: Layout) -> list[sql.Composed]:
    """The per-collection functions of a Citus distributed collection.

    Their statements run by ``EXECUTE ... USING``: Citus refuses the same statements as
    static PL/pgSQL queries once called from ``semsearch.search()`` ("could not determine
    data type of parameter $1"). The text is fixed here, at DDL time, like the static
    functions'. ``hnsw.ef_search`` and ``hnsw.iterative_scan`` set by ``semsearch.search()``
    reach the workers as ``SET LOCAL`` with ``citus.propagate_set_commands = 'local'``,
    which Citus honours inside a transaction block only (Python searches run in one).
    On a table distributed by tenant, a search with a tenant goes to that tenant's shard.
    """
    p = [sql.SQL(f"${i}") for i in range(1, 6)]

    sets = sql.SQL(
        "SET LOCAL citus.propagate_set_commands = 'local'; "
        "EXECUTE format('SET LOCAL hnsw.ef_search = %s', "
        "coalesce(current_setting('hnsw.ef_search', true), '40')::int); "
        "EXECUTE format('SET LOCAL hnsw.iterative_scan = %L', "
        "coalesce(current_setting('hnsw.iterative_scan', true), 'off')); "
    )

    def body(stmt: sql.Composable, routed_stmt: sql.Composable, using: str, settings: bool) -> str:
        run = sql.SQL("RETURN QUERY EXECUTE {} USING {};").format(sql.Literal(stmt.as_string(None)), sql.SQL(using))
        if layout.routes_by_tenant:
            run = sql.SQL(
                "IF spec ? 'tenant' THEN RETURN QUERY EXECUTE {r} USING {using}, spec ->> 'tenant'; ELSE {run} END IF;"
            ).format(r=sql.Literal(routed_stmt.as_string(None)), using=sql.SQL(using), run=run)
        return sql.SQL("BEGIN {}{} END").format(sets if settings else sql.SQL(""), run).as_string(None)

    ann_where = spec_filter(p[3])
    exact_where = spec_filter(p[2])
    text_where = spec_filter(p[2])
    bodies = [
        ("_ann", "query vector, k integer, candidates integer, spec jsonb",
         body(ann(layout, q=p[0], k=p[1], candidates=p[2], where=ann_where),
              ann(layout, q=p[0], k=p[1], candidates=p[2], where=routed(layout, ann_where, p[4])),
              "query, k, candidates, spec", True)),
        ("_exact", "query vector, k integer, spec jsonb",
         body(exact(layout, q=p[0], k=p[1], where=exact_where),
              exact(layout, q=p[0], k=p[1], where=routed(layout, exact_where, p[3])), "query, k, spec", False)),
        ("_text", "query_text text, k integer, spec jsonb",
         body(text(layout, query=sql.SQL("$1::text"), k=p[1], where=text_where),
              text(layout, query=sql.SQL("$1::text"), k=p[1], where=routed(layout, text_where, p[3])),
              "query_text, k, spec", False)),
    ]  # fmt: skip
    # VOLATILE: SET LOCAL is refused in a STABLE function
    return [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {name}({args}) RETURNS SETOF semsearch.hit LANGUAGE plpgsql VOLATILE AS {body}"
        ).format(name=function_name(layout, suffix), args=sql.SQL(args), body=sql.Literal(text_))
        for suffix, args, text_ in bodies
    ]


def function_statements(layout: Layout, *, k1: float = bm25.K1, b: float = bm25.B) -> list[sql.Composed]:
    """``CREATE OR REPLACE FUNCTION`` for the per-collection functions the SQL API calls.

    They hold the statements above as static SQL, so PL/pgSQL caches their plans; they
    are owned by whoever ran the DDL and their text lives in ``pg_proc``, which no
    writer of semsearch's tables can change. The last statement pins their
    ``search_path`` (``semsearch.pin_search_paths()``, schema 0006). Made by
    :func:`semsearch.generated.functions`, for every caller.
    """
    p = [sql.SQL(f"${i}") for i in range(1, 5)]
    bodies = [
        ("_ann", "query vector, k integer, candidates integer, spec jsonb",
         ann_call(layout, q=p[0], k=p[1], candidates=p[2], spec=p[3])),
        ("_exact", "query vector, k integer, spec jsonb", exact_call(layout, q=p[0], k=p[1], spec=p[2])),
    ]  # fmt: skip
    query = sql.SQL("$1::text")
    out = [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {name}({args}) RETURNS SETOF semsearch.hit LANGUAGE plpgsql STABLE AS {body}"
        ).format(
            name=function_name(layout, suffix),
            args=sql.SQL(args),
            body=sql.Literal(sql.SQL("BEGIN RETURN QUERY {}; END").format(stmt).as_string(None)),
        )
        for suffix, args, stmt in bodies
    ]
    # no filter: the BM25 top k come from the postings alone; a filter joins every match first
    out.append(
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {name}(query_text text, k integer, spec jsonb) RETURNS SETOF semsearch.hit "
            "LANGUAGE plpgsql STABLE AS {body}"
        ).format(
            name=function_name(layout, "_text"),
            body=sql.Literal(
                sql.SQL("BEGIN IF $3 IS NULL THEN RETURN QUERY {}; ELSE RETURN QUERY {}; END IF; END")
                .format(
                    text_call(layout, query=query, k=p[1], spec=p[2], filtered=False, k1=k1, b=b),
                    text_call(layout, query=query, k=p[1], spec=p[2], filtered=True, k1=k1, b=b),
                )
                .as_string(None)
            ),
        )
    )
    # EXPLAIN takes no parameters in a static statement: the text is fixed here, at DDL time
    explain = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(matching(layout, where=spec_filter(p[0])))
    if layout.distributed:
        out = _distributed_functions(layout)
    out.append(
        sql.SQL("CREATE OR REPLACE FUNCTION {name}(spec jsonb) RETURNS float8 LANGUAGE plpgsql AS {body}").format(
            name=function_name(layout, "_matching"),
            body=sql.Literal(
                sql.SQL(
                    "DECLARE plan json; BEGIN EXECUTE {} INTO plan USING spec; "
                    "RETURN greatest((plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8, 1); END"
                )
                .format(sql.Literal(explain.as_string(None)))
                .as_string(None)
            ),
        )
    )
    out.append(PIN_SEARCH_PATHS)
    return out


#: pins the search_path of every function in schema semsearch that has none (the ones just made)
PIN_SEARCH_PATHS = sql.Composed([sql.SQL("SELECT semsearch.pin_search_paths()")])
