"""Settings read from the environment when asked for, never at import."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Settings:
    """Where semsearch finds its database.

    ``SEMSEARCH_DATABASE_URL``: any Postgres >= 14 with pgvector >= 0.7; unset means
    the embedded server. ``SEMSEARCH_DATA_DIR``: where the embedded server keeps
    its data (default: the user's data directory). ``SEMSEARCH_REPLICA_URLS``: read
    replicas for searches, comma-separated (see :mod:`semsearch.replicas`).

    Example::

        settings = Settings.from_env()
        settings.database_url or "embedded"
    """

    database_url: str | None
    data_dir: Path
    replica_urls: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from ``os.environ`` now."""
        url = os.environ.get("SEMSEARCH_DATABASE_URL") or None
        data_dir = os.environ.get("SEMSEARCH_DATA_DIR") or platformdirs.user_data_dir("semsearch")
        replicas = tuple(u.strip() for u in os.environ.get("SEMSEARCH_REPLICA_URLS", "").split(",") if u.strip())
        return cls(database_url=url, data_dir=Path(data_dir).expanduser(), replica_urls=replicas)
