"""Validate rows and write them: COPY into a staging table, then one upsert.

A batch is checked completely before anything is sent, and written in one
transaction, so it lands whole or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch.embeddings.base import normalize_rows
from semsearch.errors import InvalidInputError, WriteConflictError
from semsearch.schema import Layout
from semsearch.values import check_json, check_text

if TYPE_CHECKING:
    from semsearch.tune import TuneResult


@dataclass(frozen=True)
class Rows:
    """A checked batch: keys, contents and metadata ready to write."""

    keys: list[str]
    contents: list[str]
    metadata: list[dict[str, Any]]
    tenants: list[str | None]

    def hashes(self) -> list[bytes]:
        """SHA-256 of each content, as the table's generated ``content_hash`` computes it."""
        return [hashlib.sha256(c.encode("utf-8")).digest() for c in self.contents]


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Collection.add` did.

    ``embedded`` texts went to the embedder; ``reused`` took the stored vector of
    an identical text; ``unchanged`` rows were already stored exactly so.
    """

    inserted: int
    updated: int
    unchanged: int
    embedded: int = 0
    reused: int = 0
    #: what the automatic tuning after this load chose (see :func:`semsearch.tune.autotune`), if it ran
    tuned: TuneResult | None = None

    def __add__(self, other: AddResult) -> AddResult:
        """Counts of two loads together (the later tuning wins).

        >>> (AddResult(1, 0, 2, embedded=1) + AddResult(3, 1, 0, reused=2)).inserted
        4
        """
        return AddResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            embedded=self.embedded + other.embedded,
            reused=self.reused + other.reused,
            tuned=other.tuned or self.tuned,
        )


def check_key(key: Any, where: str = "") -> str:
    """One key as the str stored: a non-empty str or an int (not a bool), storable in Postgres."""
    if isinstance(key, bool) or not isinstance(key, (str, int)) or (isinstance(key, str) and not key):
        raise InvalidInputError(f"expected a non-empty str or int key, got {key!r}{where}")
    if isinstance(key, str):
        check_text(key, f"a key{where}")
    return str(key)


def check_keys(keys: Any) -> list[str]:
    """Keys for a delete: one str or int key, or an iterable of them (duplicates allowed)."""
    if isinstance(keys, (str, int)):
        return [check_key(keys)]
    if isinstance(keys, (bytes, bytearray)) or not isinstance(keys, Iterable):
        raise InvalidInputError(f"expected a key or a list of keys, got {type(keys).__name__}")
    return [check_key(k, f" at position {i}") for i, k in enumerate(keys)]


def check_rows(
    keys: Sequence[str | int],
    contents: Sequence[str],
    metadata: Sequence[Mapping[str, Any] | None] | None,
    tenant: str | Sequence[str | None] | None = None,
) -> Rows:
    """Check keys, texts, metadata and tenants of one batch; raise on the first bad value.

    Nothing is sent before every row passed, so a refused batch writes nothing.
    """
    if isinstance(keys, (str, bytes)) or isinstance(contents, (str, bytes)):
        raise InvalidInputError("expected lists of keys and contents, got a single string")
    keys_s = [check_key(key, f" at position {i}") for i, key in enumerate(keys)]
    if len(contents) != len(keys_s):
        raise InvalidInputError(f"expected {len(keys_s)} contents (one per key), got {len(contents)}")
    seen: dict[str, int] = {}
    for i, key in enumerate(keys_s):
        if key in seen:
            raise InvalidInputError(f"expected unique keys in a batch, got {key!r} at positions {seen[key]} and {i}")
        seen[key] = i
    for i, text in enumerate(contents):
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"expected non-empty text, got {text!r} at position {i}")
        check_text(text, f"text at position {i}")
    meta: list[dict[str, Any]] = []
    if metadata is None:
        meta = [{} for _ in keys_s]
    else:
        if len(metadata) != len(keys_s):
            raise InvalidInputError(f"expected {len(keys_s)} metadata dicts (one per key), got {len(metadata)}")
        for i, m in enumerate(metadata):
            if m is None:
                m = {}
            if not isinstance(m, Mapping):
                raise InvalidInputError(f"expected a dict of metadata, got {type(m).__name__} at position {i}")
            m = dict(m)
            # Postgres jsonb has no NaN, no nul character: refuse them here rather than half-way
            check_json(m, f"metadata at position {i}")
            meta.append(m)
    if tenant is None or isinstance(tenant, str):
        tenants: list[str | None] = [tenant] * len(keys_s)
    elif isinstance(tenant, (bytes, bytearray)) or not isinstance(tenant, Iterable):
        raise InvalidInputError(f"expected tenant as a str, a list of them or none, got {type(tenant).__name__}")
    else:
        tenants = list(tenant)
        if len(tenants) != len(keys_s):
            raise InvalidInputError(f"expected {len(keys_s)} tenants (one per key), got {len(tenants)}")
    for i, t in enumerate(tenants):
        if t is not None and (not isinstance(t, str) or not t):
            raise InvalidInputError(f"expected a non-empty str tenant or none, got {t!r} at position {i}")
        if t is not None:
            check_text(t, f"a tenant at position {i}")
    return Rows(keys_s, list(contents), meta, tenants)


def check_vectors(vectors: Any, *, n: int, dims: int) -> np.ndarray:
    """Shape-check ``vectors`` as ``(n, dims)`` finite non-zero rows; return them unit-norm float32."""
    try:
        # float32 is what is stored; converting once here keeps large batches cheap
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"expected an array of numbers, got {type(vectors).__name__}") from exc
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] != dims:
        raise InvalidInputError(f"expected embeddings of shape ({n}, {dims}), got {arr.shape}")
    return normalize_rows(arr)


def check_query_vector(vector: Any, *, dims: int) -> np.ndarray:
    """One query vector as a unit-norm float32 array of ``dims`` values."""
    arr = np.asarray(vector, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != dims:
        raise InvalidInputError(f"expected a query vector of {dims} dims, got shape {arr.shape}")
    return check_vectors(arr.reshape(1, -1), n=1, dims=dims)[0]


_KEEP_EMBEDDING = sql.SQL(
    "CASE WHEN EXCLUDED.embedding IS NULL AND t.content = EXCLUDED.content THEN t.embedding ELSE EXCLUDED.embedding END"
)


def _key_order(rows: Rows) -> list[int]:
    # Python orders str by code point, which is the byte order of UTF-8: COLLATE "C"
    return sorted(range(len(rows.keys)), key=rows.keys.__getitem__)


#: read by semsearch.reset_stale_embedding(): semsearch's own upsert in this transaction
UPSERT_SETTING = sql.SQL("SELECT set_config('semsearch.upsert', 'on', true)")


def write(
    conn: psycopg.Connection, layout: Layout, rows: Rows, vectors: Sequence[np.ndarray | None]
) -> tuple[int, int]:
    """Upsert one checked batch in the caller's transaction; return (inserted, updated).

    A ``None`` vector leaves the row pending for :func:`semsearch.backfill.backfill`;
    it keeps its stored vector if its text did not change.

    Rows are written (and so locked) in byte order of key, whatever order the batch
    has: two writers of overlapping keys then wait for each other instead of
    deadlocking. Should a deadlock still happen (a writer outside semsearch), the
    upsert runs once more in a savepoint, then raises :class:`WriteConflictError`.
    """
    # one staging table per dimension: it lives as long as the pooled connection, and
    # the next batch on that connection may be for a collection of another size
    stage = sql.Identifier(f"_semsearch_stage_{int(layout.dims)}")
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (key text, content text, metadata jsonb, tenant text, embedding {}) "
            "ON COMMIT DELETE ROWS"
        ).format(stage, sql.SQL("vector({})").format(sql.Literal(layout.dims)))
    )
    conn.execute(sql.SQL("TRUNCATE {}").format(stage))
    # this upsert sets each row's vector itself (the given one, the stored one for an
    # unchanged text, or none): the stale-vector trigger is for other writers
    if layout.distributed_by is None:
        conn.execute(UPSERT_SETTING)
    else:
        # the stale-vector trigger runs on the workers: the setting must reach them
        conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        conn.execute("SET LOCAL semsearch.upsert = 'on'")
    _copy(conn, stage, rows, vectors)
    # xmax = 0 marks a freshly inserted tuple; the WHERE skips rows that did not change
    upsert = sql.SQL(
        "WITH up AS ("
        "INSERT INTO {t} AS t (key, content, metadata, tenant, embedding) "
        'SELECT key, content, metadata, tenant, embedding FROM {s} ORDER BY key COLLATE "C" '
        "ON CONFLICT ({unique}) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata, "
        "{tenant}embedding = {keep}, updated_at = EXCLUDED.updated_at "
        "WHERE (t.content, t.metadata, t.tenant, t.embedding) IS DISTINCT FROM "
        "(EXCLUDED.content, EXCLUDED.metadata, EXCLUDED.tenant, {keep}) "
        "RETURNING (xmax = 0) AS ins) "
        "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up"
    ).format(
        t=layout.table,
        s=stage,
        keep=_KEEP_EMBEDDING,
        unique=layout.unique_key,
        # a key is stored once per tenant there, and Citus refuses to update a distribution column
        tenant=sql.SQL("" if layout.distributed_by == "tenant" else "tenant = EXCLUDED.tenant, "),
    )
    for attempt in (1, 2):
        try:
            # a savepoint: a deadlock aborts only the upsert, whose locks it releases
            with conn.transaction():
                got = conn.execute(upsert).fetchone()
            break
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            if attempt == 2:
                what = "deadlock" if isinstance(exc, psycopg.errors.DeadlockDetected) else "serialization failure"
                raise WriteConflictError(
                    f"expected to write {len(rows.keys)} rows to {layout.name!r}, got a {what} twice "
                    "from concurrent writers; nothing of the batch was written"
                ) from exc
    assert got is not None
    return int(got[0]), int(got[1])


def copy_new(conn: psycopg.Connection, layout: Layout, rows: Rows, vectors: Sequence[np.ndarray | None]) -> int:
    """COPY a batch of new keys straight into the table: twice the rows/s of :func:`write`.

    Raises ``UniqueViolation`` if a key exists; run it in a savepoint and fall back to
    :func:`write` then.
    """
    # in key order, like write(): a concurrent writer of the same new keys waits, then fails over
    _copy(conn, layout.table, rows, vectors, order=_key_order(rows))
    return len(rows.keys)


def _copy(
    conn: psycopg.Connection,
    table: sql.Composable,
    rows: Rows,
    vectors: Sequence[np.ndarray | None],
    order: Sequence[int] | None = None,
) -> None:
    copy_sql = sql.SQL("COPY {} (key, content, metadata, tenant, embedding) FROM STDIN WITH (FORMAT BINARY)")
    with conn.cursor() as cur, cur.copy(copy_sql.format(table)) as copy:
        copy.set_types(["text", "text", "jsonb", "text", "vector"])
        for i in range(len(rows.keys)) if order is None else order:
            copy.write_row((rows.keys[i], rows.contents[i], Jsonb(rows.metadata[i]), rows.tenants[i], vectors[i]))


def stored_vectors(conn: psycopg.Connection, layout: Layout, hashes: list[bytes]) -> dict[bytes, np.ndarray]:
    """Vectors already stored for these content hashes (same collection: same model and dims)."""
    if not hashes:
        return {}
    found: dict[bytes, np.ndarray] = {}
    cur = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (content_hash) content_hash, embedding::vector FROM {} "
            "WHERE content_hash = ANY(%s) AND embedding IS NOT NULL"
        ).format(layout.table),
        [list(set(hashes))],
    )
    for h, vec in cur:
        found[bytes(h)] = vec.to_numpy().astype(np.float32)
    return found
