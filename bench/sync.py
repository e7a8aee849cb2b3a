"""What syncing an existing table costs its writers, what the NOTIFY triggers cost everyone, and how fast a watcher is.

    SEMSEARCH_DATA_DIR=/tmp/ss-bench-sync .venv/bin/python bench/sync.py [--rows 50000] [--out bench/results/sync.json]

1. Writers of a synced table: the same statements on two identical tables (id, text, two
   metadata columns, one not synced), one synced to a local-model collection: COPY of
   ``--rows`` rows, an UPDATE of every row's unsynced column (nothing to do), an UPDATE of
   10% of the texts, a DELETE of 10%. Tables alternate, three trials, medians.
2. Everyone: an INSERT ... SELECT of ``--rows`` embedded rows (64 dims, no HNSW index)
   into a collection table with and without its two ``semsearch_pending`` triggers, then
   an UPDATE making half of them pending. Alternating, three trials, medians.
3. A watcher (``backfill(watch=True)``, local model) and single-row INSERTs into the synced
   table: seconds from the INSERT's commit to the row's vector being stored, 20 rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

from psycopg import sql

import semsearch

ROOT = Path(__file__).resolve().parents[1]


def _timed(conn, stmt, params=None) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    conn.execute(stmt, params)
    return time.perf_counter() - t0


def writers(db: semsearch.Database, n: int) -> dict[str, dict[str, float]]:
    runs: dict[str, dict[str, list[float]]] = {"plain": {}, "synced": {}}
    for _ in range(3):
        for kind in ("plain", "synced"):
            t = sql.Identifier(f"bench_{kind}")
            if kind == "synced" and any(s.collection == "bench" for s in db.synced_tables()):
                db.unsync_table("bench_synced", drop_collection=True)
            with db.connection() as conn:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t))
                conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, body text, price int, views int)").format(t))
            if kind == "synced":
                db.sync_table("bench_synced", collection="bench", key="id", text="body", metadata=["price"],
                              model="local", dims=64)  # fmt: skip
            got = runs[kind]
            with db.connection() as conn:
                t0 = time.perf_counter()
                with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(t)) as copy:
                    for i in range(n):
                        copy.write_row((i, f"product {i}, a thing of kind {i % 977} in colour {i % 13}", i % 100, 0))
                got.setdefault("copy_rows_per_s", []).append(n / (time.perf_counter() - t0))
                got.setdefault("update_unsynced_s", []).append(
                    _timed(conn, sql.SQL("UPDATE {} SET views = views + 1").format(t))
                )
                got.setdefault("update_text_10pct_s", []).append(
                    _timed(conn, sql.SQL("UPDATE {} SET body = body || ' (new)' WHERE id % 10 = 0").format(t))
                )
                got.setdefault("delete_10pct_s", []).append(
                    _timed(conn, sql.SQL("DELETE FROM {} WHERE id % 10 = 1").format(t))
                )
    db.unsync_table("bench_synced", drop_collection=True)
    return {k: {m: round(statistics.median(v), 3) for m, v in got.items()} for k, got in runs.items()}


def notify_triggers(db: semsearch.Database, n: int) -> dict[str, dict[str, float]]:
    runs: dict[str, dict[str, list[float]]] = {"with_triggers": {}, "without": {}}
    for _ in range(3):
        for kind in runs:
            db.drop_collection("bench_notify", missing_ok=True)
            col = db.create_collection("bench_notify", dims=64, model="label", compression="halfvec", autotune=False)
            table = col.layout.table
            with db.connection() as conn:
                conn.execute(sql.SQL("DROP INDEX {}").format(col.layout.index_name("hnsw", schema=True)))
                if kind == "without":
                    for trig in ("semsearch_pending_ins", "semsearch_pending_upd"):
                        conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(trig), table))
                ins = sql.SQL(
                    "INSERT INTO {} (key, content, embedding) SELECT i::text, 'text number ' || i, "
                    "array_fill(0.1::real, ARRAY[64])::vector FROM generate_series(1, %s) i"
                ).format(table)
                runs[kind].setdefault("insert_embedded_s", []).append(_timed(conn, ins, [n]))
                upd = sql.SQL("UPDATE {} SET embedding = NULL WHERE id % 2 = 0").format(table)
                runs[kind].setdefault("update_half_pending_s", []).append(_timed(conn, upd))
    db.drop_collection("bench_notify")
    return {k: {m: round(statistics.median(v), 3) for m, v in got.items()} for k, got in runs.items()}


def watcher_latency(db: semsearch.Database, rows: int = 20) -> dict[str, float]:
    with db.connection() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_watched")
        conn.execute("CREATE TABLE bench_watched (id int PRIMARY KEY, body text)")
    col = db.sync_table("bench_watched", collection="bench_watched", key="id", text="body", model="local", dims=64)
    stop = threading.Event()
    thread = threading.Thread(target=col.backfill, kwargs={"watch": True, "stop": stop, "poll": 3600})
    thread.start()
    seconds = []
    with db.connection() as conn:
        for i in range(rows):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO bench_watched VALUES (%s, %s)", [i, f"row number {i}"])
            while col.pending() or col.count() <= i:
                threading.Event().wait(0.005)
            seconds.append(time.perf_counter() - t0)
    stop.set()
    thread.join()
    db.unsync_table("bench_watched", drop_collection=True)
    return {"p50_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sync.json")
    args = parser.parse_args()
    with semsearch.connect() as db:
        result = {
            "rows": args.rows,
            "writers": writers(db, args.rows),
            "notify_triggers": notify_triggers(db, args.rows),
            "watcher_latency": watcher_latency(db),
        }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
