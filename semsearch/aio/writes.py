"""A collection's write path: check, embed only what is new, write each batch in one transaction.

``add``, ``add_many`` and ``delete`` of both collections come here; the statements are
:mod:`semsearch.ingest`'s. Each write transaction first checks the handle's catalog row; a
write that meets a changed definition (``migrate-model`` switched the table, the table was
distributed, ...) takes the new row and runs again in full: its vectors must be the live
model's, its statements the new layout's (see :mod:`semsearch.handle`).
Written once, for asyncio, in ``semsearch/aio/writes.py``;
``semsearch/writes.py`` is generated from it (``tools/make_sync.py``).

Example::

    await add(col, ["a"], ["cats purr"], None, None, None, defer=False, copy_first=False)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import psycopg
from tqdm import tqdm

from semsearch import autoplan, bm25, catalog, changes, ingest, tune
from semsearch.aio import repairs, staging
from semsearch.aio.faces import Stored
from semsearch.aio.flavour import Records, aembed, offload, records_of
from semsearch.handle import CatalogChanged, rereads
from semsearch.layout import Layout
from semsearch.passages import edits
from semsearch.results import AddResult
from semsearch.vectors import check_vectors

T = TypeVar("T")


async def add(
    col: Stored,
    keys: Sequence[str | int],
    contents: Sequence[str],
    embeddings: Any,
    metadata: Sequence[Mapping[str, Any] | None] | None,
    tenant: str | Sequence[str | None] | None,
    *,
    defer: bool,
    copy_first: bool,
) -> AddResult:
    """``Collection.add``; ``copy_first`` (bulk loads) tries a plain COPY of new keys before the upsert.

    In a collection with passages each text is a document: its passage rows are written and
    its vanished passages deleted in the same transaction (see :mod:`semsearch.passages.edits`).
    """
    rows = ingest.check_rows(keys, contents, metadata, tenant)
    if not rows.keys:
        return AddResult(0, 0, 0)
    docs = edits.prepare(rows, col.splitter, embeddings, model=col.info.model, name=col.name)
    if docs is not None:
        rows = docs.rows

    async def embed_and_write() -> AddResult:
        # run again in full after a change of definition: the vectors must be the live model's
        ingest.check_tenants(rows, col.info)
        embedded = reused = 0
        vectors: Sequence[np.ndarray | None]
        if embeddings is not None:
            vectors = list(check_vectors(embeddings, n=len(rows.keys), dims=col.dims))
        else:
            vectors, embedded, reused = await embed_missing(col, rows, defer=defer)
        written = await write(col, rows, vectors, copy_first=copy_first, docs=docs)
        return edits.counted(rows, docs, written, embedded, reused)

    return await following_catalog(col, embed_and_write)


async def write(
    col: Stored,
    rows: ingest.Rows,
    vectors: Sequence[np.ndarray | None],
    *,
    copy_first: bool,
    docs: edits.Documents | None = None,
) -> tuple[int, int, int]:
    """Write one checked batch in one transaction; ``(inserted, updated, passages deleted)``."""
    async with col.db.connection() as conn, conn.transaction():
        cur = await conn.execute(catalog.CHECK, [col.name])
        col._check(await cur.fetchone())
        written: tuple[int, int] | None = None
        if copy_first:
            # the table started empty: most batches are all new keys, which COPY takes directly
            try:
                async with conn.transaction():
                    written = await staging.copy_new(conn, col.layout, rows, vectors), 0
            except (psycopg.errors.UniqueViolation, psycopg.errors.TransactionRollback):
                pass  # a key already stored, or a deadlock with a writer outside semsearch: the upsert decides
        if written is None:
            written = await staging.write(conn, col.layout, rows, vectors)
        deleted = 0
        if docs is not None:  # the edited documents' passages that are no more
            gone = await conn.execute(*edits.vanished_statement(col.layout, docs.keys, docs.tenants, rows.keys))
            deleted = gone.rowcount
    return written[0], written[1], deleted


async def following_catalog(col: Stored, write: Callable[[], Awaitable[T]]) -> T:
    """Run a write; when the collection's definition changed under the handle, run it again with the new one.

    The write's own check (first in its transaction) finds a change made before it; one
    committed while it ran makes a statement fail (a refused write to a switched-out
    table): the row is read again, and when it changed the write runs again.
    """
    for _ in (1, 2):
        try:
            return await write()
        except CatalogChanged:
            pass
        except Exception as exc:
            if not rereads(exc) or not await col._reload():
                raise
    return await write()


async def embed_missing(col: Stored, rows: ingest.Rows, *, defer: bool) -> tuple[list[np.ndarray | None], int, int]:
    """The batch's vectors: stored ones reused by content hash, the rest embedded (or left None with ``defer``)."""
    hashes = rows.hashes()
    async with col.db.connection() as conn:
        known: dict[bytes, np.ndarray | None] = dict(await staging.stored_vectors(conn, col.layout, hashes))
    todo = ingest.to_embed(rows, hashes, known)
    if todo and not defer:
        known.update(zip(todo.keys(), await aembed(col.embedder, list(todo.values())), strict=True))
    vectors = [known.get(h) for h in hashes]
    return vectors, 0 if defer else len(todo), len(hashes) - len(todo)


async def add_many(
    col: Stored,
    records: Records,
    *,
    batch_size: int,
    progress: bool,
    total: int | None,
    bulk: bool | None,
    defer: bool,
    autotune: bool,
) -> AddResult:
    """``Collection.add_many``: batches, the bulk-load index build, then the automatic plan and autotune (offloaded).

    See :mod:`semsearch.autoplan` for when a collection in automatic mode changes its plan.
    """
    await col._reload()  # the table the catalog names now: its index is dropped and built again
    size = autoplan.Size()  # counted once after the load, by the first step that asks (the plan rule or autotune)
    if bulk is None:
        found = await repairs.diagnose(col)
        # empty, or a bulk load killed before it built the index (no other one running): (re)build it at the end
        bulk = await is_empty(col) or not (found.valid or found.loading)
    if not bulk:
        await repairs.ensure_index(col)  # a leftover of a killed build, or bulk=False given on a missing index
        result = await add_stream(
            col, records, batch_size=batch_size, progress=progress, total=total, defer=defer, bulk=False
        )
    else:
        async with index_deferred(col, progress=progress, size=size):
            result = await add_stream(
                col, records, batch_size=batch_size, progress=progress, total=total, defer=defer, bulk=True
            )
        await postings_rewritten(col, progress=progress)
    tuned = None
    if autotune and result.inserted and not defer:
        # an automatic plan follows the size first: what autotune then measures is the plan searches will run
        await offload(col, autoplan.follow_size, size=size)
        tuned = await offload(col, tune.autotune, after_bulk_load=bulk, size=size)
        if tuned is not None:
            await col._reload()
            if progress:
                tqdm.write(f"autotune: {tuned}")
    return replace(result, tuned=tuned)


async def postings_rewritten(col: Stored, *, progress: bool) -> None:
    """After a bulk load, the BM25 postings key rebuilt in one pass (:func:`semsearch.bm25.rewrite_statements`).

    The load's batches left its pages half full: 27-43% of the key (bench/results/bm25_cost.md).
    Searches go on meanwhile (writes wait, as for the HNSW build before it); a distributed
    collection keeps no BM25 statistics.
    """
    names = bm25.Names(col.layout.table_name)
    tenants = col.info.tenant_setting is not None
    async with col.db.connection() as conn:
        # one try: another DDL change of the collection (a model switch, an alter) runs; the key stays as it is
        cur = await conn.execute(changes.TRY_LOCK, [col.name])
        if not (await cur.fetchone())[0]:  # type: ignore[index]
            return
        try:
            async with conn.transaction():
                cur = await conn.execute("SELECT to_regclass(%s)", [f"{names.schema}.{names.postings}"])
                if (await cur.fetchone())[0] is None:  # type: ignore[index]
                    return
                if progress:
                    tqdm.write(f"rewriting the text index of {col.name} ...")
                for stmt in bm25.rewrite_statements(col.layout.table_name, tenants=tenants):
                    await conn.execute(stmt)
        finally:
            await conn.execute(changes.UNLOCK, [col.name])


async def is_empty(col: Stored) -> bool:
    async with col.db.connection() as conn:
        cur = await conn.execute(ingest.empty_statement(col.layout))
        return (await cur.fetchone())[0]  # type: ignore[index]


@asynccontextmanager
async def index_deferred(col: Stored, *, progress: bool, size: autoplan.Size | None = None) -> AsyncIterator[None]:
    """Drop the HNSW index for a load and build it once afterwards, even if the load fails.

    ``size``: where the plan rule's count is kept for the steps after the load.

    The load holds :func:`semsearch.repairs.bulk_lock` meanwhile: the missing index is no crash to repair.
    """
    async with repairs.bulk_lock(col):
        async with col.db.connection() as conn:
            await conn.execute(ingest.drop_index_statement(col.layout))
        try:
            yield
        finally:
            # an automatic plan is the one the loaded size asks for: one build, not the old plan's and then the new
            replanned = await offload(col, autoplan.follow_size, build=False, size=size)
            if replanned is not None and progress:
                tqdm.write(f"plan: {replanned.plan_reason}")
            # the table was just loaded: a plain (parallel) build, which blocks writes but not searches
            await col.rebuild_index(progress=progress, concurrently=False)


async def add_stream(
    col: Stored,
    records: Records,
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

    async def flush() -> None:
        nonlocal totals
        got = await add(col, *ingest.batch_columns(batch), defer=defer, copy_first=bulk)
        totals += got
        bar.update(len(batch))
        batch.clear()

    try:
        async for rec in records_of(records):
            batch.append(rec)
            if len(batch) >= batch_size:
                await flush()
        if batch:
            await flush()
    finally:
        bar.close()
    return totals


async def delete(col: Stored, statement: Callable[[Layout], tuple[Any, Any]]) -> int:
    """``Collection.delete``: the rows ``statement(layout)`` (a statement and its parameters) deletes; how many."""

    async def run() -> int:
        # one round trip for the check and the delete; a changed definition rolls the delete back
        async with col.db.connection() as conn, conn.pipeline(), conn.transaction():
            found = await conn.execute(catalog.CHECK, [col.name])
            deleted = await conn.execute(*statement(col.layout))
            col._check(await found.fetchone())
            if deleted.description is None:
                return deleted.rowcount
            row = await deleted.fetchone()  # a documents' delete counts them (semsearch.passages.edits.deletion)
            return int(row[0]) if row is not None else 0

    return await following_catalog(col, run)
