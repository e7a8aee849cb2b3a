"""Measuring tools shared by every contender: database, builds, sizes, warm-up, timed queries.

Every contender is measured by the same code from the same client: sequential queries
on one connection, warm cache, wall time per call as the application sees it.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from tqdm import tqdm

import semsearch
from semsearch.config import Settings

#: the same HNSW parameters for every contender
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: queries run untimed before each timed setting (plans cached, pages touched)
WARMUP = 10
#: pgvector's name for the HNSW build's main phase (B-tree's is "... loading tuples in tree")
HNSW_BUILD_PHASE = "building index: loading tuples"

Search = Callable[[np.ndarray, Any], list[int]]


def bench_server() -> str:
    """The server benchmarks run on: $SEMSEARCH_DATABASE_URL's, else the embedded one."""
    settings = Settings.from_env()
    if settings.database_url:
        return settings.database_url
    from semsearch.embedded import embedded_url

    return embedded_url(settings.data_dir, database="postgres")


def bench_database(name: str = "semsearch_bench") -> str:
    """A fresh, dedicated database for one run (never the tests' or the user's database)."""
    server = bench_server()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server, dbname=name)


def machine(conn: psycopg.Connection) -> dict[str, Any]:
    """The box and the server the numbers came from."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
        info["mem_gib"] = round(int(meminfo[1]) / 2**20, 1)
        cpu = [x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name")]
        info["cpu"] = cpu[0].split(":", 1)[1].strip() if cpu else None
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    info["postgres"] = one("SELECT version()")
    info["pgvector"] = one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    names = [
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "max_parallel_maintenance_workers",
        "max_parallel_workers_per_gather",
        "effective_cache_size",
        "jit",
        "io_method",
    ]
    info["settings"] = {n: one(sql.SQL("SELECT current_setting({})").format(sql.Literal(n))) for n in names}
    return info


@dataclass
class Build:
    seconds: float
    memory: str
    notices: list[str] = field(default_factory=list)


def timed_build(db: semsearch.Database, ddl: sql.Composable, *, memory: str) -> Build:
    """Run one CREATE INDEX under the same settings for everyone; time it to the commit."""
    notices: list[str] = []
    with db.connection() as conn:
        handler = lambda d: notices.append(str(d.message_primary))  # noqa: E731
        conn.add_notice_handler(handler)
        try:
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(memory)))
                # as semsearch's own builds do: parallel workers at any table size
                conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
                conn.execute(ddl)
            seconds = time.perf_counter() - started
        finally:
            conn.remove_notice_handler(handler)
    return Build(round(seconds, 3), memory, notices)


class BuildWatch(threading.Thread):
    """Every index build in the database while it runs, polled from its own connection:
    table, phases and seconds (to within one poll). Times builds a library runs inside
    its own calls (``add_many``) without hooking into it; HNSW ones have HNSW_BUILD_PHASE."""

    QUERY = (
        "SELECT pid, relid::regclass::text, command, phase FROM pg_stat_progress_create_index "
        "WHERE datname = current_database()"
    )

    def __init__(self, url: str, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.conn, self.every, self.done = psycopg.connect(url, autocommit=True), every, threading.Event()
        self.open: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.builds: list[dict[str, Any]] = []

    def run(self) -> None:
        while not self.done.is_set():
            now, seen = time.perf_counter(), set()
            for pid, table, command, phase in self.conn.execute(self.QUERY).fetchall():
                key = (pid, table, command)
                seen.add(key)
                ep = self.open.get(key)
                if ep is not None and phase.endswith("initializing") and ep["phases"][-1] != phase:
                    self.close(key, now)  # the next build by the same backend on the same table
                    ep = None
                if ep is None:
                    ep = self.open[key] = {"table": table, "command": command, "start": now, "phases": []}
                if not ep["phases"] or ep["phases"][-1] != phase:
                    ep["phases"].append(phase)
            for key in set(self.open) - seen:
                self.close(key, now)
            time.sleep(self.every)

    def close(self, key: tuple[Any, ...], now: float) -> None:
        ep = self.open.pop(key)
        ep["seconds"] = round(now - ep.pop("start"), 3)
        self.builds.append(ep)

    def finish(self) -> list[dict[str, Any]]:
        self.done.set()
        self.join()
        for key in list(self.open):
            self.close(key, time.perf_counter())
        self.conn.close()
        return self.builds


def sizes(db: semsearch.Database, table: str, index: str | None) -> dict[str, int]:
    """Bytes: the HNSW index, the heap+TOAST, and everything (pg_total_relation_size)."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT CASE WHEN %s::text IS NULL THEN 0 ELSE pg_relation_size(%s::regclass) END, "
            "pg_table_size(%s::regclass), pg_total_relation_size(%s::regclass)",
            [index, index, table, table],
        ).fetchone()
    assert row is not None
    return {"index_bytes": int(row[0]), "heap_toast_bytes": int(row[1]), "total_bytes": int(row[2])}


def vacuum(db: semsearch.Database, table: str) -> None:
    with db.connection() as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(table)))


def prewarm(db: semsearch.Database, table: str) -> float:
    """Read a table, its TOAST and its indexes into the OS page cache; return bytes/s-free seconds.

    pg_prewarm is not in the embedded server, so the relation files are read directly
    when the server is local; elsewhere the untimed warm-up queries do the job.
    """
    started = time.perf_counter()
    with db.connection() as conn:
        datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        paths = [
            r[0]
            for r in conn.execute(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = %s::regclass "
                "OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = %s::regclass) "
                "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)",
                [table, table, table],
            ).fetchall()
            if r[0]
        ]
    for rel in paths:
        for f in Path(datadir).glob(rel + "*"):
            try:
                with open(f, "rb") as fh:
                    while fh.read(1 << 22):
                        pass
            except OSError:
                return 0.0
    return round(time.perf_counter() - started, 2)


@dataclass
class Point:
    """One setting of one contender, measured over the queries."""

    knob: float | None
    recall: float
    p50_ms: float
    p95_ms: float
    qps: float
    queries: int
    returned_short: int = 0


def recall_at(found: Sequence[Sequence[int]], truth: np.ndarray, k: int = 10) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=False))
    return hits / (k * len(found))


def measure(search: Search, knob: Any, queries: np.ndarray, truth: np.ndarray) -> Point:
    """Time ``search`` on each query in turn (after WARMUP untimed calls); recall@10 vs truth."""
    for q in queries[:WARMUP]:
        search(q, knob)
    lat = np.empty(len(queries))
    found: list[list[int]] = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        got = search(q, knob)
        lat[i] = time.perf_counter() - t0
        found.append(got)
    short = sum(len(f) < 10 for f in found)
    return Point(
        None if knob is None else float(knob),
        round(recall_at(found, truth), 4),
        round(float(np.median(lat)) * 1e3, 3),
        round(float(np.percentile(lat, 95)) * 1e3, 3),
        round(len(queries) / float(lat.sum()), 1),
        len(queries),
        short,
    )


def sweep(
    name: str,
    search: Search,
    knobs: Sequence[Any],
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    saturate: bool = False,
    floor: float | None = None,
) -> list[dict[str, Any]]:
    """Measure each knob value in order; with ``saturate`` stop once recall@10 reaches 1.0
    at or beyond ``floor`` (the default setting, which is always measured)."""
    points = []
    bar = tqdm(knobs, desc=f"  {name}", unit="setting", leave=False)
    for knob in bar:
        p = measure(search, knob, queries, truth)
        points.append(asdict(p))
        bar.set_postfix(knob=knob, recall=p.recall, p50=p.p50_ms)
        if saturate and p.recall >= 1.0 and (floor is None or knob is None or knob >= floor):
            break
    bar.close()
    tqdm.write(
        f"  {name:<28} "
        + "  ".join(
            f"{pt['knob']:g}:{pt['recall']:.3f}/{pt['p50_ms']:.2f}ms"
            if pt["knob"] is not None
            else f"{pt['recall']:.3f}/{pt['p50_ms']:.2f}ms"
            for pt in points
        )
    )
    return points


def smallest_reaching(points: list[dict[str, Any]], target: float = 0.99) -> dict[str, Any] | None:
    ok = [p for p in points if p["recall"] >= target]
    return min(ok, key=lambda p: p["knob"]) if ok else None


def at_knob(points: list[dict[str, Any]], knob: float) -> dict[str, Any] | None:
    for p in points:
        if p["knob"] == knob:
            return p
    return None


def connect_raw(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    register_vector(conn)
    return conn
