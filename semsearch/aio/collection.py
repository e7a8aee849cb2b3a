"""An async collection: add, delete, count and search it on psycopg's ``AsyncConnection``.

Each method checks its arguments with the sync API's checks (:mod:`semsearch.ingest`,
:mod:`semsearch.searching`) and sends the same composed statements; only embedding and
the driver calls are awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import psycopg

from semsearch import catalog, changes, doctor, guards, ingest, paging, searching, stored
from semsearch.aio import writes
from semsearch.aio.faces import Connections
from semsearch.aio.lookups import AsyncLookups
from semsearch.aio.pending import awaitable
from semsearch.aio.search import execute
from semsearch.catalog import CollectionInfo
from semsearch.doctor import DoctorReport
from semsearch.embeddings import Embedder, aembed
from semsearch.errors import InvalidInputError, PermissionDeniedError
from semsearch.handle import CatalogChanged, Handle, rereads
from semsearch.passages import edits, grouping
from semsearch.results import AddResult, SearchResult
from semsearch.vectors import check_vectors

T = TypeVar("T")


class AsyncCollection(Handle, AsyncLookups):
    """Rows of text with their embeddings, searchable by meaning, for asyncio.

    Get one from :meth:`AsyncDatabase.create_collection` or :meth:`AsyncDatabase.collection`;
    its methods take the arguments of :class:`semsearch.Collection`'s and return the same.

    Example::

        col = await db.create_collection("docs", model="local", dims=256)
        await col.add(keys=["a", "b"], contents=["cats purr", "dogs bark"])
        (await col.search("kittens", k=1))[0].key     # 'a'
    """

    def __init__(
        self, db: Connections, info: CollectionInfo, embedder: Embedder | None = None, *, passages: Any = None
    ) -> None:
        super().__init__(info, embedder, passages)
        self.db = db

    @awaitable
    async def count(self, *, where: Mapping[str, Any] | None = None, tenant: str | None = None) -> int:
        """Rows stored; ``where`` and ``tenant`` count those a filter keeps (see :meth:`semsearch.Collection.count`).

        Example::

            await col.count(where={"year": {"$gte": 2000}})
        """
        for attempt in (1, 2):
            stmt, params = stored.count_statement(
                self.layout, where=where, tenant=tenant, documents=self.info.passages is not None
            )
            try:  # the catalog row is checked in the same round trip, as searches do
                async with self.db.connection() as conn, conn.pipeline():
                    found = await conn.execute(guards.CHECK, [self.name])
                    row = await (await conn.execute(stmt, params)).fetchone()
                    checked = guards.checked(await found.fetchone())
            except psycopg.Error as exc:
                if attempt > 1 or not rereads(exc) or not await self._reload():
                    raise
                continue
            if self._answered(self.name, checked):  # the catalog row and the index's state, as a search's check
                break  # else the definition changed (a model switch): count the live table
        assert row is not None
        return int(row[0])

    @awaitable
    async def add(
        self,
        keys: Sequence[str | int],
        contents: Sequence[str],
        *,
        embeddings: Any = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        tenant: str | Sequence[str | None] | None = None,
        defer: bool = False,
    ) -> AddResult:
        """Insert or update rows by key, in one transaction (see :meth:`semsearch.Collection.add`).

        Example::

            await col.add(keys=["m1"], contents=["Toy Story"], metadata=[{"year": 1995}])
        """
        await self._ensure_index()
        return await self._add(keys, contents, embeddings, metadata, tenant, defer=defer, copy_first=False)

    async def _add(
        self,
        keys: Sequence[str | int],
        contents: Sequence[str],
        embeddings: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None,
        tenant: str | Sequence[str | None] | None,
        *,
        defer: bool,
        copy_first: bool,
    ) -> AddResult:
        rows = ingest.check_rows(keys, contents, metadata, tenant)
        if not rows.keys:
            return AddResult(0, 0, 0)
        docs = edits.prepare(rows, self.splitter, embeddings, model=self.info.model, name=self.name)
        if docs is not None:  # documents, written as their passages (see semsearch.writes.add)
            rows = docs.rows

        async def embed_and_write() -> AddResult:
            # run again in full after a change of definition: the vectors must be the live model's
            ingest.check_tenants(rows, self.info)
            embedded = reused = 0
            vectors: Sequence[np.ndarray | None]
            if embeddings is not None:
                vectors = list(check_vectors(embeddings, n=len(rows.keys), dims=self.dims))
            else:
                vectors, embedded, reused = await self._embed_missing(rows, defer=defer)
            written = await self._write(rows, vectors, copy_first=copy_first, docs=docs)
            return edits.counted(rows, docs, written, embedded, reused)

        return await self._following_catalog(embed_and_write)

    async def _write(
        self,
        rows: ingest.Rows,
        vectors: Sequence[np.ndarray | None],
        *,
        copy_first: bool,
        docs: edits.Documents | None = None,
    ) -> tuple[int, int, int]:
        """See :func:`semsearch.writes.write`: ``(inserted, updated, passages deleted)``."""
        async with self.db.connection() as conn, conn.transaction():
            self._check(await (await conn.execute(catalog.CHECK, [self.name])).fetchone())
            written: tuple[int, int] | None = None
            if copy_first:
                # the table started empty: most batches are all new keys, which COPY takes directly
                try:
                    async with conn.transaction():
                        written = await writes.copy_new(conn, self.layout, rows, vectors), 0
                except (psycopg.errors.UniqueViolation, psycopg.errors.TransactionRollback):
                    pass  # a key already stored, or a deadlock with a writer outside semsearch: the upsert decides
            if written is None:
                written = await writes.write(conn, self.layout, rows, vectors)
            deleted = 0
            if docs is not None:  # the edited documents' passages that are no more
                gone = edits.vanished_statement(self.layout, docs.keys, docs.tenants, rows.keys)
                deleted = (await conn.execute(*gone)).rowcount
        return written[0], written[1], deleted

    async def _following_catalog(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a write; when the definition changed under the handle, run it again with the new one.

        See :func:`semsearch.writes.following_catalog`.
        """
        for _ in (1, 2):
            try:
                return await write()
            except CatalogChanged:
                pass
            except Exception as exc:
                if not rereads(exc) or not await self._reload():
                    raise
        return await write()

    async def _embed_missing(self, rows: ingest.Rows, *, defer: bool) -> tuple[list[np.ndarray | None], int, int]:
        hashes = rows.hashes()
        async with self.db.connection() as conn:
            known: dict[bytes, np.ndarray | None] = dict(await writes.stored_vectors(conn, self.layout, hashes))
        todo = ingest.to_embed(rows, hashes, known)
        if todo and not defer:
            known.update(zip(todo.keys(), await aembed(self.embedder, list(todo.values())), strict=True))
        vectors = [known.get(h) for h in hashes]
        return vectors, 0 if defer else len(todo), len(hashes) - len(todo)

    @awaitable
    async def add_many(
        self,
        records: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        bulk: bool | None = None,
        defer: bool = False,
        autotune: bool = True,
    ) -> AddResult:
        """Stream records (an iterable or an async iterable) in batches; see :meth:`semsearch.Collection.add_many`.

        Each batch is one transaction. ``bulk`` (default: when the collection is empty)
        builds the HNSW index once after the load. The automatic tuning after a load runs
        :func:`semsearch.tune.autotune` (the sync tuner: many exact searches) in a worker thread.

        Example::

            await col.add_many({"key": i, "content": t} for i, t in enumerate(texts))
        """
        await self._reload()  # the table the catalog names now: its index is dropped and built again
        if bulk is None:
            found = await self._diagnose()
            async with self.db.connection() as conn:
                empty = (await (await conn.execute(ingest.empty_statement(self.layout))).fetchone())[0]  # type: ignore[index]
            # empty, or a bulk load killed before it built the index (no other one running): (re)build it at the end
            bulk = bool(empty or not (found.valid or found.loading))
        if not bulk:
            await self._ensure_index()
            result = await self._add_stream(records, batch_size=batch_size, defer=defer, bulk=False)
        else:
            # the load's mark (see semsearch.doctor.bulk_lock): its missing index is no crash to repair
            async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as lock:
                await lock.execute(doctor.BULK_LOCK, [self.name])
                async with self.db.connection() as conn:
                    await conn.execute(ingest.drop_index_statement(self.layout))
                try:
                    result = await self._add_stream(records, batch_size=batch_size, defer=defer, bulk=True)
                finally:
                    await self.db.rebuild_index(self.info)
        tuned = None
        if autotune and result.inserted and not defer:
            tuned = await asyncio.to_thread(_autotune, self.db.url, self.name, bulk)
            if tuned is not None:
                await self._reload()
        return replace(result, tuned=tuned)

    async def _add_stream(
        self,
        records: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        batch_size: int,
        defer: bool,
        bulk: bool,
    ) -> AddResult:
        totals = AddResult(0, 0, 0)
        batch: list[Mapping[str, Any]] = []

        async def flush() -> None:
            nonlocal totals
            totals += await self._add(*ingest.batch_columns(batch), defer=defer, copy_first=bulk)
            batch.clear()

        if isinstance(records, AsyncIterable):
            async for rec in records:
                batch.append(rec)
                if len(batch) >= batch_size:
                    await flush()
        else:
            for rec in records:
                batch.append(rec)
                if len(batch) >= batch_size:
                    await flush()
        if batch:
            await flush()
        return totals

    @awaitable
    async def delete(
        self,
        keys: str | int | Iterable[str | int] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        all_rows: bool = False,
    ) -> int:
        """Delete rows by key, or every row a filter keeps; return how many (see :meth:`semsearch.Collection.delete`).

        Example::

            await col.delete(["doc1", 42])
            await col.delete(where={"year": {"$lt": 1990}})
        """
        statement = stored.deletion(keys, where=where, tenant=tenant, all_rows=all_rows)
        if self.info.passages is not None and keys is not None and where is None and not all_rows:
            statement = edits.deletion(keys, tenant)  # documents: all their passages

        async def delete() -> int:
            # one round trip for the check and the delete; a changed definition rolls the delete back
            async with self.db.connection() as conn, conn.pipeline(), conn.transaction():
                found = await conn.execute(catalog.CHECK, [self.name])
                deleted = await conn.execute(*statement(self.layout))
                self._check(await found.fetchone())
                # a documents' delete counts them in its one row (see semsearch.passages.edits.deletion)
                return int((await deleted.fetchone())[0]) if deleted.description else deleted.rowcount  # type: ignore[index]

        return await self._following_catalog(delete)

    @awaitable
    async def search(
        self,
        query: str | None = None,
        *,
        vector: Any = None,
        k: int = 10,
        mode: str = "vector",
        oversample: float | None = None,
        ef_search: int | None = None,
        exact: bool = False,
        where: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        fusion: str | None = None,
        vector_weight: float | None = None,
        text_weight: float | None = None,
        offset: int = 0,
        score_threshold: float | None = None,
        passages: bool = False,
    ) -> SearchResult:
        """The ``k`` rows best matching a text or a vector, in one round trip (see :meth:`semsearch.Collection.search`).

        Example::

            await col.search("a toddler movie about cats", k=5)
            await col.search("sleepy hollow", mode="hybrid", tenant="acme", where={"year": {"$gte": 2000}})
            await col.search("cats", k=10, offset=10, score_threshold=0.3)
        """
        args = dict(
            query=query, vector=vector, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant,
        )  # fmt: skip
        page = paging.check_page(k, offset, score_threshold)
        fused = (fusion, vector_weight, text_weight)
        if self.info.passages is None:
            if passages:
                raise InvalidInputError(f"expected a collection with passages for passages=True, got {self.name!r}")
            return await self._search(page, fused, **args)
        # documents: passages are searched, more of them until k distinct documents are found
        want = page.k + page.offset
        fetch = want if passages else grouping.first_fetch(want)
        while True:
            found = await self._search(paging.Page(k=fetch), fused, **args)
            more = grouping.widen(fetch, got=len(found), distinct=grouping.distinct(found), want=want)
            if passages or more is None:
                break
            fetch = more
        if passages:
            result = grouping.passage_hits(page.cut(found), k=page.k)
        else:
            result = grouping.documents(found, k=page.k, offset=page.offset, score_threshold=page.score_threshold)
        if mode in ("text", "hybrid") and result.hits and query:
            stmt, params = grouping.snippet_statement(self.info.text_config, query, [h.content for h in result])
            async with self.db.connection() as conn:
                lit = await (await conn.execute(stmt, params)).fetchall()
            result = grouping.with_snippets(result, [r[0] for r in lit])
        return result

    async def _search(
        self, page: paging.Page, fused: tuple[str | None, float | None, float | None], **search: Any
    ) -> SearchResult:
        """One search for a page's rows, following a migrate-model switch."""
        fusion, vector_weight, text_weight = fused
        args = {**search, "k": page.fetch}
        request = searching.with_fusion(await self._request(**args), fusion, vector_weight, text_weight)
        for attempt in (1, 2, 3):
            info, timeout = self.info, self.db.search_timeout
            p = searching.plan(self.layout, self.name, info.oversample, info.ef_search, request, timeout=timeout)
            check = searching.check_for(p, self.name, due=self._check_due)
            try:
                async with self.db.connection() as conn:
                    rows, found = await execute(conn, p, check=check)
            except psycopg.errors.QueryCanceled as exc:
                raise guards.timed_out(exc, timeout) from None
            except psycopg.OperationalError as exc:
                # connections the server closed: drop the dead ones from the pool and try once more
                if attempt > 1:
                    raise guards.unanswered(exc) from None
                await self.db.revive()  # the server answers again (or a DatabaseError now, not after a timeout)
                continue
            except psycopg.errors.UndefinedObject:
                # the SQL functions' "unknown collection": dropped since this handle read it
                raise guards.dropped(self.name) from None
            except psycopg.Error as exc:
                # made from a row changed meanwhile (a query vector of a switched model's dims)?
                if attempt > 2 or not rereads(exc) or not await self._reload():
                    raise
            else:
                if self._answered(check, found):
                    break
            # the definition changed (migrate-model, alter, distribute): search again with the new one
            request = searching.with_fusion(await self._request(**args), fusion, vector_weight, text_weight)
        if guards.asks_for_tenants(info, request.tenant, rows):
            async with self.db.connection() as conn:
                guards.check_tenants(
                    self.name, request.tenant, await (await conn.execute(guards.any_tenant(info))).fetchone()
                )
        result = page.cut(searching.hits(rows, request, indexed=self._indexed))
        if result.unindexed:
            guards.warn_unindexed(self.name)
        return result

    async def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check the HNSW index for what a killed load or build leaves; ``repair`` fixes it.

        As :meth:`semsearch.Collection.doctor`, except that a missing or invalid index is
        built in one transaction (:meth:`AsyncDatabase.rebuild_index`: it blocks writes, not searches).

        Example::

            print(await col.doctor(repair=True))    # docs: healthy - repaired: built col_docs_hnsw
        """
        found = await self._diagnose()
        if not repair:
            return found
        try:
            return await self._repair(found)
        except (psycopg.errors.InsufficientPrivilege, PermissionDeniedError) as exc:
            raise doctor.not_owner(found, exc) from None

    async def _diagnose(self) -> DoctorReport:
        await self._reload()  # judged by the catalog's row as it is now (see doctor.diagnose)
        indexes_step, busy_step = doctor.inspect_steps(self.layout, self.name)
        async with self.db.connection() as conn:
            indexes = await (await conn.execute(*indexes_step)).fetchall()
            busy = await (await conn.execute(*busy_step)).fetchone()
        found = doctor.report(self.layout, self.name, indexes, busy)  # type: ignore[arg-type]
        self._indexed = found.valid  # what this handle's searches say until their next check
        return found

    async def _repair(self, found: DoctorReport) -> DoctorReport:
        """:func:`semsearch.doctor.repair`, awaited."""
        if found.healthy or found.busy:
            return found
        if not found.valid:
            await self.db.rebuild_index(self.info)
            return replace(await self._diagnose(), repaired=(f"built {found.table}_hnsw",))
        async with self.db.connection() as conn:
            # one try: a session holding the DDL lock is building, and its _hnsw_next is no leftover
            if not (await (await conn.execute(changes.TRY_LOCK, [self.name])).fetchone())[0]:  # type: ignore[index]
                return replace(found, building=True)
            try:
                for stmt in doctor.drop_leftovers_steps(self.layout):
                    await conn.execute(stmt)
            finally:
                await conn.execute(changes.UNLOCK, [self.name])
        return replace(await self._diagnose(), repaired=tuple(f"dropped {n}" for n in found.leftovers))

    async def _ensure_index(self) -> None:
        """:func:`semsearch.doctor.ensure_index`, awaited."""
        if time.monotonic() < self._index_checked_until:
            return
        found = await self._diagnose()
        if not found.healthy:
            try:
                found = await self._repair(found)
            except (psycopg.errors.InsufficientPrivilege, PermissionDeniedError) as exc:
                doctor.unrepaired(found, doctor.not_owner(found, exc))
        if found.healthy:
            self._index_checked_until = time.monotonic() + doctor.CHECK_SECONDS

    async def _request(self, **search: Any) -> searching.Request:
        """The sync API's checks (before any round trip), then the query text embedded without blocking."""
        request = searching.check_request(
            dims=self.dims, name=self.name, tenant_required=self.info.tenant_required, **search
        )
        if request.mode == "text":
            return request
        given = search["vector"]
        if given is None:
            given = (await aembed(self.embedder, [search["query"]]))[0]
        return searching.with_vector(request, given, dims=self.dims)

    async def _reload(self) -> bool:
        """Re-read the catalog row; whether the definition changed (see :meth:`Handle._follow`)."""
        return self._follow(await self.db.info(self.name))


def _autotune(url: str, name: str, after_bulk_load: bool) -> Any:
    """:func:`semsearch.tune.autotune` on a short-lived sync connection (run in a worker thread)."""
    from semsearch.db import connect
    from semsearch.tune import autotune

    with connect(url, upgrade=False, max_connections=1) as db:
        return autotune(db.collection(name), after_bulk_load=after_bulk_load)
