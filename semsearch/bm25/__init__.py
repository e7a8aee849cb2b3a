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

Size: statements of many rows split the postings key's pages half full (each statement adds
to every lexeme's range); :func:`rewrite_statements` rebuilds the key in one pass, which
``add_many`` runs after a bulk load (27-43% of the key, bench/results/bm25_cost.md).

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

from semsearch.bm25.names import EVENTS, K1, MAX_TSV_CHARS, PARAMS, SCHEMA, SLOTS, B, Names, tsv_expression
from semsearch.bm25.ranking import search_statement
from semsearch.bm25.statistics import (
    backfill_statements,
    compact_statements,
    create_statements,
    drop_statements,
    reshape_statements,
    rewrite_statements,
    trigger_statements,
)
from semsearch.bm25.verify import verify_statement

__all__ = [
    "EVENTS",
    "K1",
    "MAX_TSV_CHARS",
    "PARAMS",
    "SCHEMA",
    "SLOTS",
    "B",
    "Names",
    "backfill_statements",
    "compact_statements",
    "create_statements",
    "drop_statements",
    "reshape_statements",
    "rewrite_statements",
    "search_statement",
    "trigger_statements",
    "tsv_expression",
    "verify_statement",
]
