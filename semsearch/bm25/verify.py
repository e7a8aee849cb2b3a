"""Checking the statistics :mod:`.statistics` keeps against a recount from the table (no database).

See :mod:`semsearch.bm25` for the design.
"""

from __future__ import annotations

from psycopg import sql

from semsearch.bm25.names import SCHEMA, Names, document_length, term_frequency


def verify_statement(table: str, *, schema: str = SCHEMA, tenants: bool = False) -> sql.Composed:
    """Differences between the stored statistics and a recount from the table; no rows when exact.

    Each row is ``(what, lexeme, id, stored, recounted)``; with ``tenants`` df and n/total are
    compared per tenant (the lexeme column then reads ``tenant/lexeme``, n/total ``tenant``).
    """
    n = Names(table, schema)
    if tenants:
        return sql.SQL(
            """WITH r AS (SELECT c.id, c.tsv, coalesce(c.tenant, '') AS tenant, {dl} AS dl FROM {tbl} c),
recount AS (SELECT r.id, r.tenant, {tf} AS tf, r.dl, u.lexeme COLLATE "C" AS lexeme
            FROM r CROSS JOIN LATERAL unnest(r.tsv) u),
p AS (SELECT 'posting'::text AS what, lexeme, id, format('%s/%s/%s', s.tf, s.dl, s.tenant) AS stored,
             format('%s/%s/%s', c.tf, c.dl, c.tenant) AS recounted
      FROM (SELECT lexeme, id, tf, dl, coalesce(tenant, '') AS tenant FROM {p}) s FULL JOIN recount c USING (lexeme, id)
      WHERE s.tf IS DISTINCT FROM c.tf OR s.dl IS DISTINCT FROM c.dl OR s.tenant IS DISTINCT FROM c.tenant),
d AS (SELECT 'df'::text, tenant || '/' || lexeme, NULL::bigint, s.df::text, c.df::text
      FROM (SELECT lexeme, tenant, sum(df) AS df FROM {d} GROUP BY 1, 2 HAVING sum(df) <> 0) s
      FULL JOIN (SELECT lexeme, tenant, count(*)::numeric AS df FROM recount GROUP BY 1, 2) c USING (lexeme, tenant)
      WHERE s.df IS DISTINCT FROM c.df),
st AS (SELECT 'n/total'::text, tenant, NULL::bigint, format('%s/%s', s.n, s.total), format('%s/%s', c.n, c.total)
       FROM (SELECT tenant, sum(n) AS n, sum(total) AS total FROM {s} GROUP BY 1 HAVING sum(n) <> 0) s
       FULL JOIN (SELECT tenant, count(*)::numeric AS n, coalesce(sum(dl), 0)::numeric AS total FROM r GROUP BY 1) c
       USING (tenant)
       WHERE (s.n, s.total) IS DISTINCT FROM (c.n, c.total))
SELECT * FROM p UNION ALL SELECT * FROM d UNION ALL SELECT * FROM st"""
        ).format(
            dl=document_length(sql.SQL("c.tsv")),
            tbl=n.ident(table),
            tf=term_frequency(sql.SQL("u.positions")),
            p=n.ident(n.postings),
            d=n.ident(n.df),
            s=n.ident(n.stats),
        )
    return sql.SQL(
        """WITH r AS (SELECT c.id, c.tsv, {dl} AS dl FROM {tbl} c),
recount AS (SELECT r.id, {tf} AS tf, r.dl, u.lexeme COLLATE "C" AS lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u),
p AS (SELECT 'posting'::text AS what, lexeme, id, format('%s/%s', s.tf, s.dl) AS stored,
             format('%s/%s', c.tf, c.dl) AS recounted
      FROM {p} s FULL JOIN recount c USING (lexeme, id)
      WHERE s.tf IS DISTINCT FROM c.tf OR s.dl IS DISTINCT FROM c.dl),
d AS (SELECT 'df'::text, lexeme, NULL::bigint, s.df::text, c.df::text
      FROM (SELECT lexeme, sum(df) AS df FROM {d} GROUP BY lexeme HAVING sum(df) <> 0) s
      FULL JOIN (SELECT lexeme, count(*)::numeric AS df FROM recount GROUP BY lexeme) c USING (lexeme)
      WHERE s.df IS DISTINCT FROM c.df),
st AS (SELECT 'n/total'::text, NULL::text, NULL::bigint, format('%s/%s', s.n, s.total),
              format('%s/%s', c.n, c.total)
       FROM (SELECT coalesce(sum(n), 0) AS n, coalesce(sum(total), 0) AS total FROM {s}) s,
            (SELECT count(*)::numeric AS n, coalesce(sum(dl), 0)::numeric AS total FROM r) c
       WHERE (s.n, s.total) IS DISTINCT FROM (c.n, c.total))
SELECT * FROM p UNION ALL SELECT * FROM d UNION ALL SELECT * FROM st"""
    ).format(
        dl=document_length(sql.SQL("c.tsv")),
        tbl=n.ident(table),
        tf=term_frequency(sql.SQL("u.positions")),
        p=n.ident(n.postings),
        d=n.ident(n.df),
        s=n.ident(n.stats),
    )
