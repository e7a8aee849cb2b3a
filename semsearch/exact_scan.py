"""The exact top-k of many queries in one streamed pass over a collection's full vectors.

Tuning needs exact answers for its proxy queries (and for the rows they are made from). One
exact SQL search per query scans the whole table each time: at 250k rows that capped autotune
at 40 proxies, too few to judge 0.99 (bench/results/tunebit_spread.md). Here the table's
vectors are read once, in chunks of ``CHUNK_ROWS`` (memory bounded by the chunk, not the table),
and numpy keeps each query's best ``k + SPARE`` rows as it goes. Postgres then rescores those
few rows per query with the exact search's own expression, and the top ``k`` by that score (ties
by id, as the exact statement orders them) are the answer: the same keys and scores as
``col.search(vector=q, k=k, exact=True)``, so recall's ties at the k-th score count alike.
A query whose ``k + SPARE``-th row is within ``MARGIN`` of its k-th (many tied rows) takes that
exact search instead (afterwards, in its own snapshot). The scan and the rescore run in one
read-only REPEATABLE READ transaction: one snapshot, whatever is written meanwhile.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from semsearch import vectors
from semsearch.faces import Searchable
from semsearch.results import Hit, SearchResult

#: rows read per fetch: a chunk of 1536-dim rows is 4096 x 6 KB = 25 MB, its scores 4096 x queries
CHUNK_ROWS = 4096
#: rows kept per query beyond k, for Postgres' rescore to reorder
SPARE = 16
#: numpy's float32 sums and Postgres' own differ by ~1e-6: rows this close to the k-th count as maybe tied
MARGIN = 1e-4


def streamable(col: Searchable) -> bool:
    """Whether a search's exact hits are the table's own rows, one per key, as the streamed pass sees them.

    Not for a distributed table (its rows live on the workers), a collection split into passages
    (a hit is a document) or one whose tenants are kept apart by policies (a session sees its own).
    """
    info = col.info
    return not col.layout.distributed and info.passages is None and info.tenant_setting is None


def exact_answers(col: Searchable, queries: np.ndarray, k: int, *, chunk: int = CHUNK_ROWS) -> list[SearchResult]:
    """Each query's exact top ``k`` (as ``col.search(vector=q, k=k, exact=True)`` returns it), in one scan.

    Example::

        answers = exact_answers(col, vecs, 10)       # one pass over the table for all of vecs
        answers[0].keys                               # the first query's 10 nearest keys
    """
    qs = np.stack([vectors.check_query_vector(q, dims=col.dims) for q in queries]) if len(queries) else None
    if qs is None:
        return []
    found = col.db.read(lambda conn: _answers(conn, col, qs, k, chunk))
    return [r if r is not None else col.search(vector=q, k=k, exact=True) for r, q in zip(found, qs, strict=True)]


def _answers(
    conn: psycopg.Connection[Any], col: Searchable, qs: np.ndarray, k: int, chunk: int
) -> list[SearchResult | None]:
    table = col.layout.table
    keep = k + SPARE
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        best_s = np.full((len(qs), 0), -np.inf, np.float32)
        best_i = np.zeros((len(qs), 0), np.int64)
        rows = 0
        # vector_send: pgvector's binary form (int16 dims, int16 unused, float4 big-endian each), read as is
        with conn.cursor(name="semsearch_exact_scan", binary=True) as cur:
            cur.itersize = chunk
            cur.execute(
                sql.SQL("SELECT id, vector_send(embedding::vector) FROM {} WHERE embedding IS NOT NULL").format(table)
            )
            while batch := cur.fetchmany(chunk):
                rows += len(batch)
                ids = np.fromiter((r[0] for r in batch), np.int64, len(batch))
                flat = np.frombuffer(b"".join(bytes(r[1]) for r in batch), dtype=">f4")
                x = flat.reshape(len(batch), -1)[:, 1:].astype(np.float32)
                x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
                best_s, best_i = _merge(best_s, best_i, qs @ x.T, ids, keep)
        complete = rows <= keep  # every row kept: nothing past them to tie
        return [_rescore(conn, col, q, s, i, k, complete=complete) for q, s, i in zip(qs, best_s, best_i, strict=True)]


def _merge(
    best_s: np.ndarray, best_i: np.ndarray, scores: np.ndarray, ids: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``keep`` (score, id) per query of those kept so far and a chunk's (queries x rows) scores."""
    s = np.concatenate([best_s, scores.astype(np.float32)], axis=1)
    i = np.concatenate([best_i, np.broadcast_to(ids, scores.shape)], axis=1)
    if s.shape[1] <= keep:
        return s, i
    top = np.argpartition(-s, keep - 1, axis=1)[:, :keep]
    return np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)


def _rescore(
    conn: psycopg.Connection[Any],
    col: Searchable,
    q: np.ndarray,
    scores: np.ndarray,
    ids: np.ndarray,
    k: int,
    *,
    complete: bool,
) -> SearchResult | None:
    """The top ``k`` of a query's kept rows by Postgres' exact score; None when rows past them may tie."""
    if len(ids) == 0:
        return SearchResult(hits=(), k=k, exact=True)
    ranked = np.sort(scores)[::-1]
    if not complete and len(ranked) > k and ranked[-1] >= ranked[min(k, len(ranked)) - 1] - MARGIN:
        return None  # more rows than kept may sit at the k-th score: the exact search decides
    layout = col.layout
    stmt = sql.SQL(
        "SELECT key, content, (1 - (embedding <=> (%(q)b)::{vtype}))::float8 AS score, metadata FROM {table} "
        "WHERE id = ANY(%(ids)s) AND embedding IS NOT NULL ORDER BY score DESC, id LIMIT {k}"
    ).format(vtype=layout.vector_type, table=layout.table, k=sql.Literal(k))
    rows = conn.execute(stmt, {"q": q, "ids": ids.tolist()}).fetchall()
    hits = tuple(Hit(key=r[0], content=r[1], score=float(r[2]), metadata=r[3] or {}) for r in rows)
    return SearchResult(hits=hits, k=k, exact=True)
