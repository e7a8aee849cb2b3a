"""Settings read from the environment when asked for, never at import."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import platformdirs

from semsearch.errors import ConfigurationError

#: seconds one search statement may run before the server cancels it (``search_timeout=``)
DEFAULT_SEARCH_TIMEOUT = 30.0


class FromEnv(Enum):
    """The default of ``search_timeout=``: ``SEMSEARCH_SEARCH_TIMEOUT``, else :data:`DEFAULT_SEARCH_TIMEOUT`."""

    FROM_ENV = "from the environment"


FROM_ENV = FromEnv.FROM_ENV


def check_search_timeout(value: float | FromEnv | None) -> float | None:
    """Seconds a search may run (None: no limit); :data:`FROM_ENV` reads the settings.

    >>> check_search_timeout(2), check_search_timeout(None)
    (2.0, None)
    """
    if value is FROM_ENV:
        return Settings.from_env().search_timeout
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
    ):
        raise ConfigurationError(f"expected search_timeout as seconds > 0, or None for no limit, got {value!r}")
    return None if value is None else float(value)


@dataclass(frozen=True)
class Settings:
    """Where semsearch finds its database.

    ``SEMSEARCH_DATABASE_URL``: any Postgres >= 14 with pgvector >= 0.7; unset means
    the embedded server. ``SEMSEARCH_DATA_DIR``: where the embedded server keeps
    its data (default: the user's data directory). ``SEMSEARCH_REPLICA_URLS``: read
    replicas for searches, comma-separated (see :mod:`semsearch.replicas`).
    ``SEMSEARCH_SEARCH_TIMEOUT``: seconds one search statement may run (default
    :data:`DEFAULT_SEARCH_TIMEOUT`; ``none`` or ``0``: no limit).

    Example::

        settings = Settings.from_env()
        settings.database_url or "embedded"
    """

    database_url: str | None
    data_dir: Path
    replica_urls: tuple[str, ...] = ()
    search_timeout: float | None = DEFAULT_SEARCH_TIMEOUT

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from ``os.environ`` now."""
        url = os.environ.get("SEMSEARCH_DATABASE_URL") or None
        data_dir = os.environ.get("SEMSEARCH_DATA_DIR") or platformdirs.user_data_dir("semsearch")
        replicas = tuple(u.strip() for u in os.environ.get("SEMSEARCH_REPLICA_URLS", "").split(",") if u.strip())
        timeout = os.environ.get("SEMSEARCH_SEARCH_TIMEOUT", "").strip().lower()
        if timeout in ("none", "off", "0"):
            seconds = None
        else:
            try:
                seconds = check_search_timeout(float(timeout) if timeout else DEFAULT_SEARCH_TIMEOUT)
            except ValueError:
                raise ConfigurationError(
                    f"expected SEMSEARCH_SEARCH_TIMEOUT as seconds, or none, got {timeout!r}"
                ) from None
        return cls(
            database_url=url, data_dir=Path(data_dir).expanduser(), replica_urls=replicas, search_timeout=seconds
        )
