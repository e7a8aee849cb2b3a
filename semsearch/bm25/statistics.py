"""The statistics BM25 ranks by: side tables and the statement triggers that keep them exact, their
backfill, compaction, removal and verification (``psycopg.sql`` statements; no database).

See :mod:`semsearch.bm25` for the design.
"""

from __future__ import annotations

from psycopg import sql

from semsearch.bm25.names import EVENTS, SCHEMA, SLOTS, Names, document_length, term_frequency


def _slot_block(slots: int) -> sql.Composed:
    """plpgsql: take a counter slot for this transaction into variable ``s``."""
    return sql.SQL(
        """s := NULL;
    FOR i IN 0..{last} LOOP
        IF pg_try_advisory_xact_lock(hashtext('semsearch.bm25'), hashtext(TG_RELID::text || '/' || i)) THEN
            s := i;
            EXIT;
        END IF;
    END LOOP;
    IF s IS NULL THEN  -- every slot is held by another open transaction: wait for one
        s := floor(random() * {slots})::int;
        PERFORM pg_advisory_xact_lock(hashtext('semsearch.bm25'), hashtext(TG_RELID::text || '/' || s));
    END IF;"""
    ).format(last=sql.Literal(slots - 1), slots=sql.Literal(slots))


def _count(n: Names, rows: sql.Composable, sign: str, postings: sql.Composable) -> sql.Composed:
    """Apply the rows of query ``rows`` (id, tsv) to slot ``s``: N/total and df move by ``sign``,
    and the CTE ``postings`` (over ``r``: id, tsv, dl) writes the postings, returning their lexemes."""
    return sql.SQL(
        """WITH r AS MATERIALIZED (SELECT a.id, a.tsv, {dl} AS dl FROM ({rows}) a),
    st AS (
        INSERT INTO {stats} AS t (slot, n, total) SELECT s, {sign}count(*), {sign}coalesce(sum(r.dl), 0) FROM r
        ON CONFLICT (slot) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
    ),
    p AS ({postings})
    INSERT INTO {df} AS t (lexeme, slot, df) SELECT p.lexeme, s, {sign}count(*) FROM p GROUP BY p.lexeme
    ON CONFLICT (lexeme, slot) DO UPDATE SET df = t.df + excluded.df;"""
    ).format(
        dl=document_length(sql.SQL("a.tsv")),
        rows=rows,
        stats=n.ident(n.stats),
        sign=sql.SQL(sign),
        postings=postings,
        df=n.ident(n.df),
    )


def _add(n: Names, rows: sql.Composable) -> sql.Composed:
    """Add postings, df and N/total of the rows of query ``rows`` (columns id, tsv) to slot ``s``."""
    postings = sql.SQL(
        """
        INSERT INTO {postings} (id, tf, dl, lexeme)
        SELECT r.id, {tf}, r.dl, u.lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u
        ORDER BY u.lexeme COLLATE "C", r.id  -- in index order: each leaf page is visited once, not once per posting
        RETURNING lexeme
    """
    ).format(postings=n.ident(n.postings), tf=term_frequency(sql.SQL("u.positions")))
    return _count(n, rows, "", postings)


def _remove(n: Names, rows: sql.Composable) -> sql.Composed:
    """Remove the postings of the rows of query ``rows`` (id, tsv) and subtract them from slot ``s``."""
    postings = sql.SQL(
        """
        -- one primary-key probe per posting, by tuple id: a join here was planned as a hash join over
        -- every posting of the collection (8x slower for 10% of the rows)
        DELETE FROM {postings} p WHERE p.ctid = ANY (ARRAY(
            SELECT x.ctid
            FROM (SELECT r.id, u.lexeme COLLATE "C" AS lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u ORDER BY 2, 1) k
            CROSS JOIN LATERAL (SELECT q.ctid FROM {postings} q WHERE q.lexeme = k.lexeme AND q.id = k.id OFFSET 0) x
        ))
        RETURNING p.lexeme
    """
    ).format(postings=n.ident(n.postings))
    return _count(n, rows, "-", postings)


def _function(n: Names, event: str, body: sql.Composable) -> sql.Composed:
    # SECURITY DEFINER: whoever may write the collection's rows keeps its statistics exact,
    # with no rights on the side tables; a trigger function cannot be called any other way,
    # and the fixed search_path leaves nothing for a caller's path to change
    return sql.SQL(
        """CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $bm25$
DECLARE
    s int;
BEGIN
    {body}
    RETURN NULL;
END
$bm25$"""
    ).format(fn=n.ident(n.fn(event)), body=body)


def create_statements(table: str, *, schema: str = SCHEMA, slots: int = SLOTS) -> list[sql.Composed]:
    """Side tables, trigger functions and triggers that keep BM25 statistics of ``schema.table`` exact.

    Run them, then :func:`backfill_statements`, in one transaction. ``slots`` is how
    many transactions can write statistics at once without waiting for each other.

    Example::

        for stmt in create_statements("col_docs") + backfill_statements("col_docs"):
            conn.execute(stmt)
    """
    if not isinstance(slots, int) or not 1 <= slots <= 1024:
        raise ValueError(f"expected 1 <= slots <= 1024, got {slots!r}")
    n = Names(table, schema)
    tbl = n.ident(table)
    stmts = [
        # id first: 8-byte alignment without padding; the heap row is 48 bytes for an 8-byte lexeme
        sql.SQL(
            "CREATE TABLE {t} (id bigint NOT NULL, tf int NOT NULL, dl int NOT NULL, "
            'lexeme text COLLATE "C" NOT NULL, '
            "CONSTRAINT {pk} PRIMARY KEY (lexeme, id) INCLUDE (tf, dl))"
        ).format(t=n.ident(n.postings), pk=sql.Identifier(n.postings + "_pkey")),
        sql.SQL(
            'CREATE TABLE {t} (lexeme text COLLATE "C" NOT NULL, slot int NOT NULL, df bigint NOT NULL, '
            "CONSTRAINT {pk} PRIMARY KEY (lexeme, slot))"
        ).format(t=n.ident(n.df), pk=sql.Identifier(n.df + "_pkey")),
        sql.SQL(
            "CREATE TABLE {t} (slot int NOT NULL, n bigint NOT NULL, total bigint NOT NULL, "
            "CONSTRAINT {pk} PRIMARY KEY (slot))"
        ).format(t=n.ident(n.stats), pk=sql.Identifier(n.stats + "_pkey")),
    ]
    slot = _slot_block(slots)
    # an update is the removal of the old (id, tsv) pairs that are not among the new ones and the addition of
    # the new ones not among the old (id can change too: UPDATE ... SET id = DEFAULT). A FULL JOIN can only be a
    # hash or merge join, never a nested loop over two unindexed transition tables (quadratic: 220 s for 20k rows).
    changed = sql.SQL(
        "SELECT o.id AS old_id, o.tsv AS old_tsv, w.id AS new_id, w.tsv AS new_tsv "
        "FROM old_rows o FULL JOIN new_rows w ON w.id = o.id WHERE o.tsv IS DISTINCT FROM w.tsv"
    )
    gone = sql.SQL("SELECT old_id AS id, old_tsv AS tsv FROM ({} OFFSET 0) ch WHERE old_id IS NOT NULL").format(changed)
    came = sql.SQL("SELECT new_id AS id, new_tsv AS tsv FROM ({} OFFSET 0) ch WHERE new_id IS NOT NULL").format(changed)
    bodies: dict[str, sql.Composable] = {
        "insert": sql.SQL("{}\n    {}").format(slot, _add(n, sql.SQL("SELECT id, tsv FROM new_rows"))),
        # rows whose (id, tsv) is unchanged are skipped: metadata and embedding updates write nothing
        "update": sql.SQL(
            """IF NOT EXISTS ({changed}) THEN
        RETURN NULL;
    END IF;
    {slot}
    {remove}
    {add}"""
        ).format(changed=changed, slot=slot, remove=_remove(n, gone), add=_add(n, came)),
        "delete": sql.SQL("{}\n    {}").format(slot, _remove(n, sql.SQL("SELECT id, tsv FROM old_rows"))),
        # TRUNCATE already holds the collection exclusively; counters of all slots go
        "truncate": sql.SQL("TRUNCATE {}, {}, {};").format(n.ident(n.postings), n.ident(n.df), n.ident(n.stats)),
    }
    for event in EVENTS:
        stmts.append(_function(n, event, bodies[event]))
    referencing = {
        "insert": "REFERENCING NEW TABLE AS new_rows ",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
        "delete": "REFERENCING OLD TABLE AS old_rows ",
        "truncate": "",
    }
    for event in EVENTS:
        stmts.append(
            sql.SQL("CREATE TRIGGER {name} AFTER {ev} ON {tbl} {ref}FOR EACH STATEMENT EXECUTE FUNCTION {fn}()").format(
                name=sql.Identifier(n.fn(event)),
                ev=sql.SQL(event.upper()),
                tbl=tbl,
                ref=sql.SQL(referencing[event]),
                fn=n.ident(n.fn(event)),
            )
        )
    return stmts


def backfill_statements(table: str, *, schema: str = SCHEMA) -> list[sql.Composed]:
    """(Re)build all statistics from the rows in the table: fills a new install, repairs a damaged one.

    Locks out writers (``SHARE`` mode) until the transaction ends; everything goes
    to slot 0.
    """
    n = Names(table, schema)
    tbl = n.ident(table)
    return [
        sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tbl),
        sql.SQL("TRUNCATE {}, {}, {}").format(n.ident(n.postings), n.ident(n.df), n.ident(n.stats)),
        sql.SQL(
            "INSERT INTO {p} (id, tf, dl, lexeme) SELECT r.id, {tf}, r.dl, u.lexeme "
            "FROM (SELECT c.id, c.tsv, {dl} AS dl FROM {tbl} c) r CROSS JOIN LATERAL unnest(r.tsv) u "
            'ORDER BY u.lexeme COLLATE "C", r.id'
        ).format(
            p=n.ident(n.postings),
            tf=term_frequency(sql.SQL("u.positions")),
            dl=document_length(sql.SQL("c.tsv")),
            tbl=tbl,
        ),
        sql.SQL("INSERT INTO {d} (lexeme, slot, df) SELECT lexeme, 0, count(*) FROM {p} GROUP BY lexeme").format(
            d=n.ident(n.df), p=n.ident(n.postings)
        ),
        sql.SQL("INSERT INTO {s} (slot, n, total) SELECT 0, count(*), coalesce(sum({dl}), 0) FROM {tbl} c").format(
            s=n.ident(n.stats), dl=document_length(sql.SQL("c.tsv")), tbl=tbl
        ),
        sql.SQL("ANALYZE {}").format(n.ident(n.postings)),
        sql.SQL("ANALYZE {}").format(n.ident(n.df)),
    ]


def compact_statements(table: str, *, schema: str = SCHEMA) -> list[sql.Composed]:
    """Fold every slot's counters into slot 0 and drop zero df rows (one transaction; waits for writers).

    Optional upkeep: without it a lexeme has at most ``slots`` df rows, and lexemes
    no longer in any row keep rows that sum to 0.
    """
    n = Names(table, schema)
    tbl = n.ident(table)
    return [
        # SHARE ROW EXCLUSIVE: no concurrent writer of the collection, so no trigger holds a slot
        sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(tbl),
        sql.SQL(
            "WITH gone AS (DELETE FROM {d} RETURNING lexeme, df) "
            "INSERT INTO {d} (lexeme, slot, df) SELECT lexeme, 0, sum(df) FROM gone GROUP BY lexeme HAVING sum(df) <> 0"
        ).format(d=n.ident(n.df)),
        sql.SQL(
            "WITH gone AS (DELETE FROM {s} RETURNING n, total) "
            "INSERT INTO {s} (slot, n, total) SELECT 0, coalesce(sum(n), 0), coalesce(sum(total), 0) FROM gone"
        ).format(s=n.ident(n.stats)),
    ]


def drop_statements(table: str, *, schema: str = SCHEMA) -> list[sql.Composed]:
    """Remove the triggers, functions and side tables (each ``IF EXISTS``; safe after the table is gone)."""
    n = Names(table, schema)
    stmts = [sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(n.ident(n.fn(e))) for e in EVENTS]
    stmts.append(
        sql.SQL("DROP TABLE IF EXISTS {}, {}, {}").format(n.ident(n.postings), n.ident(n.df), n.ident(n.stats))
    )
    return stmts


def verify_statement(table: str, *, schema: str = SCHEMA) -> sql.Composed:
    """Differences between the stored statistics and a recount from the table; no rows when exact.

    Each row is ``(what, lexeme, id, stored, recounted)``.
    """
    n = Names(table, schema)
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
