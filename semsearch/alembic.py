"""Alembic operations for collections, for your application's own migrations.

Install semsearch's schema first (``semsearch db upgrade``). In your ``env.py``::

    import semsearch.alembic  # noqa: F401  (registers op.create_collection & co.)
    from semsearch.alembic import include_name, include_object

    context.configure(connection=connection, target_metadata=Base.metadata, include_schemas=True,
                      include_name=include_name, include_object=include_object)

then ``op.create_collection("docs", model="local", dims=256)`` in a migration.

``alter_collection`` and ``rebuild_collection_index`` build the new HNSW index with
``CREATE INDEX CONCURRENTLY`` (searches and writes go on). Postgres refuses that
inside a transaction, so it runs in ``autocommit_block()``, which **commits what
the migration did before it**: give these ops a migration of their own, and let
alembic own the transaction (``engine.connect()`` in ``env.py``, not
``engine.begin()``). ``concurrently=False`` builds inside the transaction instead,
blocking writes meanwhile. The swap to the new index is one short transaction.
Both read the catalog, so ``alembic upgrade --sql`` renders only create and drop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrateOperation, Operations
from psycopg import sql

from semsearch import catalog, collection_settings, ddl
from semsearch.collection_info import CollectionInfo
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError
from semsearch.layout import SCHEMA, check_name

__all__ = [
    "AlterCollectionOp",
    "CreateCollectionOp",
    "DropCollectionOp",
    "RebuildCollectionIndexOp",
    "include_name",
    "include_object",
]

_ALTERABLE = ("compression", "hnsw_m", "hnsw_ef_construction", "oversample")
# as Collection.rebuild_index: the graph builds far faster in memory, and with parallel workers at any size


@Operations.register_operation("create_collection")
class CreateCollectionOp(MigrateOperation):
    """``op.create_collection(name, **settings)``: as :meth:`semsearch.Database.create_collection`; reverse: drop.

    Example::

        op.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
    """

    def __init__(self, name: str, **settings: Any) -> None:
        self.name, self.settings = name, settings
        self.collection_info = _make_info(name, settings)  # a bad setting fails before any SQL runs

    @classmethod
    def create_collection(cls, operations: Operations, name: str, **settings: Any) -> None:
        operations.invoke(cls(name, **settings))

    def reverse(self) -> DropCollectionOp:
        return DropCollectionOp(self.name, **self.settings)


@Operations.register_operation("drop_collection")
class DropCollectionOp(MigrateOperation):
    """``op.drop_collection(name, **settings)``: drop table and catalog row; reverse: create from ``settings``.

    The reverse creates an empty collection: **dropped rows are not restored**.

    Example::

        op.drop_collection("docs", model="local", dims=256, compression="mrl-bit:256")
    """

    def __init__(self, name: str, *, missing_ok: bool = False, **settings: Any) -> None:
        self.name, self.missing_ok, self.settings = check_name(name), missing_ok, settings
        if settings:
            _make_info(name, settings)

    @classmethod
    def drop_collection(cls, operations: Operations, name: str, *, missing_ok: bool = False, **settings: Any) -> None:
        operations.invoke(cls(name, missing_ok=missing_ok, **settings))

    def reverse(self) -> CreateCollectionOp:
        if not self.settings:
            raise ConfigurationError(
                f"expected the settings of {self.name!r} on drop_collection() to reverse it, got none"
            )
        return CreateCollectionOp(self.name, **self.settings)


@Operations.register_operation("alter_collection")
class AlterCollectionOp(MigrateOperation):
    """``op.alter_collection(name, compression=..., ..., old={...})``: change the plan, HNSW or oversampling.

    A new index is built next to the live one and swapped in; an oversample-only
    change rebuilds nothing. The reverse restores ``old``: list every setting the
    change affects, ``oversample`` too when it was tuned (a new plan starts from
    its default).

    Example::

        def upgrade():
            op.alter_collection("docs", compression="mrl:512", old={"compression": "bit", "oversample": 4})

        def downgrade():
            op.alter_collection("docs", compression="bit", oversample=4)
    """

    def __init__(
        self, name: str, *, concurrently: bool = True, old: dict[str, Any] | None = None, **changes: Any
    ) -> None:
        self.name, self.concurrently, self.old = check_name(name), concurrently, old
        self.changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted((set(changes) | set(old or {})) - set(_ALTERABLE))
        if unknown or not self.changes:
            raise ConfigurationError(f"expected some of {', '.join(_ALTERABLE)}, got {unknown or 'none'}")

    @classmethod
    def alter_collection(
        cls,
        operations: Operations,
        name: str,
        *,
        compression: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construction: int | None = None,
        oversample: float | None = None,
        old: dict[str, Any] | None = None,
        concurrently: bool = True,
    ) -> None:
        changes = dict(compression=compression, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction)
        operations.invoke(cls(name, concurrently=concurrently, old=old, oversample=oversample, **changes))

    def reverse(self) -> AlterCollectionOp:
        if not self.old:
            raise ConfigurationError(f"expected old={{...}} on alter_collection({self.name!r}) to reverse it, got none")
        return AlterCollectionOp(self.name, concurrently=self.concurrently, old=self.changes, **self.old)


@Operations.register_operation("rebuild_collection_index")
class RebuildCollectionIndexOp(MigrateOperation):
    """``op.rebuild_collection_index(name, concurrently=True)``: build the HNSW index afresh and swap it in.

    Settings do not change, so the reverse is another (harmless) rebuild.

    Example::

        op.rebuild_collection_index("docs")
    """

    def __init__(self, name: str, *, concurrently: bool = True) -> None:
        self.name, self.concurrently = check_name(name), concurrently

    @classmethod
    def rebuild_collection_index(cls, operations: Operations, name: str, *, concurrently: bool = True) -> None:
        operations.invoke(cls(name, concurrently=concurrently))

    def reverse(self) -> RebuildCollectionIndexOp:
        return self


@Operations.implementation_for(CreateCollectionOp)
def _create(operations: Operations, op: CreateCollectionOp) -> None:
    if _online(operations) and _exists(operations, op.name):
        raise CollectionExistsError(f"expected a new collection name, got existing {op.name!r}")
    _run(operations, ddl.create_statements(op.collection_info))


@Operations.implementation_for(DropCollectionOp)
def _drop(operations: Operations, op: DropCollectionOp) -> None:
    if _online(operations) and not _exists(operations, op.name):
        if op.missing_ok:
            return
        raise CollectionNotFoundError(f"expected an existing collection, got unknown {op.name!r}")
    _run(operations, ddl.drop_statements(op.name))


@Operations.implementation_for(AlterCollectionOp)
def _alter(operations: Operations, op: AlterCollectionOp) -> None:
    change = ddl.alter(_info(operations, op.name), concurrently=op.concurrently, **op.changes)
    _run(operations, change.catalog)
    if change.index is not None:
        _run_index_build(operations, change.index)


@Operations.implementation_for(RebuildCollectionIndexOp)
def _rebuild(operations: Operations, op: RebuildCollectionIndexOp) -> None:
    _run_index_build(operations, ddl.index_build(_info(operations, op.name), concurrently=op.concurrently))


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """For ``context.configure(include_name=...)``: autogenerate skips reflecting schema ``semsearch``.

    This also spares SQLAlchemy's warnings about the pgvector types it does not know.

    >>> include_name("semsearch", "schema", {}), include_name("public", "schema", {})
    (False, True)
    """
    return not (type_ == "schema" and name == SCHEMA)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For ``context.configure(include_object=...)``: autogenerate ignores everything in schema ``semsearch``.

    Collection tables, their expression indexes and the catalog are not in your
    models; without this, autogenerate proposes dropping them.

    >>> import sqlalchemy as sa
    >>> include_object(sa.Table("col_docs", sa.MetaData(), schema="semsearch"), "col_docs", "table", True, None)
    False
    """
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "schema", None) != SCHEMA


def _make_info(name: str, settings: dict[str, Any]) -> CollectionInfo:
    try:
        return collection_settings.make_info(name, **settings)
    except TypeError as exc:  # an unknown keyword: say which in semsearch's words
        raise ConfigurationError(f"expected settings of create_collection(), got {exc}") from exc


def _online(operations: Operations) -> bool:
    """False in offline ``--sql`` mode; online, check that semsearch's schema is current."""
    if operations.get_context().as_sql:
        return False
    bind = operations.get_bind()
    version = catalog.read_schema_version(lambda query: bind.execute(sa.text(query)).scalar())
    catalog.check_schema_version(version, fix="run `semsearch db upgrade` before your own migrations")
    return True


def _exists(operations: Operations, name: str) -> bool:
    found = operations.get_bind().execute(sa.text("SELECT 1 FROM semsearch.collections WHERE name = :n"), {"n": name})
    return found.first() is not None


def _info(operations: Operations, name: str) -> CollectionInfo:
    if not _online(operations):
        raise ConfigurationError("expected a database connection (the catalog is read), got offline --sql mode")
    row = operations.get_bind().exec_driver_sql(catalog.select_statement(name).as_string(None)).first()
    if row is None:
        raise CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")
    return CollectionInfo.from_row(row._mapping)


def _run(operations: Operations, statements: Iterable[sql.Composable]) -> None:
    # DDL() rather than text(): text() would read ":word" inside a value (a model label)
    # as a bind parameter, and "\:" as an escape. DDL only %-formats its text, so
    # doubling % is the whole escape; the dialect's compiler then quotes % as its
    # driver wants (doubled again for pyformat drivers such as psycopg).
    for stmt in statements:
        operations.execute(sa.DDL(stmt.as_string(None).replace("%", "%%")))


def _run_index_build(operations: Operations, steps: ddl.IndexBuild) -> None:
    """Run :class:`ddl.IndexBuild` in a migration: concurrently, outside alembic's transaction."""
    if not steps.concurrently:
        # local to the migration's transaction, like the build itself
        _run(operations, [*steps.prepare, *steps.build, *steps.swap])
        return
    context = operations.get_context()
    # autocommit_block() can only commit a transaction alembic began itself (it asserts otherwise)
    if operations.get_bind().in_transaction() and getattr(context, "_transaction", None) is None:
        raise ConfigurationError(
            "expected alembic to own the transaction (env.py: engine.connect(), not engine.begin()), "
            "got an outer one: change env.py or pass concurrently=False"
        )
    with context.autocommit_block():
        _run(operations, steps.prepare)
        try:
            _run(operations, steps.build)
        finally:
            # the session is the user's migration connection: leave it as we found it
            _run(operations, steps.restore)
    _run(operations, steps.swap)
