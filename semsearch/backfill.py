"""Embed pending rows in resumable batches: no row lost, none embedded into the table twice.

A run walks the pending rows in id order. For each batch it reads the texts,
calls the embedder with no transaction open (an API call must not hold row
locks that would block the app's own writes), then writes each vector only if
the row is still pending and its text is still the one embedded. So a crash or
``kill -9`` loses at most the batch in flight, which the next run takes again,
and a text edited meanwhile is never given the vector of its old version. An
advisory lock keeps a second worker on the same collection from paying for the
same rows twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psycopg import sql
from tqdm import tqdm

from semsearch.errors import BackfillRunningError, InvalidInputError

if TYPE_CHECKING:
    from semsearch.collection import Collection

#: US dollars per million input tokens (OpenAI price list, 2024-2026)
PRICES_PER_MILLION = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}
#: English text averages about 4 characters per token with OpenAI's tokenizers
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did, or would do with ``dry_run=True``.

    Example::

        BackfillResult(pending=1200, embedded=1200, batches=5, est_tokens=48_000, est_cost_usd=0.00096, seconds=3.1)
    """

    pending: int
    embedded: int
    batches: int
    est_tokens: int
    est_cost_usd: float | None
    seconds: float
    dry_run: bool = False


def pending_stats(col: Collection) -> tuple[int, int]:
    """Rows waiting for an embedding, and their total characters."""
    with col.db.connection() as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*), coalesce(sum(length(content)), 0) FROM {} WHERE embedding IS NULL").format(
                col.layout.table
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def backfill(
    col: Collection,
    *,
    batch_size: int = 256,
    progress: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
) -> BackfillResult:
    """Embed every pending row of ``col`` (see module docs); ``dry_run`` only estimates tokens and cost.

    Example::

        col.add(keys, texts, defer=True)     # fast: no embedding call
        col.backfill(progress=True)          # later, in a worker; safe to kill and rerun
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"expected batch_size >= 1, got {batch_size!r}")
    started = time.perf_counter()
    pending, chars = pending_stats(col)
    est_tokens = int(chars / CHARS_PER_TOKEN)
    price = PRICES_PER_MILLION.get(col.info.model)
    est_cost = None if price is None else est_tokens * price / 1e6
    if dry_run:
        return BackfillResult(pending, 0, 0, est_tokens, est_cost, time.perf_counter() - started, dry_run=True)
    todo = pending if limit is None else min(pending, limit)
    select = sql.SQL(
        "SELECT id, content, content_hash FROM {} WHERE embedding IS NULL AND id > %s ORDER BY id LIMIT %s"
    ).format(col.layout.table)
    update = sql.SQL(
        "UPDATE {t} AS t SET embedding = v.embedding FROM (SELECT unnest(%s::bigint[]) AS id, "
        "unnest(%s::bytea[]) AS content_hash, unnest(%s::vector[]) AS embedding) v "
        "WHERE t.id = v.id AND t.content_hash = v.content_hash AND t.embedding IS NULL"
    ).format(t=col.layout.table)
    embedded = batches = 0
    last_id = 0
    with col.db.connection() as conn:
        # session-level: released when this connection ends, even by kill -9
        lock = conn.execute("SELECT pg_try_advisory_lock(hashtext('semsearch.backfill'), hashtext(%s))", [col.name])
        if not lock.fetchone()[0]:  # type: ignore[index]
            raise BackfillRunningError(f"expected no other backfill of {col.name!r} running, got one")
        try:
            with tqdm(total=todo, unit="rows", disable=not progress, desc=f"embed {col.name}") as bar:
                while embedded < todo:
                    rows = conn.execute(select, [last_id, min(batch_size, todo - embedded)]).fetchall()
                    if not rows:
                        break
                    last_id = rows[-1][0]
                    vectors = col.embedder.embed([r[1] for r in rows])
                    cur = conn.execute(update, [[r[0] for r in rows], [r[2] for r in rows], list(np.asarray(vectors))])
                    embedded += cur.rowcount
                    batches += 1
                    bar.update(len(rows))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('semsearch.backfill'), hashtext(%s))", [col.name])
    return BackfillResult(pending, embedded, batches, est_tokens, est_cost, time.perf_counter() - started)
