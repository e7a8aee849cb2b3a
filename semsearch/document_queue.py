"""A synced table's rows as documents: the triggers queue them, backfill splits, embeds and writes them.

``sync_table(..., passages=True)`` keeps a collection with passages in step with a table.
A trigger can neither split a text nor call an embedder, so for such a collection the
triggers (:mod:`semsearch.table_sync` composes them with the statements here):

- queue each inserted or changed row's document in ``semsearch.pending_documents``
  (migration 0011): its key, text, metadata and tenant as of this write, a new
  ``version`` and ``queued_at``; a newer write of the same row replaces the entry;
- on a delete (or a key that moved, or a text now NULL) drop the entry and delete the
  document's passages at once, found by their reserved metadata entry
  (:data:`semsearch.passages.placement.PASSAGE`); a TRUNCATE empties both.

:func:`drain` (run by ``backfill`` and so by ``backfill --watch`` first, under the
backfill's advisory lock) takes the entries in batches:

1. reads a batch (``FOR UPDATE SKIP LOCKED``: entries a writer holds are left for the
   next run) and commits at once, so no lock is held while the embedder is called;
2. splits each document with the collection's splitter, reuses the stored vector of
   every passage whose text is already stored (content hash) and embeds the others;
3. in one transaction, locks the entries again (``SKIP LOCKED``) and keeps those whose
   version is still the one read; writes their passages, deletes their vanished
   passages, and drops their entries. A document written again meanwhile keeps its
   entry (and is drained with its new text next time); a failure (the embedder down,
   a crash) writes nothing and leaves every entry queued.

A passage the provider refuses is written pending instead (the batch's new passages
are, then): the backfill that follows puts it in quarantine as for any row.
Locks are taken entries first, then passage rows, by the triggers and here alike.

Example::

    col = db.sync_table("articles", collection="articles", key="id", text=["title", "body"],
                        model="local", passages=True)
    col.backfill()          # drains the queue, then embeds what is still pending
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from psycopg import sql
from tqdm import tqdm

from semsearch import catalog, ingest, staging, writes
from semsearch.collection_info import CollectionInfo
from semsearch.errors import ConfigurationError, EmbeddingError
from semsearch.faces import Stored
from semsearch.passages import edits, placement
from semsearch.passages.splitter import resolve as resolve_splitter

#: the queue (migration 0011)
QUEUE = sql.Identifier("semsearch", "pending_documents")


def _document_of(alias: str) -> sql.Composed:
    """A passage row's document key (NULL for a row that is no passage)."""
    return sql.SQL("{}.metadata -> {} ->> 'doc'").format(sql.Identifier(alias), sql.Literal(placement.PASSAGE))


def queue_statement(collection: str, rows: sql.Composable, searchable: sql.Composable, op: str) -> sql.Composed:
    """Queue ``rows`` (key, content, metadata, tenant) in key order; a queued key takes the new values and version.

    In a trigger body: the collection's watchers are told when a row was queued.
    """
    return sql.SQL(
        "INSERT INTO {q} AS q (collection, key, content, metadata, tenant, op) "
        'SELECT {c}, key, content, metadata, tenant, {op} FROM ({rows}) s WHERE {ok} ORDER BY key COLLATE "C" '
        "ON CONFLICT (collection, key) DO UPDATE SET content = EXCLUDED.content, metadata = EXCLUDED.metadata, "
        "tenant = EXCLUDED.tenant, op = EXCLUDED.op, queued_at = pg_catalog.clock_timestamp(), "
        "version = pg_catalog.nextval('semsearch.pending_documents_version');\n"
        "    IF FOUND THEN PERFORM pg_catalog.pg_notify('semsearch_pending', {c}); END IF;"
    ).format(q=QUEUE, c=sql.Literal(collection), op=sql.Literal(op), rows=rows, ok=searchable)


def forget_statement(collection: str, target: sql.Composable, keys: sql.Composable) -> sql.Composed:
    """Drop the entries of the documents ``keys`` (a query of one ``key`` column), then delete their passages."""
    return sql.SQL(
        "DELETE FROM {q} q WHERE q.collection = {c} AND q.key IN ({keys});\n"
        # one probe of the metadata index per document (an `@> ANY(array)` rechecks every element per row)
        "    DELETE FROM {t} x USING ({keys}) k "
        "WHERE x.metadata @> pg_catalog.jsonb_build_object({p}, pg_catalog.jsonb_build_object('doc', k.key));"
    ).format(q=QUEUE, c=sql.Literal(collection), t=target, keys=keys, p=sql.Literal(placement.PASSAGE))


def clear_statement(collection: str, target: sql.Composable) -> sql.Composed:
    """A TRUNCATE of the source: no entry, no passage."""
    return sql.SQL("DELETE FROM {q} WHERE collection = {c};\n    TRUNCATE {t};").format(
        q=QUEUE, c=sql.Literal(collection), t=target
    )


def mirror_statements(
    collection: str, target: sql.Composable, rows: sql.Composable, searchable: sql.Composable
) -> list[sql.Composed]:
    """The table now: entries and passages of documents not in it go, every document in it is queued.

    A document whose text did not change keeps every passage's vector when it is drained.
    """
    return [
        sql.SQL(
            "DELETE FROM {q} x WHERE x.collection = {c} "
            "AND NOT EXISTS (SELECT FROM ({rows}) s WHERE s.key = x.key AND {ok})"
        ).format(q=QUEUE, c=sql.Literal(collection), rows=rows, ok=searchable),
        sql.SQL("DELETE FROM {t} x WHERE NOT EXISTS (SELECT FROM ({rows}) s WHERE s.key = {doc} AND {ok})").format(
            t=target, rows=rows, ok=searchable, doc=_document_of("x")
        ),
        sql.SQL(
            "INSERT INTO {q} AS q (collection, key, content, metadata, tenant, op) "
            "SELECT {c}, key, content, metadata, tenant, 'insert' FROM ({rows}) s WHERE {ok} "
            'ORDER BY key COLLATE "C" ON CONFLICT (collection, key) DO UPDATE SET content = EXCLUDED.content, '
            "metadata = EXCLUDED.metadata, tenant = EXCLUDED.tenant, op = EXCLUDED.op, "
            "queued_at = pg_catalog.clock_timestamp(), "
            "version = pg_catalog.nextval('semsearch.pending_documents_version')"
        ).format(q=QUEUE, c=sql.Literal(collection), rows=rows, ok=searchable),
    ]


def check_sync(passages: Any, info: CollectionInfo | None, metadata: Sequence[str]) -> bool:
    """Whether a sync queues documents (``passages=``, or an existing collection with passages).

    ``passages=None`` follows an existing collection; for a new one it means whole rows.

    >>> check_sync(None, None, ["price"]), check_sync(True, None, ["price"])
    (False, True)
    """
    documents = passages is not None and passages is not False
    if info is not None:
        resolve_splitter(passages, info.model)  # a valid passages= (a new collection's is checked as it is made)
        if passages is not None and documents != (info.passages is not None):
            has = "documents split into passages" if info.passages is not None else "whole rows"
            raise ConfigurationError(
                f"expected passages={'None' if documents else 'None or True'} for existing collection "
                f"{info.name!r}, got {passages!r}: it holds {has} (sync to another collection)"
            )
        documents = info.passages is not None
    if documents and placement.PASSAGE in metadata:
        raise ConfigurationError(f"expected no metadata column named {placement.PASSAGE!r} (reserved), got one")
    return documents


@dataclass(frozen=True)
class Drained:
    """What :func:`drain` did: documents written (their entries dropped), passages embedded, documents left queued."""

    documents: int = 0
    embedded: int = 0
    #: written again while they were embedded: queued still, with their newer text
    requeued: int = 0


# in the primary key's order (a batch is an index range, whatever the queue's length); SKIP LOCKED never waits
_READ = sql.SQL(
    "SELECT key, content, metadata, tenant, version FROM {q} WHERE collection = %s AND key > %s "
    "ORDER BY collection, key LIMIT %s FOR UPDATE SKIP LOCKED"
).format(q=QUEUE)
# the versions still current, locked until the batch commits; a writer holding one: left for next time
_CURRENT = sql.SQL(
    "SELECT key, version FROM {q} WHERE collection = %s AND key = ANY(%s) "
    'ORDER BY key COLLATE "C" FOR UPDATE SKIP LOCKED'
).format(q=QUEUE)
_DROP = sql.SQL("DELETE FROM {q} WHERE collection = %s AND key = ANY(%s)").format(q=QUEUE)


def queued(col: Stored) -> int:
    """How many documents of ``col`` wait in the queue."""
    with col.db.connection() as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE collection = %s").format(QUEUE), [col.name])
        return int(row.fetchone()[0])  # type: ignore[index]


def drain(
    col: Stored, *, batch_size: int = 256, stop: threading.Event | None = None, progress: bool = False
) -> Drained:
    """Split, embed and write the queued documents of ``col`` (see the module's docs); the caller holds its lock.

    Each entry is taken once a run (in key order): one written again meanwhile waits for the next run.
    """
    total = Drained()
    last = ""
    with tqdm(total=queued(col) if progress else None, unit="documents", disable=not progress,
              desc=f"split {col.name}") as bar:  # fmt: skip
        while not (stop is not None and stop.is_set()):
            with col.db.connection() as conn, conn.transaction():
                entries = conn.execute(_READ, [col.name, last, batch_size]).fetchall()
            if not entries:
                break
            last = entries[-1][0]
            # a changed definition (another model, table) met by the write: split and embedded again for it
            done = writes.following_catalog(col, partial(_batch, col, entries))
            total = Drained(
                total.documents + done.documents, total.embedded + done.embedded, total.requeued + done.requeued
            )
            bar.update(len(entries))
    return total


def _batch(col: Stored, entries: list[tuple[Any, ...]]) -> Drained:
    """One batch of entries: split and embed with no transaction open, then write what is still current."""
    # a blank text has no passage: the document's stored passages go, nothing is written for it
    texts = [e for e in entries if e[1].strip()]
    checked = ingest.check_rows(
        [e[0] for e in texts], [e[1] for e in texts], [e[2] for e in texts], [e[3] for e in texts]
    )
    passages = edits.expand(checked, col.splitter).rows
    try:
        vectors, embedded, _ = writes.embed_missing(col, passages, defer=False)
    except EmbeddingError as exc:
        if not exc.refused_input:
            raise  # the provider is down: every entry stays queued
        # a passage refused: the new passages are written pending, backfill's quarantine takes the refused one
        vectors, embedded, _ = writes.embed_missing(col, passages, defer=True)
    seen = {e[0]: e[4] for e in entries}
    with col.db.connection() as conn, conn.transaction():
        col._check(conn.execute(catalog.CHECK, [col.name]).fetchone())
        current = {key for key, version in conn.execute(_CURRENT, [col.name, list(seen)]) if seen[key] == version}
        keep = [i for i, meta in enumerate(passages.metadata) if meta[placement.PASSAGE]["doc"] in current]
        rows = ingest.Rows(
            [passages.keys[i] for i in keep],
            [passages.contents[i] for i in keep],
            [passages.metadata[i] for i in keep],
            [passages.tenants[i] for i in keep],
        )
        if rows.keys:
            staging.write(conn, col.layout, rows, [vectors[i] for i in keep])
        documents = sorted(current)
        # a document's passages under another tenant (its row's tenant changed) are its passages too
        conn.execute(*edits.vanished_statement(col.layout, documents, [None] * len(documents), rows.keys))
        conn.execute(_DROP, [col.name, documents])
    return Drained(len(current), embedded, len(seen) - len(current))
