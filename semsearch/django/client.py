"""The process's semsearch :class:`~semsearch.Database` and embedder, opened on first use.

One pool per server URL: when the settings name another server (``override_settings``,
Django's test runner switching to ``test_<name>``), the old pool is closed and a
new one opened. The pool is semsearch's own: its writes never join a Django
transaction (they run from ``transaction.on_commit``).
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import psycopg

from semsearch import migrate
from semsearch.catalog import schema_version
from semsearch.db import Database, connect
from semsearch.django.conf import SemsearchSettings
from semsearch.embeddings import Embedder, embedder_for, models
from semsearch.errors import ConfigurationError, SchemaVersionError
from semsearch.server import check_server, redact

_lock = threading.Lock()
_open: dict[str, Database] = {}  # at most one entry: url -> its database
_embedders: dict[tuple[str, int | None], Embedder] = {}
_last_migrate: dict[str, Any] = {}  # alias -> the plan of the migrate run that checked it
_HINT = "run `python manage.py migrate` (or `python manage.py semsearch_upgrade`)"


def database() -> Database:
    """semsearch's database for the current settings (``SEMSEARCH['DATABASE']`` or ``['URL']``).

    Example::

        from semsearch.django.client import database
        database().collections()
    """
    conf = SemsearchSettings.load()
    url = conf.url()
    with _lock:
        if url in _open:
            return _open[url]
        _close_locked()
        try:
            db = connect(url, upgrade=False, max_connections=conf.max_connections)
        except SchemaVersionError as exc:
            raise SchemaVersionError(f"{str(exc).split(':')[0]}: {_HINT}") from exc
        # unregister first: a process that reopens (new settings) still closes once at exit
        atexit.unregister(close)
        atexit.register(close)
        _open[url] = db
        return db


def embedder() -> Embedder:
    """The embedder ``SEMSEARCH['EMBEDDER']`` names, built once per process.

    Example::

        embedder().embed(["hello"]).shape    # (1, 256) with the default local model
    """
    conf = SemsearchSettings.load()
    key = (conf.embedder, conf.dims)
    with _lock:
        if key not in _embedders:
            _embedders[key] = _make_embedder(conf)
        return _embedders[key]


def _make_embedder(conf: SemsearchSettings) -> Embedder:
    if conf.builtin_model:
        return embedder_for(conf.embedder, conf.dims)
    from django.utils.module_loading import import_string

    try:
        factory = import_string(conf.embedder)
    except ImportError as exc:
        builtins = ", ".join(models.names())
        raise ConfigurationError(
            f"expected SEMSEARCH['EMBEDDER'] as a built-in model ({builtins}) or a dotted path to an "
            f"embedder factory, got {conf.embedder!r} ({exc})"
        ) from exc
    made = factory()
    if not isinstance(made, Embedder):
        raise ConfigurationError(f"expected {conf.embedder}() to return an Embedder, got {type(made).__name__}")
    if conf.dims is not None and made.dims != conf.dims:
        raise ConfigurationError(f"expected an embedder of SEMSEARCH['DIMS']={conf.dims} dims, got {made.dims}")
    return made


def close() -> None:
    """Close the pool (the next use opens a new one); for tests, and at process exit."""
    with _lock:
        _close_locked()


def _close_locked() -> None:
    for db in _open.values():
        db.close()
    _open.clear()


def upgrade_on_migrate(sender: Any, *, using: str, plan: Any = None, verbosity: int = 1, **kwargs: Any) -> None:
    """``pre_migrate`` receiver: install or upgrade semsearch's schema on ``SEMSEARCH['DATABASE']``.

    So ``manage.py migrate`` (and the test runner's test database) get the schema
    before any ``CreateCollection`` runs. It runs on its own connection before
    Django's first migration, committed apart from them; the signal comes once
    per app, the upgrade once per run.
    """
    conf = SemsearchSettings.load()
    if not conf.upgrade_on_migrate or conf.database != using:
        return
    if plan is not None and _last_migrate.get(using) is plan:
        return
    _last_migrate[using] = plan
    url = conf.url()
    check_server(url)
    with psycopg.connect(url, autocommit=True) as conn:
        current = schema_version(conn)
    if current != migrate.head():
        migrate.upgrade(url)
        if verbosity >= 1 and kwargs.get("stdout") is not None:
            kwargs["stdout"].write(f"  semsearch schema: {current or 'none'} -> {migrate.head()} on {redact(url)}\n")
