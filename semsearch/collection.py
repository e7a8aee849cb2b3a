"""A collection: one embedding space in one table; add, delete and search it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from semsearch import catalog, ingest
from semsearch import search as searching
from semsearch.catalog import CollectionInfo
from semsearch.embeddings import Embedder, embedder_for
from semsearch.errors import CollectionNotFoundError, ConfigurationError, DatabaseError, InvalidInputError
from semsearch.results import SearchResult

if TYPE_CHECKING:
    from semsearch.backfill import BackfillResult
    from semsearch.db import Database


T = TypeVar("T")


#: how long a handle trusts its catalog row before a search re-reads it (in the same round trip)
CATALOG_CHECK_SECONDS = 1.0


class Collection:
    """Rows of text with their embeddings, searchable by meaning.

    Get one from :meth:`Database.create_collection` or :meth:`Database.collection`.

    Example::

        col = db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        col.add(keys=["a", "b"], contents=["cats purr", "dogs bark"])
        col.search("kittens", k=1)[0].key     # 'a'
    """

    def __init__(self, db: Database, info: CollectionInfo, embedder: Embedder | None = None) -> None:
        self.db = db
        self.info = info
        self.layout = info.layout
        self._embedder = embedder
        self._own_embedder = embedder is not None
        self._checked_until = time.monotonic() + CATALOG_CHECK_SECONDS

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dims(self) -> int:
        return self.info.dims

    @property
    def embedder(self) -> Embedder:
        """The embedder for texts, made from the stored model name on first use."""
        if self._embedder is None:
            self._embedder = embedder_for(self.info.model, self.info.dims)
        if self._embedder.dims != self.dims:
            raise ConfigurationError(f"expected an embedder of {self.dims} dims, got {self._embedder.dims}")
        return self._embedder

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} {self.info.model} dims={self.dims} compression={self.info.compression}>"

    def __len__(self) -> int:
        return self.count()

    def __bool__(self) -> bool:
        # a collection is a handle: ``if col:`` must not run COUNT(*) through __len__
        return True

    def count(self) -> int:
        """Rows stored."""
        with self.db.connection() as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.layout.table)).fetchone()
        assert row is not None
        return int(row[0])

    def add(
        self,
        keys: Sequence[str | int],
        contents: Sequence[str],
        *,
        embeddings: Any = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        tenant: str | Sequence[str | None] | None = None,
        defer: bool = False,
    ) -> ingest.AddResult:
        """Insert or update rows by key, in one transaction.

        Without ``embeddings`` the collection's embedder embeds the texts, except
        those whose identical text is already stored (its vector is reused).
        ``defer=True`` calls no embedder: new texts are stored pending, invisible
        to vector search until :meth:`backfill` embeds them (cheap enough for a
        web request's commit hook).

        Example::

            col.add(keys=["m1"], contents=["Toy Story"], embeddings=vecs, metadata=[{"year": 1995}])
            col.add(keys=["t1"], contents=["invoice 42"], tenant="acme")   # one tenant for the batch
        """
        return self._add(keys, contents, embeddings, metadata, tenant, defer=defer, copy_first=False)

    def _add(
        self,
        keys: Sequence[str | int],
        contents: Sequence[str],
        embeddings: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None,
        tenant: str | Sequence[str | None] | None,
        *,
        defer: bool,
        copy_first: bool,
    ) -> ingest.AddResult:
        """:meth:`add`; ``copy_first`` (bulk loads) tries a plain COPY of new keys before the upsert."""
        rows = ingest.check_rows(keys, contents, metadata, tenant)
        if (self.info.tenant_required or self.layout.distributed_by == "tenant") and None in rows.tenants:
            why = "tenant_required" if self.info.tenant_required else "distributed by tenant"
            raise InvalidInputError(
                f"expected a tenant for every row of collection {self.name!r} ({why}), "
                f"got none at position {rows.tenants.index(None)}"
            )
        if not rows.keys:
            return ingest.AddResult(0, 0, 0)

        def embed_and_write() -> ingest.AddResult:
            # run again in full after a model switch: the vectors must be the live model's
            embedded = reused = 0
            vectors: Sequence[np.ndarray | None]
            if embeddings is not None:
                vectors = list(ingest.check_vectors(embeddings, n=len(rows.keys), dims=self.dims))
            else:
                vectors, embedded, reused = self._embed_missing(rows, defer=defer)
            inserted, updated = self._write(rows, vectors, copy_first=copy_first)
            unchanged = len(rows.keys) - inserted - updated
            return ingest.AddResult(inserted, updated, unchanged, embedded=embedded, reused=reused)

        return self._following_switches(embed_and_write)

    def _write(self, rows: ingest.Rows, vectors: Sequence[np.ndarray | None], *, copy_first: bool) -> tuple[int, int]:
        with self.db.connection() as conn, conn.transaction():
            if copy_first:
                # the table started empty: most batches are all new keys, which COPY takes directly
                try:
                    with conn.transaction():
                        return ingest.copy_new(conn, self.layout, rows, vectors), 0
                except (psycopg.errors.UniqueViolation, psycopg.errors.TransactionRollback):
                    pass  # a key already stored, or a deadlock with a writer outside semsearch: the upsert decides
            inserted, updated = ingest.write(conn, self.layout, rows, vectors)
        return inserted, updated

    def _following_switches(self, write: Callable[[], T]) -> T:
        """Run a write; if migrate-model switched this collection to another table meanwhile, reload and rerun it."""
        try:
            return write()
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            if "switched out by migrate-model" not in str(exc):
                raise
            self._reload()
            return write()

    def _embed_missing(self, rows: ingest.Rows, *, defer: bool) -> tuple[list[np.ndarray | None], int, int]:
        hashes = rows.hashes()
        with self.db.connection() as conn:
            known: dict[bytes, np.ndarray | None] = dict(ingest.stored_vectors(conn, self.layout, hashes))
        todo: dict[bytes, str] = {}
        for h, text in zip(hashes, rows.contents, strict=True):
            if h not in known and h not in todo:
                todo[h] = text
        if todo and not defer:
            known.update(zip(todo.keys(), self.embedder.embed(list(todo.values())), strict=True))
        vectors = [known.get(h) for h in hashes]
        return vectors, 0 if defer else len(todo), len(hashes) - len(todo)

    def add_many(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        progress: bool = False,
        total: int | None = None,
        bulk: bool | None = None,
        defer: bool = False,
        autotune: bool = True,
    ) -> ingest.AddResult:
        """Stream ``{"key", "content", "metadata"?, "embedding"?, "tenant"?}`` records in batches.

        Each batch is one transaction: after a failure the committed batches stay,
        and running the same input again re-embeds nothing that is stored.

        ``bulk`` builds the HNSW index once after loading instead of updating it
        row by row (several times faster; searches during the load scan exactly).
        By default it is on when the collection is empty. ``defer`` stores texts
        without embedding them (see :meth:`add`). Afterwards, a collection created with
        ``autotune=True`` (the default) of at least 1,000 rows is tuned to recall@10 >=
        0.99 after a bulk load, or when it has grown 4x since its last tune
        (:func:`semsearch.tune.autotune`; ``result.tuned`` says what it chose);
        ``autotune=False`` skips that for this call.

        Example::

            col.add_many(({"key": i, "content": t} for i, t in enumerate(texts)), progress=True)
        """
        if bulk is None:
            # empty, or a bulk load killed before it built the index: (re)build it once at the end
            bulk = self._is_empty() or not self._has_index()
        stream = partial(self._add_stream, records, batch_size=batch_size, progress=progress, total=total, defer=defer)
        if not bulk:
            result = stream(bulk=False)
        else:
            with self._index_deferred(progress=progress):
                result = stream(bulk=True)
        tuned = None
        if autotune and result.inserted and not defer:
            from semsearch.tune import autotune as run_autotune

            tuned = run_autotune(self, after_bulk_load=bulk)
            if tuned is not None:
                self.info = tuned_info = self.db.collection(self.name).info
                self.layout = tuned_info.layout
                if progress:
                    tqdm.write(f"autotune: {tuned}")
        return replace(result, tuned=tuned)

    def _is_empty(self) -> bool:
        with self.db.connection() as conn:
            return conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(self.layout.table)).fetchone()[0]  # type: ignore[index]

    def _has_index(self) -> bool:
        with self.db.connection() as conn:
            found = conn.execute("SELECT to_regclass(%s)", [f"semsearch.{self.layout.table_name}_hnsw"]).fetchone()
        return found is not None and found[0] is not None

    @contextmanager
    def _index_deferred(self, *, progress: bool) -> Iterator[None]:
        """Drop the HNSW index for a load and build it once afterwards, even if the load fails."""
        with self.db.connection() as conn:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(self.layout.index_name("hnsw", schema=True)))
        try:
            yield
        finally:
            # the table was just loaded: a plain (parallel) build, which blocks writes but not searches
            self.rebuild_index(progress=progress, concurrently=False)

    def rebuild_index(self, *, progress: bool = False, concurrently: bool = True) -> float:
        """(Re)build the HNSW index on the compressed copy next to the live one and swap it in; return seconds.

        Searches go on during the build (and writes too with ``concurrently``); see
        :meth:`Database.replace_index`.

        Example::

            col.rebuild_index()
        """
        started = time.perf_counter()
        if progress:
            tqdm.write(f"building the hnsw index of {self.name} ...")
        self.db.replace_index(self.info, concurrently=concurrently)
        return time.perf_counter() - started

    def _add_stream(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        batch_size: int,
        progress: bool,
        total: int | None,
        defer: bool = False,
        bulk: bool = False,
    ) -> ingest.AddResult:
        totals = ingest.AddResult(0, 0, 0)
        bar = tqdm(total=total, unit="rows", disable=not progress, desc=f"ingest {self.name}")
        batch: list[Mapping[str, Any]] = []

        def flush() -> None:
            nonlocal totals
            has_vec = [r.get("embedding") is not None for r in batch]
            if any(has_vec) and not all(has_vec):
                raise InvalidInputError("expected every record of a batch to have an embedding, or none")
            got = self._add(
                [r.get("key") for r in batch],  # type: ignore[misc]
                [r.get("content") for r in batch],  # type: ignore[misc]
                np.asarray([r["embedding"] for r in batch]) if all(has_vec) else None,
                [r.get("metadata") for r in batch],
                [r.get("tenant") for r in batch],
                defer=defer,
                copy_first=bulk,
            )
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

    def pending(self) -> int:
        """Rows stored with ``defer=True`` that still wait for an embedding (not those in quarantine)."""
        from semsearch.backfill import pending_stats

        return pending_stats(self)[0]

    def quarantined(self) -> list[tuple[str, str]]:
        """``(key, reason)`` of rows whose text the embedding provider refused; backfill skips them.

        A row leaves quarantine when its text changes, or when
        ``backfill(retry_quarantined=True)`` embeds it.

        Example::

            col.quarantined()    # [('doc-17', "... refused with status 400 (not retried): the api said ...")]
        """
        from semsearch.backfill import quarantined

        return quarantined(self)

    def backfill(
        self,
        *,
        batch_size: int = 256,
        progress: bool = False,
        dry_run: bool = False,
        limit: int | None = None,
        retry_quarantined: bool = False,
    ) -> BackfillResult:
        """Embed pending rows in resumable batches (see :mod:`semsearch.backfill`).

        Rows whose text the provider refuses go to quarantine (:meth:`quarantined`)
        instead of failing every run; ``retry_quarantined=True`` tries them again.

        Example::

            col.backfill(dry_run=True).est_cost_usd    # before paying for it
            col.backfill(progress=True)
        """
        from semsearch.backfill import backfill

        return backfill(
            self,
            batch_size=batch_size,
            progress=progress,
            dry_run=dry_run,
            limit=limit,
            retry_quarantined=retry_quarantined,
        )

    def delete(self, keys: str | int | Iterable[str | int]) -> int:
        """Delete rows by key (one key or a list of keys); return how many existed.

        Example::

            col.delete("doc1")            # one key, not the keys "d", "o", "c", "1"
            col.delete(["doc1", 42])
        """
        keys_s = ingest.check_keys(keys)
        # rows are locked in the same order (key, byte-wise) as add() locks them, so a delete
        # and an upsert of overlapping keys wait for each other instead of deadlocking
        stmt = sql.SQL(
            'DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE key = ANY(%s) ORDER BY key COLLATE "C" FOR UPDATE)'
        )
        if self.layout.distributed_by is not None:
            # Citus locks rows across shards only in a router query: each shard deletes its own keys
            stmt = sql.SQL("DELETE FROM {t} WHERE key = ANY(%s)")

        def delete() -> int:
            with self.db.connection() as conn:
                return conn.execute(stmt.format(t=self.layout.table), [keys_s]).rowcount

        return self._following_switches(delete)

    def search(
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
        fresh: bool = False,
    ) -> SearchResult:
        """The ``k`` rows best matching a text or a vector, best first, in one SQL statement.

        ``mode="vector"`` (default): a coarse HNSW pass over the compressed copy
        fetches ``k * oversample`` candidates that the full vectors rescore exactly;
        scores are cosine similarities. ``exact=True`` scans every row.
        ``mode="text"``: rows with any of the query's words, scored by BM25 (over the
        collection's own statistics). ``mode="hybrid"``: both lists fused in SQL, by
        ``fusion="blend"`` (weighted scores scaled to [0, 1] per list) or ``"rrf"``
        (weighted reciprocal ranks); unset, the setting :meth:`tune_hybrid` stored, else
        blend with weights 0.3 (vector) / 0.7 (text). :class:`~semsearch.Hit` says what
        ``score`` means in each mode.
        ``where`` filters on metadata (see :mod:`semsearch.filters`); ``tenant``
        keeps one tenant's rows. Filtered searches still return ``k`` rows whenever
        ``k`` rows match.
        With read replicas (``connect(replicas=...)``) a search runs on one of them and sees
        a write only once the replica has replayed it; ``fresh=True`` reads the primary.

        Example::

            col.search("a toddler movie about cats", k=5)
            col.search(vector=q, k=5, exact=True, where={"year": {"$gte": 2000}})
            col.search("sleepy hollow", mode="hybrid", tenant="acme")
        """
        args = dict(
            query=query, vector=vector, k=k, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant,
        )  # fmt: skip
        request = self._request(**args)
        request = searching.with_fusion(request, fusion, vector_weight, text_weight)
        # one server for the whole search: its catalog check and a reload read where its statement runs
        with self.db.router.pinned(fresh=fresh):
            for attempt in (1, 2, 3):
                p = searching.plan(self.layout, self.name, self.info.oversample, self.info.ef_search, request)
                # is this handle's catalog row still the name's? Checked in the same round trip: always
                # when the SQL functions (which go by name) run, else at most once a second
                check = self.name if (p.fallback is None or time.monotonic() > self._checked_until) else None
                try:
                    rows, table = self.db.read(partial(searching.execute, p=p, check=check), fresh=fresh)
                except psycopg.OperationalError as exc:
                    # connections the server closed (a restart, a failover, an idle timeout): a search
                    # only reads, so drop the dead ones from the pool and try once more
                    if attempt > 1:
                        raise DatabaseError(
                            f"expected the server to answer the search, got: {str(exc).strip()}"
                        ) from None
                    self.db.pool.check()
                    continue
                if check is None or table == self.info.table_name:
                    if check is not None:
                        self._checked_until = time.monotonic() + CATALOG_CHECK_SECONDS
                    break
                if table is None:
                    raise CollectionNotFoundError(f"expected an existing collection, got {self.name!r} dropped")
                # migrate-model switched the name to another table (and maybe model): follow it
                self._reload(read=True)
                request = self._request(**args)
                request = searching.with_fusion(request, fusion, vector_weight, text_weight)
        return searching.hits(rows, request)

    def explain(
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
        settings: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> searching.Explained:
        """The SQL a search runs, its settings and ``EXPLAIN (ANALYZE, BUFFERS)`` of it (nothing is changed).

        ``settings`` adds ``SET LOCAL`` planner settings for this explain only, e.g.
        ``{"enable_seqscan": "off"}`` to see whether the index *can* serve the query.
        It runs where the search would (a read replica, or the primary with ``fresh=True``).

        Example::

            print(col.explain(vector=q, k=10))     # look for "Index Scan using col_movies_hnsw"
            col.explain("jet engines", mode="text").plan
        """
        if mode == "hybrid":
            raise InvalidInputError("expected mode 'vector' or 'text' to explain, got 'hybrid' (explain each side)")
        args = dict(
            query=query, vector=vector, k=k, mode=mode, oversample=oversample, ef_search=ef_search, exact=exact,
            where=where, tenant=tenant,
        )  # fmt: skip
        request = self._request(**args)

        def run(conn: psycopg.Connection) -> searching.Explained:
            info = self.info
            return searching.explain(conn, self.layout, info.oversample, info.ef_search, request, extra=settings or {})

        return self.db.read(run, fresh=fresh)

    def _request(self, **search: Any) -> searching.Request:
        """Check a search's arguments (before any round trip) and embed its query text if needed."""
        return searching.make_request(
            dims=self.dims,
            name=self.name,
            tenant_required=self.info.tenant_required,
            embed=lambda text: self.embedder.embed([text])[0],
            **search,
        )

    def _reload(self, *, read: bool = False) -> None:
        """Re-read the catalog row (``read``: where searches read); an embedder made from the old model is dropped."""
        info = self.db.read(partial(catalog.read, name=self.name)) if read else self.db.collection(self.name).info
        changed = (info.model, info.dims) != (self.info.model, self.dims)
        if self._embedder is not None and changed and not self._own_embedder:
            self._embedder = None
        self.info, self.layout = info, info.layout
        self._checked_until = time.monotonic() + CATALOG_CHECK_SECONDS

    def evaluate(
        self,
        queries: Any = None,
        *,
        sample: int | None = None,
        k: int = 10,
        qrels: Any = None,
        oversample: float | None = None,
        ef_search: int | None = None,
        repeat: int = 3,
        seed: int = 0,
        measure_build: bool = False,
    ) -> EvalReport:
        """Measure recall@k against exact search, latency and size.

        See :func:`semsearch.evaluate.evaluate` for the arguments.

        Example::

            print(col.evaluate(sample=200))                   # recall, p50/p95 ms, qps, sizes
            col.evaluate(["what is lift?"], qrels="qrels.trec").ndcg_at_10
        """
        from semsearch.evaluate import evaluate

        return evaluate(
            self,
            queries,
            sample=sample,
            k=k,
            qrels=qrels,
            oversample=oversample,
            ef_search=ef_search,
            repeat=repeat,
            seed=seed,
            measure_build=measure_build,
        )

    def sweep(
        self,
        queries: Any = None,
        *,
        sample: int | None = None,
        oversamples: Sequence[float] = (1, 2, 4, 8, 16, 32),
        k: int = 10,
        ef_search: int | None = None,
        repeat: int = 3,
        seed: int = 0,
    ) -> list[EvalReport]:
        """Recall and latency at each oversampling factor; see :func:`semsearch.evaluate.sweep`.

        Example::

            from semsearch.evaluate import plot_sweep
            plot_sweep(col.sweep(sample=200, oversamples=[1, 2, 4, 8]), "recall.png")
        """
        from semsearch.evaluate import sweep

        return sweep(
            self, queries, sample=sample, oversamples=oversamples, k=k, ef_search=ef_search, repeat=repeat, seed=seed
        )

    def tune_hybrid(self, queries: Any, qrels: Any) -> HybridTuneResult:
        """Pick the hybrid fusion and weights with the best nDCG@10 on judged queries and store them.

        See :func:`semsearch.fusion.tune_hybrid`; later hybrid searches (and
        ``semsearch.hybrid_search()``) use the stored setting.

        Example::

            col.tune_hybrid(queries, "cranqrel").best      # FusionPoint('blend', 0.35, 0.65, 0.41)
        """
        from semsearch.fusion import tune_hybrid

        return tune_hybrid(self, queries, qrels)

    def tune(
        self,
        *,
        target_recall: float = 0.99,
        k: int = 10,
        sample: int = 200,
        queries: Any = None,
        max_oversample: float = 64.0,
        seed: int = 0,
    ) -> TuneResult:
        """Find and store the smallest oversampling reaching ``target_recall``.

        Searches that give no ``oversample=`` / ``ef_search=`` use the tuned values;
        see :func:`semsearch.tune.tune` for how it searches.

        Example::

            result = col.tune(target_recall=0.99, k=10)
            result.reached, result.oversample, col.info.oversample   # True, 3.2, 3.2
        """
        from semsearch.tune import tune

        return tune(
            self,
            target_recall=target_recall,
            k=k,
            sample=sample,
            queries=queries,
            max_oversample=max_oversample,
            seed=seed,
        )


# for annotations only: the methods import evaluate / tune when called, not with every collection
if TYPE_CHECKING:
    from semsearch.evaluate import EvalReport
    from semsearch.fusion import HybridTuneResult
    from semsearch.tune import TuneResult
