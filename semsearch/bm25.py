"""BM25 ranking in plain Postgres SQL: exact statistics kept by triggers, and the ranking query.

Everything here returns ``psycopg.sql`` statements and touches no database, like
:mod:`semsearch.ddl`. For a collection table ``semsearch.col_x`` (with its
generated ``tsv`` column) the statistics live in three side tables:

``col_x_bm25p`` (postings)
    one row per (lexeme, document): ``(id, tf, dl, lexeme)``, primary key
    ``(lexeme, id) INCLUDE (tf, dl)`` so a query lexeme's posting list is one
    index-only range scan. ``tf`` is the number of positions of the lexeme in the
    row's tsvector, ``dl`` the row's length (total positions). ``dl`` is repeated
    on each posting so scoring never reads the collection table; it changes only
    when the tsvector does, and then all of the row's postings are rewritten anyway.
``col_x_bm25d`` (document frequencies)
    ``(lexeme, slot, df)``; a lexeme's df is the sum over its slot rows.
``col_x_bm25s`` (collection statistics)
    ``(slot, n, total)``; N and the total length are the sums over the slot rows.

Concurrency: a writing transaction takes one of ``slots`` slots with a
transaction-scoped advisory lock (trying 0, 1, ... without waiting; it waits only
when all are taken) and adds its df and N/total deltas to its slot's rows only.
Two concurrent writers therefore never update the same counter row, so there is
no hot spot on popular lexemes or on N, and no deadlock between the counters.
Readers sum at most ``slots`` rows per lexeme. Measured: two writers running
3-statement upsert transactions commit 487 rows/s with 8 slots, 358 with 1. :func:`compact_statements` folds
all slots into slot 0 (optional upkeep; the row count per lexeme is bounded anyway).

Triggers: statement-level ``AFTER INSERT / UPDATE / DELETE`` triggers with
transition tables (one pass per statement) and ``AFTER TRUNCATE``. Measured on a
COPY: ~1,900 rows/s with them, against 342 rows/s (1,000 rows) and 161 rows/s
(4,000 rows) with equivalent row-level triggers, which update the same counter
rows once per row and slow down quadratically within a transaction.
They cover semsearch's upserts (``INSERT ... ON CONFLICT DO UPDATE`` fires the
INSERT trigger for new rows and the UPDATE trigger for updated ones), COPY,
``MERGE`` and raw SQL. An UPDATE that leaves ``tsv`` unchanged (metadata,
embeddings) writes nothing. Not covered: writes with triggers disabled
(``ALTER TABLE ... DISABLE TRIGGER``, ``session_replication_role = replica``,
e.g. a logical-replication subscriber: there use ``ENABLE ALWAYS TRIGGER``);
:func:`backfill_statements` rebuilds everything from the table.

Installing (one transaction; ``CREATE TRIGGER`` locks out writers until commit,
so the backfill sees every row and misses none written meanwhile)::

    with conn.transaction():
        for stmt in bm25.create_statements("col_x") + bm25.backfill_statements("col_x"):
            conn.execute(stmt)

Searching::

    stmt = bm25.search_statement("col_x", "english")
    rows = conn.execute(stmt, {"text": "boundary layer", "k": 10, "k1": 1.2, "b": 0.75}).fetchall()

Scoring (Lucene's BM25)::

    score(d) = sum over distinct query lexemes t in d of
               idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
    idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5)),   avgdl = total / N

with the query's lexemes those of ``to_tsvector(config, text)`` (OR semantics;
a word repeated in the query counts once), N the number of rows (rows whose text
has no lexeme count too, with length 0) and ties broken by ``id``.

Long texts: everything comes from the row's tsvector, so Postgres' tsvector limits
apply. A lexeme keeps at most 255 positions (tf <= 255). Positions above 16383
are clamped to 16383 and duplicates dropped, so past the 16383rd word each lexeme
adds at most one more position: tf and dl undercount texts longer than ~16k words
(~100 kB of English). ``to_tsvector`` raises "string is too long for tsvector"
when the lexemes and positions need more than 1 MB; a prefix of
:data:`MAX_TSV_CHARS` = 250,000 characters never does (worst case measured:
distinct one- and two-character tokens of 4-byte letters take 4 bytes of tsvector
per input character, and 262,143 characters fail by one byte), so the ``tsv``
column should be ``to_tsvector(cfg, left(content, 250000))``
(:func:`tsv_expression`): longer texts are then searchable by their first
250,000 characters instead of failing to insert. A lexeme without positions (only
in a ``strip()``-ed tsvector, never in the generated column) counts as tf 1, as
Postgres' own ``ts_rank`` length does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql

#: default schema of collection tables
SCHEMA = "semsearch"
#: default number of counter slots, i.e. of writers that update statistics without waiting for each other
SLOTS = 8
#: a prefix this long (characters) always fits in a tsvector; see the module doc
MAX_TSV_CHARS = 250_000
#: BM25 defaults
K1 = 1.2
B = 0.75
#: the named placeholders of :func:`search_statement`
PARAMS = ("text", "k", "k1", "b")
_MAX_IDENT = 63


@dataclass(frozen=True)
class Names:
    """The names of a collection's BM25 objects (all in the collection's schema).

    >>> Names("col_x").postings
    'col_x_bm25p'
    """

    table: str
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        longest = self.table + "_bm25p_pkey"
        if not self.table or len(longest.encode()) > _MAX_IDENT:
            raise ValueError(f"expected a table name of at most {_MAX_IDENT - 11} bytes, got {self.table!r}")

    @property
    def postings(self) -> str:
        return self.table + "_bm25p"

    @property
    def df(self) -> str:
        return self.table + "_bm25d"

    @property
    def stats(self) -> str:
        return self.table + "_bm25s"

    def fn(self, event: str) -> str:
        """Trigger function (and trigger) name for ``event`` in insert/update/delete/truncate."""
        return f"{self.table}_bm25_{event[:3]}"

    def ident(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)


EVENTS = ("insert", "update", "delete", "truncate")


def tsv_expression(config: str = "english", column: str = "content") -> sql.Composed:
    """The generated ``tsv`` column's expression that never fails on long texts.

    >>> tsv_expression().as_string(None)
    'to_tsvector(\\'english\\'::regconfig, left("content", 250000))'
    """
    return sql.SQL("to_tsvector({}::regconfig, left({}, {}))").format(
        sql.Literal(config), sql.Identifier(column), sql.Literal(MAX_TSV_CHARS)
    )


def _tf(positions: sql.Composable) -> sql.Composed:
    # a lexeme without positions (strip()) counts once, like ts_rank's document length
    return sql.SQL("greatest(coalesce(cardinality({}), 0), 1)").format(positions)


def _dl(tsv: sql.Composable) -> sql.Composed:
    """Total positions of a tsvector (not ``length()``, which counts distinct lexemes)."""
    return sql.SQL("(SELECT coalesce(sum({tf}), 0)::int FROM unnest({tsv}) dl_u)").format(
        tf=_tf(sql.SQL("dl_u.positions")), tsv=tsv
    )


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


def _add(n: Names, rows: sql.Composable) -> sql.Composed:
    """Add postings, df and N/total of the rows of query ``rows`` (columns id, tsv) to slot ``s``."""
    return sql.SQL(
        """WITH r AS MATERIALIZED (SELECT a.id, a.tsv, {dl} AS dl FROM ({rows}) a),
    st AS (
        INSERT INTO {stats} AS t (slot, n, total) SELECT s, count(*), coalesce(sum(r.dl), 0) FROM r
        ON CONFLICT (slot) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
    ),
    p AS (
        INSERT INTO {postings} (id, tf, dl, lexeme)
        SELECT r.id, {tf}, r.dl, u.lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u
        ORDER BY u.lexeme COLLATE "C", r.id  -- in index order: each leaf page is visited once, not once per posting
        RETURNING lexeme
    )
    INSERT INTO {df} AS t (lexeme, slot, df) SELECT p.lexeme, s, count(*) FROM p GROUP BY p.lexeme
    ON CONFLICT (lexeme, slot) DO UPDATE SET df = t.df + excluded.df;"""
    ).format(
        dl=_dl(sql.SQL("a.tsv")),
        rows=rows,
        stats=n.ident(n.stats),
        postings=n.ident(n.postings),
        df=n.ident(n.df),
        tf=_tf(sql.SQL("u.positions")),
    )


def _remove(n: Names, rows: sql.Composable) -> sql.Composed:
    """Remove the postings of the rows of query ``rows`` (id, tsv) and subtract them from slot ``s``."""
    return sql.SQL(
        """WITH r AS MATERIALIZED (SELECT a.id, a.tsv, {dl} AS dl FROM ({rows}) a),
    st AS (
        INSERT INTO {stats} AS t (slot, n, total) SELECT s, -count(*), -coalesce(sum(r.dl), 0) FROM r
        ON CONFLICT (slot) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
    ),
    p AS (
        -- one primary-key probe per posting, by tuple id: a join here was planned as a hash join over
        -- every posting of the collection (8x slower for 10% of the rows)
        DELETE FROM {postings} p WHERE p.ctid = ANY (ARRAY(
            SELECT x.ctid
            FROM (SELECT r.id, u.lexeme COLLATE "C" AS lexeme FROM r CROSS JOIN LATERAL unnest(r.tsv) u ORDER BY 2, 1) k
            CROSS JOIN LATERAL (SELECT q.ctid FROM {postings} q WHERE q.lexeme = k.lexeme AND q.id = k.id OFFSET 0) x
        ))
        RETURNING p.lexeme
    )
    INSERT INTO {df} AS t (lexeme, slot, df) SELECT p.lexeme, s, -count(*) FROM p GROUP BY p.lexeme
    ON CONFLICT (lexeme, slot) DO UPDATE SET df = t.df + excluded.df;"""
    ).format(
        dl=_dl(sql.SQL("a.tsv")),
        rows=rows,
        stats=n.ident(n.stats),
        postings=n.ident(n.postings),
        df=n.ident(n.df),
    )


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
        ).format(p=n.ident(n.postings), tf=_tf(sql.SQL("u.positions")), dl=_dl(sql.SQL("c.tsv")), tbl=tbl),
        sql.SQL("INSERT INTO {d} (lexeme, slot, df) SELECT lexeme, 0, count(*) FROM {p} GROUP BY lexeme").format(
            d=n.ident(n.df), p=n.ident(n.postings)
        ),
        sql.SQL("INSERT INTO {s} (slot, n, total) SELECT 0, count(*), coalesce(sum({dl}), 0) FROM {tbl} c").format(
            s=n.ident(n.stats), dl=_dl(sql.SQL("c.tsv")), tbl=tbl
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
        dl=_dl(sql.SQL("c.tsv")),
        tbl=n.ident(table),
        tf=_tf(sql.SQL("u.positions")),
        p=n.ident(n.postings),
        d=n.ident(n.df),
        s=n.ident(n.stats),
    )


def search_statement(
    table: str,
    config: str = "english",
    *,
    where: sql.Composable | None = None,
    schema: str = SCHEMA,
    params: Mapping[str, sql.Composable] | None = None,
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
                  SELECT q.lexeme COLLATE "C" FROM unnest(to_tsvector({cfg}::regconfig, {text}::text)) q))
              GROUP BY lexeme HAVING sum(df) > 0) d,
             (SELECT sum(n)::float8 AS n, sum(total)::float8 AS total FROM {stats}) st
    ) w CROSS JOIN LATERAL (
        -- OFFSET 0 keeps this a per-lexeme index range scan whatever the statistics say
        SELECT p.id, p.tf, p.dl FROM {postings} p WHERE p.lexeme = w.lexeme OFFSET 0
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
