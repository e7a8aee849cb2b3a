"""What a synced table whose rows are documents (``sync_table(..., passages=True)``) costs, and what an edit re-embeds.

    SEMSEARCH_DATA_DIR=/tmp/ss-bench-syncdocs .venv/bin/python bench/sync_documents.py [--rows 2000]
        [--out bench/results/sync_documents.json]

Each row's text is 8 paragraphs (~1,100 characters); the local model (64 dims), the default
splitter (``Splitter(max_tokens=64, overlap=8)``).

1. Writers: the same statements on three identical tables (id, body, price, views), one not
   synced, one synced as whole rows, one synced as documents: COPY of ``--rows`` rows, an
   UPDATE of every row's unsynced column, an UPDATE of 10% of the texts, a DELETE of 10%
   (after a backfill, so the deleted rows' vectors or passages exist). Tables alternate,
   three trials, medians.
2. Backfill: seconds to embed the whole-row collection and to drain the documents' queue
   (split, embed, write), and, after one paragraph of 10% of the rows changed, the texts
   and characters each sends to the embedder and its seconds. Same three trials, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql

import semsearch
from semsearch import Splitter
from semsearch.embeddings.local import LocalEmbedder

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("plain", "rows", "documents")
TOPICS = ["pumps", "valves", "filters", "warranty", "engines", "oil", "boilers", "fans", "wiring", "paint"]


class Counting(LocalEmbedder):
    """The local model, counting the texts it is sent."""

    def __init__(self) -> None:
        super().__init__(dims=64)
        self.sent = self.chars = 0

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.sent += len(texts)
        self.chars += sum(map(len, texts))
        return super().embed_batch(texts)


def body(i: int, edit: bool = False) -> str:
    paragraphs = [
        f"Part {p} of note {i}. It covers {TOPICS[(i + p) % 10]} and {TOPICS[(i * 7 + p) % 10]} in model {i % 97}. "
        f"A second sentence gives the torque, {i % 40 + p} newton metres, and the interval, {p + 3} months."
        for p in range(8)
    ]
    if edit:
        paragraphs[3] += " Revised: the interval is now shorter."
    return "\n\n".join(paragraphs)


def _timed(conn: Any, stmt: sql.Composable) -> float:
    t0 = time.perf_counter()
    conn.execute(stmt)
    return time.perf_counter() - t0


def trial(db: semsearch.Database, n: int, out: dict[str, dict[str, list[float]]]) -> None:
    for kind in KINDS:
        t = sql.Identifier(f"bench_{kind}")
        for s in db.synced_tables():
            if s.collection == kind:
                db.unsync_table(s.table, drop_collection=True)
        with db.connection() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(t))
            conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, body text, price int, views int)").format(t))
        emb = Counting()
        col = None
        split = Splitter(max_tokens=64, overlap=8) if kind == "documents" else None
        if kind != "plain":
            col = db.sync_table(f"bench_{kind}", collection=kind, key="id", text="body", metadata=["price"],
                                embedder=emb, compression="halfvec", passages=split)  # fmt: skip
        got = out.setdefault(kind, {})
        with db.connection() as conn:
            t0 = time.perf_counter()
            with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(t)) as copy:
                for i in range(n):
                    copy.write_row((i, body(i), i % 100, 0))
            got.setdefault("copy_rows_per_s", []).append(n / (time.perf_counter() - t0))
            got.setdefault("update_unsynced_s", []).append(
                _timed(conn, sql.SQL("UPDATE {} SET views = views + 1").format(t))
            )
        if col is not None:
            t0 = time.perf_counter()
            col.backfill()
            got.setdefault("backfill_s", []).append(time.perf_counter() - t0)
            got.setdefault("backfill_texts_embedded", []).append(emb.sent)
        with db.connection() as conn, conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.executemany(
                sql.SQL("UPDATE {} SET body = %s WHERE id = %s").format(t),
                [(body(i, edit=True), i) for i in range(0, n, 10)],
            )
            got.setdefault("update_text_10pct_s", []).append(time.perf_counter() - t0)
        if col is not None:
            emb.sent = emb.chars = 0
            t0 = time.perf_counter()
            col.backfill()
            got.setdefault("edit_backfill_s", []).append(time.perf_counter() - t0)
            got.setdefault("edit_texts_embedded", []).append(emb.sent)
            got.setdefault("edit_characters_embedded", []).append(emb.chars)
        with db.connection() as conn:
            got.setdefault("delete_10pct_s", []).append(
                _timed(conn, sql.SQL("DELETE FROM {} WHERE id % 10 = 5").format(t))
            )
            if col is not None:
                stored = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(col.layout.table)).fetchone()
                got.setdefault("collection_rows_after", []).append(stored[0] if stored else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/sync_documents.json")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[float]]] = {}
    with semsearch.connect() as db:
        for _ in range(3):
            trial(db, args.rows, runs)
        for kind in KINDS:
            for s in db.synced_tables():
                if s.collection == kind:
                    db.unsync_table(s.table, drop_collection=True)
            with db.connection() as conn:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"bench_{kind}")))
    result = {
        "rows": args.rows,
        "characters_per_row": len(body(0)),
        "medians": {k: {m: round(statistics.median(v), 3) for m, v in runs[k].items()} for k in KINDS},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
