"""A collection's write path: check, embed only what is new, write each batch in one transaction.

:class:`~semsearch.collection.Collection`'s ``add``, ``add_many`` and ``delete`` come
here; the statements are :mod:`semsearch.ingest`'s. Each write transaction first checks
the handle's catalog row; a write that meets a changed definition (``migrate-model``
switched the table, the table was distributed, ...) takes the new row and runs again in
full: its vectors must be the live model's, its statements the new layout's (see
:mod:`semsearch.handle`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import numpy as np
import psycopg
from tqdm import tqdm

from semsearch import catalog, doctor, ingest, tune
from semsearch.faces import Searchable
from semsearch.handle import CatalogChanged, rereads
from semsearch.layout import Layout
from semsearch.passages import edits
from semsearch.results import AddResult
from semsearch.vectors import check_vectors

T = TypeVar("T")


def add(
    col: Searchable,
    keys: Sequence[str | int],
    contents: Sequence[str],
    embeddings: Any,
    metadata: Sequence[Mapping[str, Any] | None] | None,
    tenant: str | Sequence[str | None] | None,
    *,
    defer: bool,
    copy_first: bool,
) -> AddResult:
    """:meth:`Collection.add`; ``copy_first`` (bulk loads) tries a plain COPY of new keys before the upsert.

    In a collection with passages each text is a document: its passage rows are written and
    its vanished passages deleted in the same transaction (see :mod:`semsearch.passages.edits`).
    """
    rows = ingest.check_rows(keys, contents, metadata, tenant)
    if not rows.keys:
        return AddResult(0, 0, 0)
    docs = edits.prepare(rows, col.splitter, embeddings, model=col.info.model, name=col.name)
    if docs is not None:
        rows = docs.rows

    def embed_and_write() -> AddResult:
        # run again in full after a change of definition: the vectors must be the live model's
        ingest.check_tenants(rows, col.info)
        embedded = reused = 0
        vectors: Sequence[np.ndarray | None]
        if embeddings is not None:
            vectors = list(check_vectors(embeddings, n=len(rows.keys), dims=col.dims))
        else:
            vectors, embedded, reused = embed_missing(col, rows, defer=defer)
        inserted, updated, deleted = write(col, rows, vectors, copy_first=copy_first, docs=docs)
        return edits.counted(rows, docs, (inserted, updated, deleted), embedded, reused)

    return following_catalog(col, embed_and_write)


def write(
    col: Searchable,
    rows: ingest.Rows,
    vectors: Sequence[np.ndarray | None],
    *,
    copy_first: bool,
    docs: edits.Documents | None = None,
) -> tuple[int, int, int]:
    """Write one checked batch in one transaction; ``(inserted, updated, passages deleted)``."""
    with col.db.connection() as conn, conn.transaction():
        col._check(conn.execute(catalog.CHECK, [col.name]).fetchone())
        written: tuple[int, int] | None = None
        if copy_first:
            # the table started empty: most batches are all new keys, which COPY takes directly
            try:
                with conn.transaction():
                    written = ingest.copy_new(conn, col.layout, rows, vectors), 0
            except (psycopg.errors.UniqueViolation, psycopg.errors.TransactionRollback):
                pass  # a key already stored, or a deadlock with a writer outside semsearch: the upsert decides
        if written is None:
            written = ingest.write(conn, col.layout, rows, vectors)
        deleted = 0
        if docs is not None:  # the edited documents' passages that are no more
            deleted = conn.execute(*edits.vanished_statement(col.layout, docs.keys, docs.tenants, rows.keys)).rowcount
    return written[0], written[1], deleted


def following_catalog(col: Searchable, write: Callable[[], T]) -> T:
    """Run a write; when the collection's definition changed under the handle, run it again with the new one.

    The write's own check (first in its transaction) finds a change made before it; one
    committed while it ran makes a statement fail (a refused write to a switched-out
    table): the row is read again, and when it changed the write runs again.
    """
    for _ in (1, 2):
        try:
            return write()
        except CatalogChanged:
            pass
        except Exception as exc:
            if not rereads(exc) or not col._reload():
                raise
    return write()


def embed_missing(col: Searchable, rows: ingest.Rows, *, defer: bool) -> tuple[list[np.ndarray | None], int, int]:
    """The batch's vectors: stored ones reused by content hash, the rest embedded (or left None with ``defer``)."""
    hashes = rows.hashes()
    with col.db.connection() as conn:
        known: dict[bytes, np.ndarray | None] = dict(ingest.stored_vectors(conn, col.layout, hashes))
    todo = ingest.to_embed(rows, hashes, known)
    if todo and not defer:
        known.update(zip(todo.keys(), col.embedder.embed(list(todo.values())), strict=True))
    vectors = [known.get(h) for h in hashes]
    return vectors, 0 if defer else len(todo), len(hashes) - len(todo)


def add_many(
    col: Searchable,
    records: Iterable[Mapping[str, Any]],
    *,
    batch_size: int,
    progress: bool,
    total: int | None,
    bulk: bool | None,
    defer: bool,
    autotune: bool,
) -> AddResult:
    """:meth:`Collection.add_many`: batches, the bulk-load index build, then autotune."""
    col._reload()  # the table the catalog names now: its index is dropped and built again
    if bulk is None:
        found = doctor.diagnose(col)
        # empty, or a bulk load killed before it built the index (no other one running): (re)build it at the end
        bulk = is_empty(col) or not (found.valid or found.loading)
    if not bulk:
        doctor.ensure_index(col)  # a leftover of a killed build, or bulk=False given on a missing index
    stream = partial(add_stream, col, records, batch_size=batch_size, progress=progress, total=total, defer=defer)
    if not bulk:
        result = stream(bulk=False)
    else:
        with index_deferred(col, progress=progress):
            result = stream(bulk=True)
    tuned = None
    if autotune and result.inserted and not defer:
        tuned = tune.autotune(col, after_bulk_load=bulk)
        if tuned is not None:
            col._reload()
            if progress:
                tqdm.write(f"autotune: {tuned}")
    return replace(result, tuned=tuned)


def is_empty(col: Searchable) -> bool:
    with col.db.connection() as conn:
        return conn.execute(ingest.empty_statement(col.layout)).fetchone()[0]  # type: ignore[index]


@contextmanager
def index_deferred(col: Searchable, *, progress: bool) -> Iterator[None]:
    """Drop the HNSW index for a load and build it once afterwards, even if the load fails.

    The load holds :func:`semsearch.doctor.bulk_lock` meanwhile: the missing index is no crash to repair.
    """
    with doctor.bulk_lock(col):
        with col.db.connection() as conn:
            conn.execute(ingest.drop_index_statement(col.layout))
        try:
            yield
        finally:
            # the table was just loaded: a plain (parallel) build, which blocks writes but not searches
            col.rebuild_index(progress=progress, concurrently=False)


def add_stream(
    col: Searchable,
    records: Iterable[Mapping[str, Any]],
    *,
    batch_size: int,
    progress: bool,
    total: int | None,
    defer: bool = False,
    bulk: bool = False,
) -> AddResult:
    """Add ``records`` in batches of ``batch_size``, one transaction each; the summed result."""
    totals = AddResult(0, 0, 0)
    unit = "rows" if col.info.passages is None else "documents"
    bar = tqdm(total=total, unit=unit, disable=not progress, desc=f"ingest {col.name}")
    batch: list[Mapping[str, Any]] = []

    def flush() -> None:
        nonlocal totals
        got = add(col, *ingest.batch_columns(batch), defer=defer, copy_first=bulk)
        totals += got
        bar.update(len(batch))
        batch.clear()

    try:
        for rec in records:
            batch.append(rec)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        bar.close()
    return totals


def delete(col: Searchable, statement: Callable[[Layout], tuple[Any, Any]]) -> int:
    """:meth:`Collection.delete`: the rows ``statement(layout)`` (a statement and its parameters) deletes; how many."""

    def run() -> int:
        # one round trip for the check and the delete; a changed definition rolls the delete back
        with col.db.connection() as conn, conn.pipeline(), conn.transaction():
            found = conn.execute(catalog.CHECK, [col.name])
            deleted = conn.execute(*statement(col.layout))
            col._check(found.fetchone())
            # a documents' delete counts them in its one row (see semsearch.passages.edits.deletion)
            return int(deleted.fetchone()[0]) if deleted.description else deleted.rowcount  # type: ignore[index]

    return following_catalog(col, run)
