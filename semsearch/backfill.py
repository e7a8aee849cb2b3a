"""Embed pending rows in resumable batches: no row lost, none embedded into the table twice.

A run walks the pending rows in id order. For each batch it reads the texts,
calls the embedder with no transaction open (an API call must not hold row
locks that would block the app's own writes), then writes each vector only if
the row is still pending and its text is still the one embedded. So a crash or
``kill -9`` loses at most the batch in flight, which the next run takes again,
and a text edited meanwhile is never given the vector of its old version. An
advisory lock keeps a second worker on the same collection from paying for the
same rows twice.

A text the provider refuses (HTTP 400: too long, unacceptable) would fail its
batch on every run. When a batch is refused, the run splits it in halves until
it finds the refused rows, embeds the rest, and puts the refused ones in
quarantine (``semsearch.quarantine``) with the provider's reason. Later runs
skip them, and :func:`pending_stats` does not count them, until their text
changes (an entry holds the hash of the text refused) or a run is told
``retry_quarantined=True``. A refusal of every text, a short control text
included, is the request's fault, not the texts': it is raised, nothing is
quarantined.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from semsearch import document_queue
from semsearch.embeddings.models import lookup
from semsearch.errors import BackfillRunningError, EmbeddingError, InvalidInputError
from semsearch.faces import Stored

#: English text averages about 4 characters per token with OpenAI's tokenizers
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did, or would do with ``dry_run=True``.

    ``pending`` excludes rows in quarantine (unless the run retried them);
    ``quarantined`` is how many rows this run put in quarantine.

    Example::

        BackfillResult(pending=1200, embedded=1199, batches=5, est_tokens=48_000, est_cost_usd=0.00096,
                       seconds=3.1, quarantined=1)
    """

    pending: int
    embedded: int
    batches: int
    est_tokens: int
    est_cost_usd: float | None
    seconds: float
    dry_run: bool = False
    quarantined: int = 0
    #: a synced table's queued documents split and written (``dry_run``: queued), :mod:`semsearch.document_queue`
    documents: int = 0


#: a text every provider embeds: refused too, the request (model, dims, key) is at fault, not the texts
CONTROL_TEXT = "hello"


def _held(col: Any, alias: str) -> sql.Composed:
    """True for a row (``alias``) in quarantine: an entry for its key and its current text.

    The entry must postdate the collection's catalog row: a dropped and re-created
    collection (same table name) does not inherit the entries of the old one.
    """
    if not col.layout.correlates_local_tables:
        # Citus joins a distributed table with a local one only through an uncorrelated subquery
        return sql.SQL(
            "({a}.key, {a}.content_hash) IN (SELECT q.key, q.content_hash FROM semsearch.quarantine q "
            "WHERE q.table_name = {name} "
            "AND q.at >= (SELECT c.created_at FROM semsearch.collections c WHERE c.table_name = {name}))"
        ).format(name=sql.Literal(col.layout.table_name), a=sql.Identifier(alias))
    return sql.SQL(
        "EXISTS (SELECT FROM semsearch.quarantine q WHERE q.table_name = {name} AND q.key = {a}.key "
        "AND q.content_hash = {a}.content_hash "
        "AND q.at >= (SELECT c.created_at FROM semsearch.collections c WHERE c.table_name = {name}))"
    ).format(name=sql.Literal(col.layout.table_name), a=sql.Identifier(alias))


def pending_stats(col: Stored, *, include_quarantined: bool = False) -> tuple[int, int]:
    """Rows waiting for an embedding (not those in quarantine), and their total characters."""
    with col.db.connection() as conn:
        row = conn.execute(pending_statement(col, include_quarantined=include_quarantined)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def pending_statement(col: Any, *, include_quarantined: bool = False) -> sql.Composed:
    """The count and total characters of ``col``'s pending rows (``col``: anything with its ``layout``)."""
    where = sql.SQL("TRUE") if include_quarantined else sql.SQL("NOT {}").format(_held(col, "p"))
    return sql.SQL(
        "SELECT count(*), coalesce(sum(length(content)), 0) FROM {} p WHERE embedding IS NULL AND {}"
    ).format(col.layout.table, where)


def quarantined(col: Stored) -> list[tuple[str, str]]:
    """``(key, reason)`` of the rows in quarantine, by key."""
    with col.db.connection() as conn:
        return [(r[0], r[1]) for r in conn.execute(quarantined_statement(col)).fetchall()]


def quarantined_statement(col: Any) -> sql.Composed:
    """``(key, reason)`` of ``col``'s rows in quarantine, by key (``col``: anything with its ``layout``)."""
    stmt = sql.SQL(
        "SELECT p.key, q.reason FROM {t} p JOIN semsearch.quarantine q ON q.table_name = {name} AND q.key = p.key "
        "WHERE p.embedding IS NULL AND {held} ORDER BY p.key"
    ).format(t=col.layout.table, name=sql.Literal(col.layout.table_name), held=_held(col, "p"))
    if not col.layout.correlates_local_tables:
        stmt = sql.SQL(
            "SELECT q.key, q.reason FROM semsearch.quarantine q WHERE q.table_name = {name} "
            "AND q.at >= (SELECT c.created_at FROM semsearch.collections c WHERE c.table_name = {name}) "
            "AND (q.key, q.content_hash) IN (SELECT p.key, p.content_hash FROM {t} p WHERE p.embedding IS NULL) "
            "ORDER BY q.key"
        ).format(t=col.layout.table, name=sql.Literal(col.layout.table_name))
    return stmt


class _Embedding:
    """Embeds a batch, or on a refusal its halves, down to the refused rows."""

    def __init__(self, col: Stored) -> None:
        self.col = col
        self.control_ok: bool | None = None

    def batch(self, rows: list[Any]) -> tuple[list[tuple[Any, np.ndarray]], list[tuple[Any, str]]]:
        """(row, vector) for the rows embedded, (row, reason) for those refused."""
        try:
            vectors = self.col.embedder.embed([r[2] for r in rows])
        except EmbeddingError as exc:
            if not exc.refused_input:
                raise
            if len(rows) > 1:
                mid = len(rows) // 2
                done_a, refused_a = self.batch(rows[:mid])
                done_b, refused_b = self.batch(rows[mid:])
                return done_a + done_b, refused_a + refused_b
            if not self._control_embeds():
                raise
            return [], [(rows[0], str(exc))]
        self.control_ok = True
        return list(zip(rows, np.asarray(vectors), strict=True)), []

    def _control_embeds(self) -> bool:
        # once a text embedded in this run the provider works; else ask it with a harmless text
        if self.control_ok is None:
            try:
                self.col.embedder.embed([CONTROL_TEXT])
                self.control_ok = True
            except EmbeddingError as exc:
                if not exc.refused_input:
                    raise
                self.control_ok = False
        return self.control_ok


def backfill(
    col: Stored,
    *,
    batch_size: int = 256,
    progress: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    retry_quarantined: bool = False,
    stop: threading.Event | None = None,
) -> BackfillResult:
    """Embed every pending row of ``col`` (see module docs); ``dry_run`` only estimates tokens and cost.

    ``retry_quarantined`` takes the rows in quarantine too; those refused again stay there.
    In a collection with passages it first drains the documents a synced table queued
    (:func:`semsearch.document_queue.drain`; ``limit`` counts the pending rows after it).
    ``stop`` ends the run between batches once set (:mod:`semsearch.watch`).

    Example::

        col.add(keys, texts, defer=True)     # fast: no embedding call
        col.backfill(progress=True)          # later, in a worker; safe to kill and rerun
        col.quarantined()                    # [(key, reason)] of texts the provider refused
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"expected batch_size >= 1, got {batch_size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"expected limit >= 0 or none, got {limit!r}")
    started = time.perf_counter()
    col._reload()  # the table and model the catalog names now (a handle may predate a model switch)
    pending, chars = pending_stats(col, include_quarantined=retry_quarantined)
    est_tokens = int(chars / CHARS_PER_TOKEN)
    model = lookup(col.info.model)
    price = None if model is None else model.price_per_million
    est_cost = None if price is None else est_tokens * price / 1e6
    documents = col.info.passages is not None
    if dry_run:
        queued = document_queue.queued(col) if documents else 0
        return BackfillResult(
            pending, 0, 0, est_tokens, est_cost, time.perf_counter() - started, dry_run=True, documents=queued
        )
    todo = pending if limit is None else min(pending, limit)
    skip = sql.SQL("") if retry_quarantined else sql.SQL("AND NOT {}").format(_held(col, "p"))
    select = sql.SQL(
        "SELECT id, key, content, content_hash FROM {} p WHERE embedding IS NULL AND id > %s {} ORDER BY id LIMIT %s"
    ).format(col.layout.table, skip)
    # rows locked in byte order of key first, as add() and delete() lock them: a backfill and a
    # writer of the same rows then wait for each other instead of deadlocking
    lock_rows = sql.SQL(
        'SELECT FROM {} WHERE id = ANY(%s) AND embedding IS NULL ORDER BY key COLLATE "C" FOR UPDATE'
    ).format(col.layout.table)
    update = sql.SQL(
        "UPDATE {t} AS t SET embedding = v.embedding FROM (SELECT unnest(%s::bigint[]) AS id, "
        "unnest(%s::bytea[]) AS content_hash, unnest(%s::vector[]) AS embedding) v "
        "WHERE t.id = v.id AND t.content_hash = v.content_hash AND t.embedding IS NULL"
    ).format(t=col.layout.table)
    embedded = batches = taken = held = 0
    last_id = 0
    embedding = _Embedding(col)
    with col.db.connection() as conn:
        # session-level: released when this connection ends, even by kill -9
        lock = conn.execute("SELECT pg_try_advisory_lock(hashtext('semsearch.backfill'), hashtext(%s))", [col.name])
        if not lock.fetchone()[0]:  # type: ignore[index]
            raise BackfillRunningError(f"expected no other backfill of {col.name!r} running, got one")
        try:
            drained = document_queue.Drained()
            if documents:  # a synced table's documents first: their refused passages are left pending
                drained = document_queue.drain(col, batch_size=batch_size, stop=stop, progress=progress)
                pending = pending_stats(col, include_quarantined=retry_quarantined)[0]
                todo = pending if limit is None else min(pending, limit)
            _forget_stale(conn, col)
            with tqdm(total=todo, unit="rows", disable=not progress, desc=f"embed {col.name}") as bar:
                while taken < todo and not (stop is not None and stop.is_set()):
                    rows = conn.execute(select, [last_id, min(batch_size, todo - taken)]).fetchall()
                    if not rows:
                        break
                    last_id, taken = rows[-1][0], taken + len(rows)
                    done, refused = embedding.batch(rows)
                    if done:
                        ids, hashes, vectors = [r[0] for r, _ in done], [r[3] for r, _ in done], [v for _, v in done]
                        with conn.transaction():
                            # Citus takes row locks (FOR UPDATE) only on one shard: a distributed
                            # collection's update locks its rows itself, and Citus detects deadlocks
                            if col.layout.locks_rows_first:
                                conn.execute(lock_rows, [ids])
                            embedded += conn.execute(update, [ids, hashes, vectors]).rowcount
                        if retry_quarantined:
                            _release(conn, col, [r[1] for r, _ in done])
                    held += _hold(conn, col, refused)
                    batches += 1
                    bar.update(len(rows))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('semsearch.backfill'), hashtext(%s))", [col.name])
    return BackfillResult(
        pending,
        embedded + drained.embedded,
        batches,
        est_tokens,
        est_cost,
        time.perf_counter() - started,
        quarantined=held,
        documents=drained.documents,
    )


def _hold(conn: psycopg.Connection, col: Stored, refused: list[tuple[Any, str]]) -> int:
    """Put refused rows in quarantine (again: a new reason and time); return how many."""
    if not refused:
        return 0
    conn.execute(
        "INSERT INTO semsearch.quarantine (table_name, key, content_hash, reason) "
        "SELECT %s, unnest(%s::text[]), unnest(%s::bytea[]), unnest(%s::text[]) "
        "ON CONFLICT (table_name, key) DO UPDATE SET content_hash = EXCLUDED.content_hash, "
        "reason = EXCLUDED.reason, at = now()",
        [col.layout.table_name, [r[1] for r, _ in refused], [r[3] for r, _ in refused], [w for _, w in refused]],
    )
    return len(refused)


def _release(conn: psycopg.Connection, col: Stored, keys: list[str]) -> None:
    conn.execute(
        "DELETE FROM semsearch.quarantine WHERE table_name = %s AND key = ANY(%s)", [col.layout.table_name, keys]
    )


def _forget_stale(conn: psycopg.Connection, col: Stored) -> None:
    """Drop entries that no longer hold: the row is gone, embedded, or its text changed."""
    if not col.layout.correlates_local_tables:
        conn.execute(
            sql.SQL(
                "DELETE FROM semsearch.quarantine d WHERE d.table_name = {name} AND (d.key, d.content_hash) NOT IN "
                "(SELECT p.key, p.content_hash FROM {t} p WHERE p.embedding IS NULL)"
            ).format(name=sql.Literal(col.layout.table_name), t=col.layout.table)
        )
        return
    conn.execute(
        sql.SQL(
            "DELETE FROM semsearch.quarantine d WHERE d.table_name = {name} "
            "AND NOT EXISTS (SELECT FROM {t} p WHERE p.key = d.key AND p.embedding IS NULL AND {held})"
        ).format(name=sql.Literal(col.layout.table_name), t=col.layout.table, held=_held(col, "p"))
    )
