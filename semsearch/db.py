"""Connect to Postgres (embedded or any URL) and manage collections."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from semsearch import autoplan, catalog, changes, ddl, distributed, plan_choice, server, table_sync, tenants
from semsearch.collection import Collection
from semsearch.collection_info import CollectionInfo
from semsearch.collection_settings import new_info
from semsearch.config import FROM_ENV, FromEnv, Settings, check_search_timeout
from semsearch.connections import DatabaseConnections
from semsearch.embeddings import Embedder
from semsearch.errors import ConfigurationError
from semsearch.layout import check_name
from semsearch.replicas import Router, replica_urls
from semsearch.server import Liveness


def connect(
    url: str | None = None,
    *,
    upgrade: bool | None = None,
    max_connections: int = 4,
    replicas: Sequence[str] | None = None,
    search_timeout: float | FromEnv | None = FROM_ENV,
) -> Database:
    """Open semsearch on a Postgres server.

    With no ``url`` and no ``SEMSEARCH_DATABASE_URL``, starts (or reuses) the
    embedded PostgreSQL + pgvector and installs semsearch's schema on it. On any
    other server the schema must be current (``semsearch db upgrade``) unless
    ``upgrade=True``.

    ``replicas`` (default: ``SEMSEARCH_REPLICA_URLS``, comma-separated) are streaming
    standbys of this server: searches, ``explain``, ``evaluate`` and ``sweep`` run on
    them in turn, everything else on the primary (see :mod:`semsearch.replicas`).
    ``search_timeout``: seconds one search statement may run before the server cancels it
    (:class:`~semsearch.errors.SearchTimeoutError`); default ``SEMSEARCH_SEARCH_TIMEOUT``, else 30; None: no limit.

    Example::

        db = semsearch.connect()                                  # embedded
        db = semsearch.connect("postgresql://app@db.internal/app")
        db = semsearch.connect("postgresql://app@primary/app", replicas=["postgresql://app@replica-1/app"])
    """
    urls = replica_urls(Settings.from_env().replica_urls if replicas is None else replicas)
    timeout = check_search_timeout(search_timeout)
    embedded = server.embedded_dir(url)
    url = server.prepare(url, upgrade=upgrade)
    pool = ConnectionPool(url, configure=register_vector, **server.pool_options(max_connections))
    pool.open(wait=True, timeout=30)
    router = Router(urls, max_connections=max_connections)
    return Database(url, pool, router, Liveness(url, embedded), search_timeout=timeout)


class Database(DatabaseConnections):
    """A connection pool to one Postgres and the collections in it (its connections: :class:`DatabaseConnections`).

    Example::

        with semsearch.connect() as db:
            col = db.create_collection("movies", dims=1536, compression="bit")
    """

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_collection(
        self,
        name: str,
        *,
        dims: int | None = None,
        model: str | None = None,
        embedder: Embedder | None = None,
        compression: str | None = None,
        storage: str = "vector",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        oversample: float | None = None,
        text_config: str = "english",
        autotune: bool = True,
        tenant_required: bool = False,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        distribute_by: str | None = None,
        passages: Any = None,
    ) -> Collection:
        """Create a collection (its table, HNSW index on the compressed copy, catalog row).

        ``model`` names a built-in embedder (``"local"``, ``"text-embedding-3-small"``,
        ...) or, with precomputed vectors, any label; ``embedder=`` takes any
        :class:`Embedder` instead. ``compression`` is ``bit``, ``halfvec``, ``none``,
        ``mrl:<d>`` or ``mrl-bit:<d>`` and pins the plan; without it (or with ``"auto"``) the
        plan follows the collection's size: below 1,024 dims ``halfvec`` while small, ``bit`` from
        1,000,000 rows; ``bit`` from 1,024 dims), changed online after loads, with its reason in
        ``info.plan_reason`` (see :mod:`semsearch.plan_choice` and :mod:`semsearch.autoplan`).
        ``storage="halfvec"`` keeps the full vectors at half precision. ``autotune``
        tunes the oversampling to recall@10 >= 0.99 after bulk loads and whenever the
        collection has grown 4x since (see :meth:`Collection.add_many`).
        ``tenant_required`` refuses writes and searches without ``tenant=`` (Python, CLI and
        the SQL functions; the table refuses rows without one from any writer).
        ``bm25_k1``/``bm25_b``: BM25's parameters for ``mode="text"`` and hybrid.
        ``distribute_by`` (``"key"`` or ``"tenant"``, on a Citus coordinator) shards the
        table over the workers: see :meth:`distribute_collection`.
        ``passages`` makes each added text a document split into passages: ``True`` (the
        default :class:`~semsearch.Splitter` for the model), a ``Splitter(max_tokens=, overlap=)``,
        any callable ``text -> list[str] | list[(start, end)]`` or a LangChain text splitter;
        searches then return the best ``k`` distinct documents (README, "Documents and passages").

        Example::

            db.create_collection("movies", dims=1536, compression="bit", model="text-embedding-3-small")
            db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
        """
        info = new_info(
            name,
            dims=dims,
            model=model,
            embedder=embedder,
            compression=compression,
            storage=storage,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            oversample=oversample,
            text_config=text_config,
            autotune=autotune,
            tenant_required=tenant_required,
            bm25_k1=bm25_k1,
            bm25_b=bm25_b,
            distribute_by=distribute_by,
            passages=passages,
        )
        # two creators of one name: the second waits for the lock, then finds the first one's row
        with self.connection() as conn, changes.ddl_lock(conn, name), conn.transaction():
            ddl.check_new(info, conn.execute(ddl.TABLES).fetchall())
            try:
                conn.execute(ddl.TEXT_CONFIG_CHECK, [text_config])
            except psycopg.errors.UndefinedObject as exc:
                raise ddl.unknown_text_config(text_config) from exc
            distributed.check_cluster(conn, info)
            for stmt in ddl.create_statements(info):
                conn.execute(stmt)
        return self.collection(name, embedder=embedder, passages=passages)

    def distribute_collection(self, name: str, *, by: str = "key") -> Collection:
        """Shard a collection's table over a Citus cluster's workers (run on the coordinator).

        ``by="key"`` spreads rows evenly and every search asks every shard.
        ``by="tenant"`` keeps each tenant's rows on one shard, so a search with
        ``tenant=`` runs on one worker; keys are then unique per tenant and every row
        needs a tenant. The rows move to the shards in one transaction (writes wait).
        Text search ranks by ``ts_rank`` instead of BM25 once distributed (see
        :mod:`semsearch.distributed` and README, "Scaling out").

        Example::

            db.distribute_collection("docs", by="key")
            db.distribute_collection("tickets", by="tenant")
        """
        old = self._info(name)
        with self.connection() as conn, changes.ddl_lock(conn, name), conn.transaction():
            synced = table_sync.find(conn, collection=name)
            if synced is not None:
                raise ConfigurationError(
                    f"expected a collection no table is synced to, got {name!r} synced from {synced.table}: "
                    "its triggers' writes are not tested through Citus"
                )
            distributed.distribute(conn, old, by)
        return self.collection(name)

    def _info(self, name: str) -> CollectionInfo:
        with self.connection() as conn:
            return catalog.read(conn, name)

    def collection(self, name: str, *, embedder: Embedder | None = None, passages: Any = None) -> Collection:
        """Open an existing collection (``passages``: the splitter of one made with a custom splitter).

        Example::

            movies = db.collection("movies")
        """
        info = self._info(name)
        if embedder is not None and embedder.dims != info.dims:
            raise ConfigurationError(f"expected an embedder of {info.dims} dims for {name!r}, got {embedder.dims}")
        return Collection(self, info, embedder, passages=passages)

    def collections(self) -> list[CollectionInfo]:
        """Every collection's catalog row, by name."""
        with self.connection() as conn:
            return catalog.read_all(conn)

    def drop_collection(self, name: str, *, missing_ok: bool = False) -> None:
        """Drop a collection's table and catalog row (not one a table is synced to: unsync it first)."""
        check_name(name)
        with self.connection() as conn, conn.transaction():
            if conn.execute(catalog.EXISTS, [name]).fetchone() is None:
                if missing_ok:
                    return
                raise catalog.not_found(name)
            synced = table_sync.find(conn, collection=name)
            if synced is not None:
                raise ConfigurationError(
                    f"expected a collection no table is synced to, got {name!r} synced from {synced.table}: "
                    "unsync_table(table, drop_collection=True) drops both"
                )
            for stmt in ddl.drop_statements(name):
                conn.execute(stmt)

    def alter_collection(
        self,
        name: str,
        *,
        compression: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construction: int | None = None,
        oversample: float | None = None,
        autotune: bool | None = None,
        concurrently: bool = True,
    ) -> Collection:
        """Change a collection's compression plan, HNSW parameters, oversampling or automatic tuning.

        A new index is built next to the live one (``CREATE INDEX CONCURRENTLY`` by
        default, so writes and searches go on), then one short transaction swaps it
        in together with the catalog row and the collection's SQL functions
        (:meth:`replace_index`). An explicit ``compression`` pins the plan (it no longer
        follows the collection's size); ``compression="auto"`` returns the collection to
        automatic mode, at the plan its row count asks for now (see :mod:`semsearch.plan_choice`);
        ``info.plan_reason`` says why it has its plan.

        Example::

            db.alter_collection("movies", compression="mrl:512")     # pinned
            db.alter_collection("movies", compression="auto")        # follows its size again
        """
        old = self._info(name)
        rows = autoplan.count_rows(self, old) if compression == plan_choice.AUTO else None
        change = ddl.alter(
            old,
            rows=rows,
            concurrently=concurrently,
            autotune=autotune,
            compression=compression,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            oversample=oversample,
        )
        if change.catalog:
            with self.connection() as conn, conn.transaction():
                for stmt in change.catalog:
                    conn.execute(stmt)
        if change.index is not None:
            with self.connection() as conn:
                changes.run_index_build(conn, change.new.name, change.index)
        return self.collection(name)

    def sync_table(
        self,
        table: str,
        *,
        collection: str,
        key: str,
        text: str | Sequence[str],
        metadata: Sequence[str] = (),
        tenant: str | None = None,
        model: str | None = None,
        dims: int | None = None,
        compression: str | None = None,
        embedder: Embedder | None = None,
        passages: Any = None,
    ) -> Collection:
        """Keep ``collection`` in step with an existing table, whoever writes it (raw SQL and COPY included).

        Triggers on ``table`` turn every insert, update (of the synced columns), delete and
        truncate into the collection's pending rows, and the rows already there are queued;
        :meth:`Collection.backfill` (``watch=True`` as a service) embeds them. ``key``, ``text``
        and ``tenant`` name columns (the key unique on its own; it becomes the hit's key as
        text), ``metadata`` a sequence of columns stored by name. ``text`` may list several
        columns: the text is then each non-NULL one on its own line after its name
        (``"name: kettle\\ndescription: boils water fast"``), re-embedded when any changes.
        The collection is created with ``model``/``dims``/``compression``/``embedder``, or
        reused if they match it (a re-sync after a change of the table's columns). See :mod:`semsearch.table_sync`.
        ``passages`` (``True``, a :class:`~semsearch.Splitter` or any splitter ``create_collection``
        takes) makes each row a document split into passages (so does an existing collection
        with passages): the triggers queue each written row, ``backfill`` splits it, reuses
        the vectors of unchanged passages and embeds the others; a deleted row's passages go at
        once. See :mod:`semsearch.document_queue`.

        Example::

            products = db.sync_table("public.products", collection="products", key="id",
                                     text=["name", "description"], metadata=["price", "category"], model="local")
            products.backfill()
            # SELECT p.*, s.score FROM semsearch.search('products', :q, 10) s JOIN products p ON p.id::text = s.key
        """
        table_sync.sync_table(
            self, table, collection=collection, key=key, text=text, metadata=metadata, tenant=tenant,
            model=model, dims=dims, compression=compression, embedder=embedder, passages=passages,
            create=partial(self.create_collection, collection, model=model, dims=dims, compression=compression,
                           embedder=embedder, passages=passages),
        )  # fmt: skip
        custom = None if passages is None or isinstance(passages, bool) else passages  # a splitter to open it with
        return self.collection(collection, embedder=embedder, passages=custom)

    def unsync_table(self, table: str, *, drop_collection: bool = False) -> table_sync.SyncedTable:
        """Remove the triggers of a synced table (and its collection, with ``drop_collection``).

        Example::

            db.unsync_table("products", drop_collection=True)
        """
        return table_sync.unsync_table(self, table, drop_collection=drop_collection)

    def synced_tables(self) -> list[table_sync.SyncedTable]:
        """Every table synced to a collection, by collection name.

        Example::

            [s.table for s in db.synced_tables()]    # ['public.products']
        """
        return table_sync.synced_tables(self)

    def grant(self, role: str, collection: str, *, write: bool = False) -> None:
        """Grant ``role`` exactly what searching one collection needs (and writing it, with ``write``).

        A role granted one collection is refused on another. Run as the owner of
        semsearch's schema (or a superuser).

        Example::

            db.grant("web_reader", "docs")
            db.grant("ingest_worker", "docs", write=True)
        """
        info = self._info(collection)
        with self.connection() as conn:
            changes.grant(conn, info, role, write=write)

    def isolate_tenants(self, collection: str, *, setting: str | None = "app.tenant") -> Collection:
        """Keep tenants apart in the database: a session sees only the tenant its ``setting`` names.

        Row-level security on the collection's table and its BM25 statistics (kept per tenant from
        now on); applies to every role but the owner, from Python and SQL alike. ``setting=None``
        removes it. See :mod:`semsearch.tenants` and README, "Tenants".

        Example::

            db.isolate_tenants("docs")                 # then, per session or transaction:
            # SET app.tenant = 'acme'    -- or conn.execute("SELECT set_config('app.tenant', %s, false)", [t])
        """
        info = self._info(collection)
        with self.connection() as conn, changes.ddl_lock(conn, info.name), conn.transaction():
            for stmt in tenants.isolate_statements(info, setting):
                conn.execute(stmt)
        return self.collection(collection)

    def replace_index(self, info: CollectionInfo, *, concurrently: bool = True, replan: bool = False) -> None:
        """Build ``info``'s HNSW index next to the live one, then swap it in with the catalog and SQL functions.

        ``concurrently`` (``CREATE INDEX CONCURRENTLY``) lets writes and searches go on
        during the build; without it the build blocks writes but not searches. Either way
        the live index is dropped only in the short swap transaction at the end, and one
        DDL change of a collection runs at a time (an advisory lock per name). ``replan``
        swaps the catalog row and SQL functions to ``info``'s plan in the same transaction.

        Example::

            db.replace_index(db.collection("movies").info)    # what rebuild_index() does
        """
        with self.connection() as conn:
            changes.run_index_build(conn, info.name, ddl.index_build(info, concurrently=concurrently, replan=replan))
