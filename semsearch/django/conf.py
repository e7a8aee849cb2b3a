"""The ``SEMSEARCH`` setting, read when asked for (never at import).

Every key is optional::

    SEMSEARCH = {
        "DATABASE": "default",      # a Django database alias (postgresql) ... or
        "URL": None,                # ... any Postgres with pgvector, e.g. "postgresql://app@db/app"
        "EMBEDDER": "local",        # a built-in model, or "myapp.embeddings.make_embedder" (a factory)
        "DIMS": None,               # default: the model's (local: 256)
        "COMPRESSION": None,        # bit | halfvec | none | mrl:<d> | mrl-bit:<d>; default by dims
        "SYNC": "immediate",        # or "deferred": store rows pending on commit, embed in semsearch_backfill
        "MAX_CONNECTIONS": 4,       # semsearch's own pool, apart from Django's connections
        "UPGRADE_ON_MIGRATE": True, # `manage.py migrate` installs/upgrades semsearch's schema on DATABASE
    }

With ``DATABASE`` semsearch opens its own pool to the database Django uses (the
URL is built from ``DATABASES[alias]``), so collections live next to your tables
and ``semsearch.django.operations`` can create them in your migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from semsearch.embeddings import lookup
from semsearch.errors import ConfigurationError

SYNC_MODES = ("immediate", "deferred")
_KEYS = ("DATABASE", "URL", "EMBEDDER", "DIMS", "COMPRESSION", "SYNC", "MAX_CONNECTIONS", "UPGRADE_ON_MIGRATE")
# DATABASES[...]["OPTIONS"] keys that Django consumes itself; the rest are libpq parameters
_DJANGO_OPTIONS = frozenset(
    {"isolation_level", "server_side_binding", "pool", "assume_role", "prepare_threshold", "cursor_factory", "context"}
)


@dataclass(frozen=True)
class SemsearchSettings:
    """``settings.SEMSEARCH`` checked, with defaults filled in.

    Example::

        conf = SemsearchSettings.load()
        conf.url()          # 'host=db dbname=app user=app'
        conf.sync           # 'immediate'
    """

    database: str | None
    server_url: str | None
    embedder: str
    dims: int | None
    compression: str | None
    sync: str
    max_connections: int
    upgrade_on_migrate: bool

    @classmethod
    def load(cls) -> SemsearchSettings:
        """Read and check ``settings.SEMSEARCH`` now."""
        from django.conf import settings

        raw: Any = getattr(settings, "SEMSEARCH", None) or {}
        if not isinstance(raw, dict):
            raise ConfigurationError(f"expected SEMSEARCH to be a dict, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise ConfigurationError(f"expected SEMSEARCH keys among {', '.join(_KEYS)}, got {unknown}")
        if raw.get("DATABASE") and raw.get("URL"):
            raise ConfigurationError("expected SEMSEARCH['DATABASE'] or SEMSEARCH['URL'], got both")
        url = raw.get("URL") or None
        dims, size = raw.get("DIMS"), raw.get("MAX_CONNECTIONS", 4)
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
            raise ConfigurationError(f"expected SEMSEARCH['DIMS'] as a positive int, got {dims!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"expected SEMSEARCH['MAX_CONNECTIONS'] as a positive int, got {size!r}")
        sync = raw.get("SYNC", "immediate")
        if sync not in SYNC_MODES:
            raise ConfigurationError(f"expected SEMSEARCH['SYNC'] 'immediate' or 'deferred', got {sync!r}")
        embedder = raw.get("EMBEDDER", "local")
        if not isinstance(embedder, str) or not embedder:
            raise ConfigurationError(f"expected SEMSEARCH['EMBEDDER'] as a model name or dotted path, got {embedder!r}")
        return cls(
            database=None if url else (raw.get("DATABASE") or "default"),
            server_url=url,
            embedder=embedder,
            dims=dims,
            compression=raw.get("COMPRESSION"),
            sync=sync,
            max_connections=size,
            upgrade_on_migrate=bool(raw.get("UPGRADE_ON_MIGRATE", True)),
        )

    @property
    def builtin_model(self) -> bool:
        """Whether ``EMBEDDER`` names a built-in model rather than a factory."""
        return lookup(self.embedder) is not None

    def url(self) -> str:
        """The server semsearch uses: ``URL``, or the connection parameters of ``DATABASE``."""
        if self.server_url is not None:
            return self.server_url
        assert self.database is not None
        return alias_url(self.database)


def alias_url(alias: str) -> str:
    """A libpq connection string for a Django database alias, which must be postgresql.

    Example::

        alias_url("default")     # "dbname=app user=app host=db port=5432"
    """
    from django.db import connections

    if alias not in connections:
        raise ConfigurationError(f"expected a database alias of DATABASES, got {alias!r}")
    wrapper = connections[alias]
    if wrapper.vendor != "postgresql":
        raise ConfigurationError(
            f"expected DATABASES[{alias!r}] to be postgresql, got {wrapper.vendor}: "
            "point SEMSEARCH['URL'] at a postgres with pgvector instead"
        )
    s = wrapper.settings_dict
    params: dict[str, Any] = {
        "dbname": s.get("NAME"),
        "user": s.get("USER"),
        "password": s.get("PASSWORD"),
        "host": s.get("HOST"),
        "port": s.get("PORT"),
    }
    params.update((k, v) for k, v in (s.get("OPTIONS") or {}).items() if k not in _DJANGO_OPTIONS)
    try:
        return make_conninfo("", **{k: str(v) for k, v in params.items() if v not in (None, "")})
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"expected libpq parameters in DATABASES[{alias!r}], got {exc}") from exc
