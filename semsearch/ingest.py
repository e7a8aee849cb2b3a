"""Validate rows and make the statements that write them: COPY into a staging table, then one upsert.

A batch is checked completely before anything is sent, and written in one
transaction, so it lands whole or not at all (the round trips: :mod:`semsearch.staging`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch.errors import InvalidInputError, WriteConflictError
from semsearch.layout import Layout
from semsearch.values import check_json, check_text

if TYPE_CHECKING:
    from semsearch.collection_info import CollectionInfo


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
    if isinstance(keys, Mapping):
        # iterating a dict gives its keys: delete({"a": 1}) would delete "a"
        raise InvalidInputError(f"expected a key or a list of keys, got a {type(keys).__name__}")
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


_KEEP_EMBEDDING = sql.SQL(
    "CASE WHEN EXCLUDED.embedding IS NULL AND t.content = EXCLUDED.content THEN t.embedding ELSE EXCLUDED.embedding END"
)


def key_order(rows: Rows) -> list[int]:
    # Python orders str by code point, which is the byte order of UTF-8: COLLATE "C"
    return sorted(range(len(rows.keys)), key=rows.keys.__getitem__)


#: read by semsearch.reset_stale_embedding(): semsearch's own upsert in this transaction (on Citus the
#: trigger runs on the workers: :meth:`Layout.set_local_sql` sends it there)
UPSERT_SETTING = {"semsearch.upsert": "on"}


def stage_statements(layout: Layout) -> list[sql.SQL | sql.Composed]:
    """Before a batch's COPY into :func:`stage`: the staging table made (once per connection) and emptied."""
    return [
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (key text, content text, metadata jsonb, tenant text, embedding {}) "
            "ON COMMIT DELETE ROWS"
        ).format(stage(layout), sql.SQL("vector({})").format(sql.Literal(layout.dims))),
        sql.SQL("TRUNCATE {}").format(stage(layout)),
        # this upsert sets each row's vector itself (the given one, the stored one for an
        # unchanged text, or none): the stale-vector trigger is for other writers
        *layout.set_local_sql(UPSERT_SETTING),
    ]


def stage(layout: Layout) -> sql.Identifier:
    """The temporary table a batch is copied into before the upsert."""
    # one staging table per dimension: it lives as long as the pooled connection, and
    # the next batch on that connection may be for a collection of another size
    return sql.Identifier(f"_semsearch_stage_{int(layout.dims)}")


def upsert_statement(layout: Layout) -> sql.Composed:
    """The staged batch into the table, in key order; returns one row: (inserted, updated)."""
    # xmax = 0 marks a freshly inserted tuple; the WHERE skips rows that did not change
    return sql.SQL(
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
        s=stage(layout),
        keep=_KEEP_EMBEDDING,
        unique=layout.unique_key,
        # distributed by tenant a key is stored once per tenant, and Citus refuses to update a distribution column
        tenant=sql.SQL("" if layout.tenant_in_key else "tenant = EXCLUDED.tenant, "),
    )


#: what the upsert retries once (in a savepoint), then refuses with :func:`conflict_error`
CONFLICTS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def conflict_error(layout: Layout, rows: Rows, exc: Exception) -> WriteConflictError:
    """The second deadlock (or serialization failure) of one batch's upsert."""
    what = "deadlock" if isinstance(exc, psycopg.errors.DeadlockDetected) else "serialization failure"
    return WriteConflictError(
        f"expected to write {len(rows.keys)} rows to {layout.name!r}, got a {what} twice "
        "from concurrent writers; nothing of the batch was written"
    )


#: the COPY's column types, in :func:`copy_statement`'s order
COPY_TYPES = ["text", "text", "jsonb", "text", "vector"]


def copy_statement(table: sql.Composable) -> sql.Composed:
    """A binary COPY of rows (:func:`copy_records`) into ``table``."""
    return sql.SQL("COPY {} (key, content, metadata, tenant, embedding) FROM STDIN WITH (FORMAT BINARY)").format(table)


def copy_records(
    rows: Rows, vectors: Sequence[np.ndarray | None], order: Sequence[int] | None = None
) -> Iterator[tuple[Any, ...]]:
    """The records :func:`copy_statement` takes, in ``order`` (default: the batch's)."""
    for i in range(len(rows.keys)) if order is None else order:
        yield (rows.keys[i], rows.contents[i], Jsonb(rows.metadata[i]), rows.tenants[i], vectors[i])


def stored_vectors_statement(layout: Layout) -> sql.Composed:
    """Vectors already stored for a list of content hashes (the one parameter): ``(hash, vector)`` rows."""
    return sql.SQL(
        "SELECT DISTINCT ON (content_hash) content_hash, embedding::vector FROM {} "
        "WHERE content_hash = ANY(%s) AND embedding IS NOT NULL"
    ).format(layout.table)


def known_vectors(found: Iterable[tuple[Any, Any]]) -> dict[bytes, np.ndarray]:
    """The rows of :func:`stored_vectors_statement` as ``{hash: float32 vector}``."""
    return {bytes(h): vec.to_numpy().astype(np.float32) for h, vec in found}


def to_embed(rows: Rows, hashes: list[bytes], known: Mapping[bytes, Any]) -> dict[bytes, str]:
    """The texts of a batch with no stored vector, once per distinct text."""
    todo: dict[bytes, str] = {}
    for h, text in zip(hashes, rows.contents, strict=True):
        if h not in known and h not in todo:
            todo[h] = text
    return todo


def check_tenants_required(rows: Rows, name: str, *, why: str = "tenant_required") -> None:
    """A collection made with ``tenant_required`` (or distributed by tenant) refuses a row without a tenant."""
    if None in rows.tenants:
        raise InvalidInputError(
            f"expected a tenant for every row of collection {name!r} ({why}), "
            f"got none at position {rows.tenants.index(None)}"
        )


def check_tenants(rows: Rows, info: CollectionInfo) -> None:
    """The rows of one batch have a tenant each, where the collection needs one."""
    if info.tenant_required:
        check_tenants_required(rows, info.name)
    elif info.layout.tenant_in_key:
        check_tenants_required(rows, info.name, why="distributed by tenant")


def batch_columns(batch: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any], Any, list[Any], list[Any]]:
    """``add_many`` records as ``add``'s columns: keys, contents, embeddings (or None), metadata, tenants."""
    has_vec = [r.get("embedding") is not None for r in batch]
    if any(has_vec) and not all(has_vec):
        raise InvalidInputError("expected every record of a batch to have an embedding, or none")
    return (
        [r.get("key") for r in batch],
        [r.get("content") for r in batch],
        np.asarray([r["embedding"] for r in batch]) if all(has_vec) else None,
        [r.get("metadata") for r in batch],
        [r.get("tenant") for r in batch],
    )


def delete_statement(layout: Layout) -> sql.Composed:
    """Delete rows by a list of keys (the one parameter); its rowcount is how many existed."""
    if not layout.locks_rows_first:
        # Citus locks rows across shards only in a router query: each shard deletes its own keys
        # (and detects distributed deadlocks itself)
        return sql.SQL("DELETE FROM {t} WHERE key = ANY(%s)").format(t=layout.table)
    # rows are locked in the same order (key, byte-wise) as add() locks them, so a delete
    # and an upsert of overlapping keys wait for each other instead of deadlocking
    return sql.SQL(
        'DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE)'
    ).format(t=layout.table)


def empty_statement(layout: Layout) -> sql.Composed:
    """Whether the table has no row (one boolean): a load into it is a bulk load."""
    # a select list, not an empty one: Citus refuses an empty target list
    return sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(layout.table)


def drop_index_statement(layout: Layout) -> sql.Composed:
    """Drop the HNSW index before a bulk load (built once afterwards)."""
    return sql.SQL("DROP INDEX IF EXISTS {}").format(layout.index_name("hnsw", schema=True))
