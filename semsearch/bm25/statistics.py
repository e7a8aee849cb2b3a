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


def _count(n: Names, rows: sql.Composable, sign: str, postings: sql.Composable, tenants: bool) -> sql.Composed:
    """Apply the rows of query ``rows`` (id, tsv[, tenant]) to slot ``s``: N/total and df move by ``sign``,
    and the CTE ``postings`` (over ``r``: id, tsv[, tenant], dl) writes the postings, returning their
    lexemes (and tenants). With ``tenants`` every counter is per tenant ('' for rows without one)."""
    if tenants:
        template = """WITH r AS MATERIALIZED (SELECT a.id, a.tsv, a.tenant, {dl} AS dl FROM ({rows}) a),
    st AS (
        INSERT INTO {stats} AS t (tenant, slot, n, total)
        SELECT coalesce(r.tenant, ''), s, {sign}count(*), {sign}coalesce(sum(r.dl), 0) FROM r GROUP BY 1
        ON CONFLICT (tenant, slot) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
    ),
    p AS ({postings})
    INSERT INTO {df} AS t (lexeme, tenant, slot, df) SELECT p.lexeme, p.tenant, s, {sign}count(*) FROM p
    GROUP BY p.lexeme, p.tenant
    ON CONFLICT (lexeme, tenant, slot) DO UPDATE SET df = t.df + excluded.df;"""
    else:
        template = """WITH r AS MATERIALIZED (SELECT a.id, a.tsv, {dl} AS dl FROM ({rows}) a),
    st AS (
        INSERT INTO {stats} AS t (slot, n, total) SELECT s, {sign}count(*), {sign}coalesce(sum(r.dl), 0) FROM r
        ON CONFLICT (slot) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
    ),
    p AS ({postings})
    INSERT INTO {df} AS t (lexeme, slot, df) SELECT p.lexeme, s, {sign}count(*) FROM p GROUP BY p.lexeme
    ON CONFLICT (lexeme, slot) DO UPDATE SET df = t.df + excluded.df;"""
    return sql.SQL(template).format(
        dl=document_length(sql.SQL("a.tsv")),
        rows=rows,
        stats=n.ident(n.stats),
        sign=sql.SQL(sign),
        postings=postings,
        df=n.ident(n.df),
    )


def _add(n: Names, rows: sql.Composable, tenants: bool) -> sql.Composed:
    """Add postings, df and N/total of the rows of query ``rows`` (columns id, tsv[, tenant]) to slot ``s``."""
    postings = sql.SQL(
        """
        INSERT INTO {postings} (id, tf, dl, lexeme{tcol})
        SELECT r.id, {tf}, r.dl, u.lexeme{rt} FROM r CROSS JOIN LATERAL unnest(r.tsv) u
        ORDER BY u.lexeme COLLATE "C", r.id  -- in index order: each leaf page is visited once, not once per posting
        RETURNING lexeme{ret}
    """
    ).format(
        postings=n.ident(n.postings),
        tf=term_frequency(sql.SQL("u.positions")),
        tcol=sql.SQL(", tenant" if tenants else ""),
        rt=sql.SQL(", r.tenant" if tenants else ""),
        ret=sql.SQL(", coalesce(tenant, '') AS tenant" if tenants else ""),
    )
    return _count(n, rows, "", postings, tenants)


def _remove(n: Names, rows: sql.Composable, tenants: bool) -> sql.Composed:
    """Remove the postings of the rows of query ``rows`` (id, tsv[, tenant]) and subtract them from slot ``s``."""
    postings = sql.SQL(
        """
        -- one primary-key probe per posting, by tuple id: a join here was planned as a hash join over
        -- every posting of the collection (8x slower for 10% of the rows)
        DELETE FROM {postings} p WHERE p.ctid = ANY (ARRAY(
            SELECT x.ctid
            FROM (SELECT r.id, u.lexeme COLLATE "C" AS lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u ORDER BY 2, 1) k
            CROSS JOIN LATERAL (SELECT q.ctid FROM {postings} q WHERE q.lexeme = k.lexeme AND q.id = k.id OFFSET 0) x
        ))
        RETURNING p.lexeme{ret}
    """
    ).format(postings=n.ident(n.postings), ret=sql.SQL(", coalesce(p.tenant, '') AS tenant" if tenants else ""))
    return _count(n, rows, "-", postings, tenants)


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


def table_statements(table: str, *, schema: str = SCHEMA, tenants: bool = False) -> list[sql.Composed]:
    """The three side tables; with ``tenants`` each posting and counter also holds its row's tenant."""
    n = Names(table, schema)
    if tenants:
        return [
            sql.SQL(
                "CREATE TABLE {t} (id bigint NOT NULL, tf int NOT NULL, dl int NOT NULL, "
                'lexeme text COLLATE "C" NOT NULL, tenant text, '
                "CONSTRAINT {pk} PRIMARY KEY (lexeme, id) INCLUDE (tf, dl, tenant))"
            ).format(t=n.ident(n.postings), pk=sql.Identifier(n.postings + "_pkey")),
            sql.SQL(
                'CREATE TABLE {t} (lexeme text COLLATE "C" NOT NULL, tenant text NOT NULL, slot int NOT NULL, '
                "df bigint NOT NULL, CONSTRAINT {pk} PRIMARY KEY (lexeme, tenant, slot))"
            ).format(t=n.ident(n.df), pk=sql.Identifier(n.df + "_pkey")),
            sql.SQL(
                "CREATE TABLE {t} (tenant text NOT NULL, slot int NOT NULL, n bigint NOT NULL, total bigint NOT NULL, "
                "CONSTRAINT {pk} PRIMARY KEY (tenant, slot))"
            ).format(t=n.ident(n.stats), pk=sql.Identifier(n.stats + "_pkey")),
        ]
    return [
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


def create_statements(
    table: str, *, schema: str = SCHEMA, slots: int = SLOTS, tenants: bool = False
) -> list[sql.Composed]:
    """Side tables, trigger functions and triggers that keep BM25 statistics of ``schema.table`` exact.

    Run them, then :func:`backfill_statements`, in one transaction. ``slots`` is how
    many transactions can write statistics at once without waiting for each other;
    ``tenants`` keeps every statistic per tenant (see :func:`search_statement`).

    Example::

        for stmt in create_statements("col_docs") + backfill_statements("col_docs"):
            conn.execute(stmt)
    """
    return table_statements(table, schema=schema, tenants=tenants) + trigger_statements(
        table, schema=schema, slots=slots, tenants=tenants
    )


def trigger_statements(
    table: str, *, schema: str = SCHEMA, slots: int = SLOTS, tenants: bool = False
) -> list[sql.Composed]:
    """The trigger functions and triggers of :func:`create_statements` (side tables of the same shape exist)."""
    if not isinstance(slots, int) or not 1 <= slots <= 1024:
        raise ValueError(f"expected 1 <= slots <= 1024, got {slots!r}")
    n = Names(table, schema)
    tbl = n.ident(table)
    stmts: list[sql.Composed] = []
    slot = _slot_block(slots)
    # an update is the removal of the old (id, tsv) pairs that are not among the new ones and the addition of
    # the new ones not among the old (id can change too: UPDATE ... SET id = DEFAULT). A FULL JOIN can only be a
    # hash or merge join, never a nested loop over two unindexed transition tables (quadratic: 220 s for 20k rows).
    if tenants:  # a row that moves to another tenant moves its counts too
        changed = sql.SQL(
            "SELECT o.id AS old_id, o.tsv AS old_tsv, o.tenant AS old_tenant, "
            "w.id AS new_id, w.tsv AS new_tsv, w.tenant AS new_tenant "
            "FROM old_rows o FULL JOIN new_rows w ON w.id = o.id "
            "WHERE o.tsv IS DISTINCT FROM w.tsv OR o.tenant IS DISTINCT FROM w.tenant"
        )
        cols = (
            "old_id AS id, old_tsv AS tsv, old_tenant AS tenant",
            "new_id AS id, new_tsv AS tsv, new_tenant AS tenant",
        )
        rows = "SELECT id, tsv, tenant FROM {}"
    else:
        changed = sql.SQL(
            "SELECT o.id AS old_id, o.tsv AS old_tsv, w.id AS new_id, w.tsv AS new_tsv "
            "FROM old_rows o FULL JOIN new_rows w ON w.id = o.id WHERE o.tsv IS DISTINCT FROM w.tsv"
        )
        cols = ("old_id AS id, old_tsv AS tsv", "new_id AS id, new_tsv AS tsv")
        rows = "SELECT id, tsv FROM {}"
    gone = sql.SQL("SELECT {} FROM ({} OFFSET 0) ch WHERE old_id IS NOT NULL").format(sql.SQL(cols[0]), changed)
    came = sql.SQL("SELECT {} FROM ({} OFFSET 0) ch WHERE new_id IS NOT NULL").format(sql.SQL(cols[1]), changed)
    bodies: dict[str, sql.Composable] = {
        "insert": sql.SQL("{}\n    {}").format(slot, _add(n, sql.SQL(rows).format(sql.SQL("new_rows")), tenants)),
        # rows whose (id, tsv) is unchanged are skipped: metadata and embedding updates write nothing
        "update": sql.SQL(
            """IF NOT EXISTS ({changed}) THEN
        RETURN NULL;
    END IF;
    {slot}
    {remove}
    {add}"""
        ).format(changed=changed, slot=slot, remove=_remove(n, gone, tenants), add=_add(n, came, tenants)),
        "delete": sql.SQL("{}\n    {}").format(slot, _remove(n, sql.SQL(rows).format(sql.SQL("old_rows")), tenants)),
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


def reshape_statements(table: str, *, schema: str = SCHEMA, tenants: bool) -> list[sql.Composed]:
    """Turn existing statistics into the per-tenant shape (``tenants``) or back, keeping the side tables
    (and so their grants): columns and keys altered, triggers re-made, everything recounted.

    Run in one transaction; writers of the collection wait until it commits.
    """
    n = Names(table, schema)
    p, d, st = n.ident(n.postings), n.ident(n.df), n.ident(n.stats)
    pk = {name: sql.Identifier(name + "_pkey") for name in (n.postings, n.df, n.stats)}
    stmts = [sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(n.ident(table))]
    stmts += [sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(n.ident(n.fn(e))) for e in EVENTS]
    stmts.append(sql.SQL("TRUNCATE {}, {}, {}").format(p, d, st))
    if tenants:
        stmts += [
            sql.SQL("ALTER TABLE {} ADD COLUMN tenant text, DROP CONSTRAINT {}, "
                    "ADD CONSTRAINT {} PRIMARY KEY (lexeme, id) INCLUDE (tf, dl, tenant)").format(
                p, pk[n.postings], pk[n.postings]),
            sql.SQL("ALTER TABLE {} ADD COLUMN tenant text NOT NULL, DROP CONSTRAINT {}, "
                    "ADD CONSTRAINT {} PRIMARY KEY (lexeme, tenant, slot)").format(d, pk[n.df], pk[n.df]),
            sql.SQL("ALTER TABLE {} ADD COLUMN tenant text NOT NULL, DROP CONSTRAINT {}, "
                    "ADD CONSTRAINT {} PRIMARY KEY (tenant, slot)").format(st, pk[n.stats], pk[n.stats]),
        ]  # fmt: skip
    else:
        stmts += [
            sql.SQL("ALTER TABLE {} DROP COLUMN tenant, ADD CONSTRAINT {} PRIMARY KEY (lexeme, id) INCLUDE (tf, dl)")
            .format(p, pk[n.postings]),
            sql.SQL("ALTER TABLE {} DROP COLUMN tenant, ADD CONSTRAINT {} PRIMARY KEY (lexeme, slot)").format(
                d, pk[n.df]),
            sql.SQL("ALTER TABLE {} DROP COLUMN tenant, ADD CONSTRAINT {} PRIMARY KEY (slot)").format(
                st, pk[n.stats]),
        ]  # fmt: skip
    return (
        stmts
        + trigger_statements(table, schema=schema, tenants=tenants)
        + backfill_statements(table, schema=schema, tenants=tenants)
    )


def backfill_statements(table: str, *, schema: str = SCHEMA, tenants: bool = False) -> list[sql.Composed]:
    """(Re)build all statistics from the rows in the table: fills a new install, repairs a damaged one.

    Locks out writers (``SHARE`` mode) until the transaction ends; everything goes
    to slot 0. ``tenants``: the side tables have the per-tenant shape.
    """
    n = Names(table, schema)
    tbl = n.ident(table)
    t = (lambda x: sql.SQL(x)) if tenants else (lambda x: sql.SQL(""))
    return [
        sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tbl),
        sql.SQL("TRUNCATE {}, {}, {}").format(n.ident(n.postings), n.ident(n.df), n.ident(n.stats)),
        sql.SQL(
            "INSERT INTO {p} (id, tf, dl, lexeme{tc}) SELECT r.id, {tf}, r.dl, u.lexeme{rt} "
            "FROM (SELECT c.id, c.tsv, c.tenant, {dl} AS dl FROM {tbl} c) r CROSS JOIN LATERAL unnest(r.tsv) u "
            'ORDER BY u.lexeme COLLATE "C", r.id'
        ).format(
            p=n.ident(n.postings),
            tf=term_frequency(sql.SQL("u.positions")),
            dl=document_length(sql.SQL("c.tsv")),
            tbl=tbl,
            tc=t(", tenant"),
            rt=t(", r.tenant"),
        ),
        sql.SQL(
            "INSERT INTO {d} (lexeme{tc}, slot, df) SELECT lexeme{gt}, 0, count(*) FROM {p} GROUP BY lexeme{g2}"
        ).format(
            d=n.ident(n.df),
            p=n.ident(n.postings),
            tc=t(", tenant"),
            gt=t(", coalesce(tenant, '')"),
            g2=t(", 2"),
        ),
        sql.SQL(
            "INSERT INTO {s} ({tc}slot, n, total) SELECT {gt}0, count(*), coalesce(sum({dl}), 0) FROM {tbl} c{g}"
        ).format(
            s=n.ident(n.stats),
            dl=document_length(sql.SQL("c.tsv")),
            tbl=tbl,
            tc=t("tenant, "),
            gt=t("coalesce(c.tenant, ''), "),
            g=t(" GROUP BY 1"),
        ),
        sql.SQL("ANALYZE {}").format(n.ident(n.postings)),
        sql.SQL("ANALYZE {}").format(n.ident(n.df)),
    ]


def compact_statements(table: str, *, schema: str = SCHEMA, tenants: bool = False) -> list[sql.Composed]:
    """Fold every slot's counters into slot 0 and drop zero df rows (one transaction; waits for writers).

    Optional upkeep: without it a lexeme has at most ``slots`` df rows, and lexemes
    no longer in any row keep rows that sum to 0.
    """
    n = Names(table, schema)
    tbl = n.ident(table)
    t = (lambda x: sql.SQL(x)) if tenants else (lambda x: sql.SQL(""))
    return [
        # SHARE ROW EXCLUSIVE: no concurrent writer of the collection, so no trigger holds a slot
        sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(tbl),
        sql.SQL(
            "WITH gone AS (DELETE FROM {d} RETURNING lexeme{tc}, df) "
            "INSERT INTO {d} (lexeme{tc}, slot, df) SELECT lexeme{tc}, 0, sum(df) FROM gone GROUP BY lexeme{tc} "
            "HAVING sum(df) <> 0"
        ).format(d=n.ident(n.df), tc=t(", tenant")),
        sql.SQL(
            "WITH gone AS (DELETE FROM {s} RETURNING {tc}n, total) "
            "INSERT INTO {s} ({tc}slot, n, total) SELECT {tc}0, coalesce(sum(n), 0), coalesce(sum(total), 0) "
            "FROM gone{g}"
        ).format(s=n.ident(n.stats), tc=t("tenant, "), g=t(" GROUP BY tenant")),
    ]


def rewrite_statements(table: str, *, schema: str = SCHEMA, tenants: bool = False) -> list[sql.Composed]:
    """Rebuild the postings key in one pass next to the live one and swap it in (run in one transaction).

    A load by many statements (``add_many``'s batches) inserts each statement's postings
    into every lexeme's range of the key, splitting its pages half full; rebuilt, the key
    takes 27% (1.4k rows) to 43% (250k rows) less (bench/results/bm25_cost.md), and the
    answers cannot change. Searches go on during the build (writes wait for it, as for a
    plain index build) and wait only for the swap at the end; killed, it leaves nothing.
    Not ``REINDEX CONCURRENTLY``: that waits for every open snapshot of the database, among
    them a caller's own idle transaction. ``tenants``: the side tables have the per-tenant shape.

    Example::

        with conn.transaction():
            for stmt in rewrite_statements("col_docs"):
                conn.execute(stmt)
    """
    n = Names(table, schema)
    p = n.ident(n.postings)
    key, nxt = sql.Identifier(n.postings + "_pkey"), sql.Identifier(n.postings + "_next")
    return [
        sql.SQL("DROP INDEX IF EXISTS {}").format(n.ident(n.postings + "_next")),
        sql.SQL("CREATE UNIQUE INDEX {} ON {} (lexeme, id) INCLUDE (tf, dl{})").format(
            nxt, p, sql.SQL(", tenant" if tenants else "")
        ),
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}, ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
            p, key, key, nxt
        ),
    ]


def drop_statements(table: str, *, schema: str = SCHEMA) -> list[sql.Composed]:
    """Remove the triggers, functions and side tables (each ``IF EXISTS``; safe after the table is gone)."""
    n = Names(table, schema)
    stmts = [sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(n.ident(n.fn(e))) for e in EVENTS]
    stmts.append(
        sql.SQL("DROP TABLE IF EXISTS {}, {}, {}").format(n.ident(n.postings), n.ident(n.df), n.ident(n.stats))
    )
    return stmts
