"""What the text index costs on disk: BM25 side tables against the GIN index and the collection table.

    SEMSEARCH_DATA_DIR=... python bench/bm25_cost.py [--rows 5000 250000] [--batch 500]
                                                     [--out bench/results/bm25_cost]

Corpora: the 1,400 Cranfield docs, and bench/bm25.py's synthetic text (Cranfield docs
repeated, each copy keeping 80% of its words plus 3 random corpus words) at each
``--rows``. Tables are made by semsearch's own DDL (bench/bm25.py's layout: a 256-dim
embedding column, left NULL). Rows go in as ``add_many`` writes them: ``--batch`` rows per
INSERT statement, each its own transaction (the statistics triggers run per statement).
Sizes after VACUUM ANALYZE: per relation, ``pg_relation_size`` of each heap and index
(TOAST, FSM and VM in the heap's ``pg_table_size``), then again after the postings key is
rebuilt in one pass by ``bm25.rewrite_statements`` (what ``add_many`` does after a bulk load;
its seconds recorded).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from bm25 import create, layout, load_cranfield, synthetic, vacuum  # bench/ is on sys.path as a script
from psycopg import sql

from semsearch import bm25, migrate
from semsearch.config import Settings
from semsearch.embedded import embedded_url


def load(conn: psycopg.Connection, name: str, keys: list[str], texts: list[str], batch: int) -> float:
    lay = layout(name)
    create(conn, lay, stats=True)
    started = time.perf_counter()
    for s in range(0, len(texts), batch):
        with conn.transaction():
            conn.execute(
                sql.SQL("INSERT INTO {} (key, content) SELECT * FROM unnest(%s::text[], %s::text[])").format(lay.table),
                [keys[s : s + batch], texts[s : s + batch]],
            )
    seconds = time.perf_counter() - started
    vacuum(conn, lay)
    assert conn.execute(bm25.verify_statement(lay.table_name)).fetchall() == []
    return seconds


def sizes(conn: psycopg.Connection, table_name: str) -> dict[str, Any]:
    """{relation: {table, indexes: {name: bytes}}} for the collection table and the side tables."""
    names = bm25.Names(table_name)
    out: dict[str, Any] = {}
    for label, rel in (
        ("collection", table_name),
        ("postings", names.postings),
        ("df", names.df),
        ("stats", names.stats),
    ):
        reg = f"semsearch.{rel}"
        table = (conn.execute("SELECT pg_table_size(%s::regclass)", [reg]).fetchone() or (0,))[0]
        idx = conn.execute(
            "SELECT c.relname, a.amname, pg_relation_size(c.oid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.indrelid = %s::regclass ORDER BY 1",
            [reg],
        ).fetchall()
        out[label] = {"table": table, "indexes": {n: {"am": am, "bytes": b} for n, am, b in idx}}
    return out


def summary(s: dict[str, Any], rows: int) -> dict[str, Any]:
    col = s["collection"]
    gin = sum(i["bytes"] for i in col["indexes"].values() if i["am"] == "gin")
    col_other = sum(i["bytes"] for i in col["indexes"].values() if i["am"] != "gin")
    side = {k: s[k]["table"] + sum(i["bytes"] for i in s[k]["indexes"].values()) for k in ("postings", "df", "stats")}
    side_total = sum(side.values())
    per = lambda b: round(b / max(rows, 1), 1)  # noqa: E731
    return {
        "rows": rows,
        "bytes_per_doc": {
            "collection_table (heap+toast)": per(col["table"]),
            "collection_gin": per(gin),
            "collection_other_indexes": per(col_other),
            "postings_heap": per(s["postings"]["table"]),
            "postings_pkey": per(side["postings"] - s["postings"]["table"]),
            "df_total": per(side["df"]),
            "stats_total": per(side["stats"]),
            "side_tables_total": per(side_total),
        },
        "side_tables_over_collection_table": round(side_total / max(col["table"] + gin + col_other, 1), 3),
        "side_tables_over_gin": round(side_total / max(gin, 1), 2),
    }


def corpus(conn: psycopg.Connection, name: str, keys: list[str], texts: list[str], batch: int) -> dict[str, Any]:
    seconds = load(conn, name, keys, texts, batch)
    lay = layout(name)
    names = bm25.Names(lay.table_name)
    count = sql.SQL("SELECT count(*) FROM {}").format(names.ident(names.postings))
    postings = (conn.execute(count).fetchone() or (0,))[0]
    as_loaded = sizes(conn, lay.table_name)
    started = time.perf_counter()
    with conn.transaction():
        for stmt in bm25.rewrite_statements(lay.table_name):
            conn.execute(stmt)
    rewrite_seconds = time.perf_counter() - started
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(names.ident(names.postings)))
    packed = sizes(conn, lay.table_name)
    out = {
        "rows": len(texts),
        "postings": postings,
        "postings_per_doc": round(postings / len(texts), 1),
        "load_seconds": round(seconds, 1),
        "key_rewrite_seconds": round(rewrite_seconds, 1),
        "as_loaded": {"summary": summary(as_loaded, len(texts)), "relations": as_loaded},
        "key_rewritten": {"summary": summary(packed, len(texts)), "relations": packed},
    }
    conn.execute(sql.SQL("DROP TABLE {}").format(lay.table))
    for stmt in bm25.drop_statements(lay.table_name):
        conn.execute(stmt)
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# BM25 statistics: bytes per document against the GIN index and the collection table",
        "",
        f"`{res['command']}`, {res['date']}; {res['batch']} rows per INSERT statement (as add_many writes).",
        "",
        "| corpus | docs | postings/doc | collection heap+toast | GIN | other collection indexes "
        "| postings heap | postings pkey | df | side tables / collection (table+indexes) | key rewrite s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in res["corpora"].items():
        for state in ("as_loaded", "key_rewritten"):
            s = c[state]["summary"]
            b = s["bytes_per_doc"]
            lines.append(
                f"| {name} ({state.replace('_', ' ')}) | {c['rows']} | {c['postings_per_doc']} "
                f"| {b['collection_table (heap+toast)']} | {b['collection_gin']} | {b['collection_other_indexes']} "
                f"| {b['postings_heap']} | {b['postings_pkey']} | {b['df_total']} "
                f"| {s['side_tables_over_collection_table']} "
                f"| {c['key_rewrite_seconds'] if state != 'as_loaded' else ''} |"
            )
    return "\n".join(lines) + "\n\nBytes per document except the last column.\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="*", default=[5000, 250_000])
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--out", default="bench/results/bm25_cost")
    args = ap.parse_args()
    url = embedded_url(Settings.from_env().data_dir, database="semsearch_bm25_bench")
    migrate.upgrade(url)
    data = load_cranfield()
    res: dict[str, Any] = {
        "command": "python bench/bm25_cost.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "batch": args.batch,
        "corpora": {},
    }
    with psycopg.connect(url, autocommit=True) as conn:
        res["server"] = (conn.execute("SELECT version()").fetchone() or ("",))[0]
        res["corpora"]["cranfield"] = corpus(conn, "bench_cost_cran", data["doc_ids"], data["doc_texts"], args.batch)
        print(markdown(res), flush=True)
        for n in args.rows:
            texts = synthetic(data["doc_texts"], n)
            res["corpora"][f"synthetic {n // 1000}k"] = corpus(
                conn, "bench_cost_syn", [f"d{i}" for i in range(n)], texts, args.batch
            )
            print(markdown(res), flush=True)
    Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")
    Path(args.out + ".md").write_text(markdown(res))


if __name__ == "__main__":
    main()
