"""Collections in your Django migrations: ``CreateCollection``, ``DropCollection``, ``AlterCollection``.

Example (``articles/migrations/0002_collection.py``)::

    from django.db import migrations
    from semsearch.django.operations import CreateCollection

    class Migration(migrations.Migration):
        dependencies = [("articles", "0001_initial")]
        operations = [CreateCollection("articles_article", model="local", dims=256, compression="halfvec")]

They run :mod:`semsearch.ddl`'s statements through the migration's schema editor,
inside its transaction: ``sqlmigrate`` prints them, a failed migration undoes them,
``migrate <app> <earlier>`` reverses them. They act on ``SEMSEARCH['DATABASE']``
only (where routers let the app migrate), after ``migrate`` has installed
semsearch's schema there (``SEMSEARCH['UPGRADE_ON_MIGRATE']``, on by default).

``AlterCollection`` builds the new HNSW index next to the live one and swaps it in.
In an atomic migration (Django's default) the build runs inside the transaction
and blocks writes to the collection meanwhile. Give it a migration of its own
with ``atomic = False`` and it uses ``CREATE INDEX CONCURRENTLY`` (writes and
searches go on), then swaps in one short transaction. ``concurrently=True``
insists on that (and refuses an atomic migration); ``False`` always builds in a
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from django.db import router, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from psycopg import sql

from semsearch import catalog, collection_settings, ddl
from semsearch.collection_info import CollectionInfo
from semsearch.django.conf import SemsearchSettings
from semsearch.errors import CollectionExistsError, CollectionNotFoundError, ConfigurationError
from semsearch.layout import check_name

__all__ = ["AlterCollection", "CreateCollection", "DropCollection"]

_ALTERABLE = ("compression", "hnsw_m", "hnsw_ef_construction", "oversample")
# as Collection.rebuild_index: the graph builds far faster in memory, and with parallel workers at any size


class _CollectionOperation(Operation):
    reduces_to_sql = True
    name: str

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass  # collections are not models: Django's model state does not change

    def _applies(self, app_label: str, editor: BaseDatabaseSchemaEditor) -> bool:
        conf = SemsearchSettings.load()
        if conf.database is None:
            raise ConfigurationError(
                "expected SEMSEARCH['DATABASE'] (a django database) for migration operations, got a 'URL': "
                "create collections with `python manage.py semsearch_index` instead"
            )
        alias = editor.connection.alias
        return alias == conf.database and bool(router.allow_migrate(alias, app_label))

    @property
    def migration_name_fragment(self) -> str:
        return f"{type(self).__name__.lower().replace('collection', '_collection')}_{self.name}"


class CreateCollection(_CollectionOperation):
    """Create a collection (as :meth:`semsearch.Database.create_collection`); reverse: drop it.

    A collection of that name with the same settings (made by ``semsearch_index``
    or a save before this migration ran) is taken as is; other settings are an error.

    Example::

        CreateCollection("articles_article", model="local", dims=256, compression="halfvec")
    """

    def __init__(self, name: str, **settings: Any) -> None:
        self.name, self.settings = check_name(name), settings
        self.info = _make_info(name, settings)  # a bad setting fails when the migration loads

    def database_forwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _create(editor, self.info)

    def database_backwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _drop(editor, self.name, missing_ok=False)

    def describe(self) -> str:
        i = self.info
        return f"Create semsearch collection {i.name} ({i.model}, {i.dims} dims, {i.compression})"


class DropCollection(_CollectionOperation):
    """Drop a collection's table and catalog row; reverse (given its ``settings``): create it empty.

    **Dropped rows are not restored** by the reverse: reindex with ``semsearch_index``.

    Example::

        DropCollection("articles_article", model="local", dims=256, compression="halfvec")
    """

    def __init__(self, name: str, *, missing_ok: bool = False, **settings: Any) -> None:
        self.name, self.missing_ok, self.settings = check_name(name), missing_ok, settings
        if settings:
            _make_info(name, settings)

    @property
    def reversible(self) -> bool:
        return bool(self.settings)

    def database_forwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _drop(editor, self.name, missing_ok=self.missing_ok)

    def database_backwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _create(editor, _make_info(self.name, self.settings))

    def describe(self) -> str:
        return f"Drop semsearch collection {self.name}"


class AlterCollection(_CollectionOperation):
    """Change a collection's compression plan, HNSW parameters or oversampling; reverse: back to ``old``.

    List in ``old`` every setting the change affects (``oversample`` too when it
    was tuned: a new plan starts from its default). ``concurrently``: see the module docs.

    Example::

        AlterCollection("articles_article", compression="mrl-bit:256", old={"compression": "halfvec"})
    """

    def __init__(
        self,
        name: str,
        *,
        compression: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construction: int | None = None,
        oversample: float | None = None,
        old: dict[str, Any] | None = None,
        concurrently: bool | None = None,
    ) -> None:
        changes = dict(
            compression=compression, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction, oversample=oversample
        )
        self.name, self.old, self.concurrently = check_name(name), old, concurrently
        self.changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(old or {}) - set(_ALTERABLE))
        if unknown or not self.changes:
            raise ConfigurationError(f"expected some of {', '.join(_ALTERABLE)}, got {unknown or 'none'}")

    @property
    def reversible(self) -> bool:
        return bool(self.old)

    def database_forwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _alter(editor, self.name, self.changes, concurrently=self.concurrently)

    def database_backwards(
        self, app_label: str, editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        if self._applies(app_label, editor):
            _alter(editor, self.name, dict(self.old or {}), concurrently=self.concurrently)

    def describe(self) -> str:
        return f"Alter semsearch collection {self.name}: " + ", ".join(f"{k}={v}" for k, v in self.changes.items())


def _make_info(name: str, settings: dict[str, Any]) -> CollectionInfo:
    try:
        return collection_settings.make_info(name, **settings)
    except TypeError as exc:  # an unknown keyword: say which in semsearch's words
        raise ConfigurationError(f"expected settings of create_collection(), got {exc}") from exc


def _execute(editor: BaseDatabaseSchemaEditor, statements: Sequence[sql.Composable]) -> None:
    for stmt in statements:
        # params=None, not execute()'s default (): given parameters, Django's postgresql editor merges
        # them in client-side (psycopg's mogrify), reading every % in the text (a model label such as
        # "acme 100%") as a placeholder, in migrate and sqlmigrate alike; None passes the text as is
        editor.execute(stmt.as_string(None), params=None)


def _fetch(editor: BaseDatabaseSchemaEditor, query: str, params: list[Any]) -> tuple[Any, ...] | None:
    with editor.connection.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchone()


def _exists(editor: BaseDatabaseSchemaEditor, name: str) -> bool:
    """Whether ``name`` exists, after checking semsearch's schema is current (the catalog's shape)."""
    version = catalog.read_schema_version(lambda query: (_fetch(editor, query, []) or (None,))[0])
    catalog.check_schema_version(
        version, fix="run `python manage.py semsearch_upgrade` (or keep SEMSEARCH['UPGRADE_ON_MIGRATE'] on)"
    )
    return _fetch(editor, "SELECT 1 FROM semsearch.collections WHERE name = %s", [name]) is not None


def _create(editor: BaseDatabaseSchemaEditor, info: CollectionInfo) -> None:
    if not editor.collect_sql and _exists(editor, info.name):
        # semsearch_index or a save may have created it from SEMSEARCH before this migration ran
        have = _read_info(editor, info.name)
        # a model migration (migrate-model) moves a collection to a new table: the same collection still
        if ddl.unchanged(replace(have, table_name=info.table_name), info):
            return
        raise CollectionExistsError(
            f"expected a new collection name, got existing {info.name!r} with other settings "
            f"({have.model}, {have.dims} dims, {have.compression}): change it with AlterCollection"
        )
    _execute(editor, ddl.create_statements(info))


def _drop(editor: BaseDatabaseSchemaEditor, name: str, *, missing_ok: bool) -> None:
    if not editor.collect_sql and not _exists(editor, name):
        if missing_ok:
            return
        raise CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")
    _execute(editor, ddl.drop_statements(name))


def _read_info(editor: BaseDatabaseSchemaEditor, name: str) -> CollectionInfo:
    if not _exists(editor, name):
        raise CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")
    with editor.connection.cursor() as cur:
        cur.execute(catalog.select_statement(name).as_string(None))
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
    assert row is not None
    return CollectionInfo.from_row(dict(zip(names, row, strict=True)))


def _alter(editor: BaseDatabaseSchemaEditor, name: str, changes: dict[str, Any], *, concurrently: bool | None) -> None:
    atomic = editor.connection.in_atomic_block
    concurrent = not atomic if concurrently is None else concurrently
    change = ddl.alter(_read_info(editor, name), concurrently=concurrent, **changes)
    _execute(editor, change.catalog)
    steps = change.index
    if steps is None:
        return
    if concurrent and atomic:
        raise ConfigurationError(
            f"expected a migration with atomic = False to build the index of {name!r} concurrently, got an "
            "atomic one: set atomic = False on the Migration, or pass concurrently=False"
        )
    alias = editor.connection.alias
    if not concurrent:
        # settings local to the transaction, like the build; atomic() is a savepoint in an atomic migration
        with transaction.atomic(using=alias):
            _execute(editor, [*steps.prepare, *steps.build, *steps.swap])
        return
    _execute(editor, steps.prepare)
    try:
        _execute(editor, steps.build)
    finally:
        # the session is Django's connection: leave it as found
        _execute(editor, steps.restore)
    with transaction.atomic(using=alias):
        _execute(editor, steps.swap)
