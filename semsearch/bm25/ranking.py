"""The BM25 ranking statement: top k of a collection by the statistics :mod:`.statistics` keeps.

See :mod:`semsearch.bm25` for the formula.
"""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import sql

from semsearch.bm25.names import PARAMS, SCHEMA, Names


def search_statement(
    table: str,
    config: str = "english",
    *,
    where: sql.Composable | None = None,
    schema: str = SCHEMA,
    params: Mapping[str, sql.Composable] | None = None,
    tenant: sql.Composable | None = None,
) -> sql.Composed:
    """BM25 top-k of ``schema.table``: rows ``(key, content, score, metadata)``, best first, ties by id.

    Values go where ``params`` says: by default the named placeholders
    ``%(text)s`` (query text), ``%(k)s`` (limit), ``%(k1)s`` and ``%(b)s``. Inside a
    SQL or plpgsql function pass e.g. ``{"text": sql.SQL("$1"), "k": sql.SQL("$2"),
    "k1": sql.Literal(1.2), "b": sql.Literal(0.75)}``; missing names keep their
    placeholder. ``where`` is an extra condition on the collection's row (its
    columns by bare name: ``metadata``, ``tenant``, ``id``...), e.g.
    ``Layout.filter_clause("$3")``. Without ``where`` the top k are chosen from the
    postings alone and only those k rows are read from the table; with it every
    matching row is joined first, so pass ``None`` rather than an always-true
    condition.

    ``tenant`` (a text expression, possibly NULL) is for statistics kept per tenant
    (``create_statements(..., tenants=True)``): N, the average length and df are then
    that tenant's, or the sums over every tenant the caller may see when it is NULL,
    and only that tenant's postings are read.

    Example::

        stmt = search_statement("col_docs", "english", where=sql.SQL("tenant = %(tenant)s"))
        conn.execute(stmt, {"text": "wing flutter", "k": 10, "k1": 1.2, "b": 0.75, "tenant": "t1"})
    """
    unknown = set(params or {}) - set(PARAMS)
    if unknown:
        raise ValueError(f"expected params among {PARAMS}, got {sorted(unknown)}")
    p: dict[str, sql.Composable] = {name: sql.Placeholder(name) for name in PARAMS}
    p.update(params or {})
    n = Names(table, schema)

    def of_tenant(column: str, joined: str = "AND") -> sql.Composable:
        if tenant is None:
            return sql.SQL("")
        return sql.SQL(" {j} ({t}::text IS NULL OR {c} = {t}::text)").format(
            j=sql.SQL(joined), t=tenant, c=sql.SQL(column)
        )

    # per query lexeme: w = idf * (k1 + 1), and the denominator tf + k1 * (1 - b) + k1 * b / avgdl * dl
    scored = sql.SQL(
        """SELECT bp.id AS bm25_id,
           sum(w.w * bp.tf / (bp.tf + w.a + w.c * bp.dl)) AS bm25_score
    FROM (
        SELECT ln(1 + (st.n - d.df + 0.5) / (d.df + 0.5)) * ({k1}::float8 + 1) AS w,
               {k1}::float8 * (1 - {b}::float8) AS a,
               {k1}::float8 * {b}::float8 * st.n / nullif(st.total, 0) AS c,
               d.lexeme
        FROM (SELECT lexeme, sum(df)::float8 AS df FROM {df}
              WHERE lexeme = ANY (ARRAY(
                  SELECT q.lexeme COLLATE "C" FROM unnest(to_tsvector({cfg}::regconfig, {text}::text)) q)){df_t}
              GROUP BY lexeme HAVING sum(df) > 0) d,
             (SELECT sum(n)::float8 AS n, sum(total)::float8 AS total FROM {stats}{st_t}) st
    ) w CROSS JOIN LATERAL (
        -- OFFSET 0 keeps this a per-lexeme index range scan whatever the statistics say
        SELECT p.id, p.tf, p.dl FROM {postings} p WHERE p.lexeme = w.lexeme{p_t} OFFSET 0
    ) bp
    GROUP BY bp.id"""
    ).format(
        k1=p["k1"],
        b=p["b"],
        df=n.ident(n.df),
        cfg=sql.Literal(config),
        text=p["text"],
        stats=n.ident(n.stats),
        postings=n.ident(n.postings),
        df_t=of_tenant("tenant"),
        st_t=of_tenant("tenant", "WHERE"),
        p_t=of_tenant("p.tenant"),
    )
    if where is None:
        return sql.SQL(
            """SELECT c.key, c.content, s.bm25_score AS score, c.metadata
FROM ({scored}
    ORDER BY bm25_score DESC, bm25_id LIMIT {k}) s
JOIN {tbl} c ON c.id = s.bm25_id
ORDER BY s.bm25_score DESC, s.bm25_id"""
        ).format(scored=scored, k=p["k"], tbl=n.ident(table))
    return sql.SQL(
        """SELECT c.key, c.content, s.bm25_score AS score, c.metadata
FROM ({scored}) s
JOIN {tbl} c ON c.id = s.bm25_id
WHERE {where}
ORDER BY s.bm25_score DESC, s.bm25_id LIMIT {k}"""
    ).format(scored=scored, k=p["k"], tbl=n.ident(table), where=where)
