"""Candidate layouts of the BM25 postings: bytes per document and text-search p50, same answers.

    SEMSEARCH_DATA_DIR=... python bench/bm25_layouts.py [--rows 50000] [--rounds 2]
                                                        [--out bench/results/bm25_layouts]

One collection table (bench/bm25.py's layout and synthetic corpus, loaded by COPY without
triggers), then the library's side tables by its backfill, then each candidate built from
those postings by plain SQL (no triggers: these are the read side and the bytes only; what
writes would cost is discussed in bench/results/bm25_cost.md). Candidates:

- ``current``: one row per posting ``(id, tf, dl, lexeme)``, key ``(lexeme, id) INCLUDE (tf, dl)``
  (as the backfill leaves it: sorted inserts, pages ~90% full);
- ``rewritten``: ``current``'s postings in a table whose key is built in one pass (what a REINDEX
  leaves; differs from ``current`` only with ``--batch``);
- ``lexid``: a lexicon ``(lexeme, lid int4)``; postings ``(id, lid, tfdl)`` with tf and dl packed in
  one int4 (tf <= 255 by the tsvector's limit), key ``(lid, id) INCLUDE (tfdl)``;
- ``dedup``: postings ``(id, tf, dl, lexeme)`` with no covering key: plain indexes on ``(lexeme)`` and
  ``(id)`` (deduplicated: one key per posting list), the heap in load order (500-row statements);
- ``dl_out``: postings ``(id, tf, lexeme)`` key ``(lexeme, id) INCLUDE (tf)``, lengths once per document
  in ``(id, dl)``;
- ``blocks128`` / ``blocks1024``: one row per lexeme and block of up to 128 / 1024 postings,
  ``(lexeme, first_id, ids int8[], tfdl int4[])`` keyed ``(lexeme, first_id)``; ``blocks1024s``
  reads the same table with ``unnest`` in the select list instead of in FROM.

``--batch N`` loads by INSERT statements of N rows with the statistics triggers on (as
``add_many`` writes), so ``current`` is the key as such loads leave it.

Latency: the library's unfiltered BM25 top-10 statement with only the postings source swapped, every
candidate on each of the 225 Cranfield queries in turn (interleaved, order rotated), prepared, after
one untimed pass; medians. Every candidate's top 10 (keys and scores) is checked equal to ``current``'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from bm25 import copy, create, layout, load_cranfield, synthetic, vacuum  # bench/ is on sys.path as a script
from psycopg import sql

from semsearch import bm25, migrate
from semsearch.config import Settings
from semsearch.embedded import embedded_url

T = "col_bench_layouts"
P = f"{T}_bm25p"

BUILD: dict[str, list[str]] = {
    "rewritten": [
        "CREATE TABLE semsearch.rw_p (id bigint NOT NULL, tf int NOT NULL, dl int NOT NULL, "
        'lexeme text COLLATE "C" NOT NULL)',
        f"INSERT INTO semsearch.rw_p SELECT id, tf, dl, lexeme FROM semsearch.{P} ORDER BY lexeme, id",
        "ALTER TABLE semsearch.rw_p ADD PRIMARY KEY (lexeme, id) INCLUDE (tf, dl)",
    ],
    "lexid": [
        'CREATE TABLE semsearch.lx_lex (lexeme text COLLATE "C" PRIMARY KEY, lid int NOT NULL)',
        "INSERT INTO semsearch.lx_lex SELECT lexeme, row_number() OVER (ORDER BY lexeme) "
        f"FROM (SELECT DISTINCT lexeme FROM semsearch.{P}) d",
        "CREATE TABLE semsearch.lx_p (id bigint NOT NULL, lid int NOT NULL, tfdl int NOT NULL)",
        "INSERT INTO semsearch.lx_p SELECT p.id, l.lid, p.dl * 256 + p.tf "
        f"FROM semsearch.{P} p JOIN semsearch.lx_lex l USING (lexeme) ORDER BY l.lid, p.id",
        "ALTER TABLE semsearch.lx_p ADD PRIMARY KEY (lid, id) INCLUDE (tfdl)",
    ],
    "dedup": [
        "CREATE TABLE semsearch.dd_p (id bigint NOT NULL, tf int NOT NULL, dl int NOT NULL, "
        'lexeme text COLLATE "C" NOT NULL)',
        f"INSERT INTO semsearch.dd_p SELECT id, tf, dl, lexeme FROM semsearch.{P} ORDER BY id / 500, lexeme, id",
        "CREATE INDEX dd_p_lexeme ON semsearch.dd_p (lexeme)",
        "CREATE INDEX dd_p_id ON semsearch.dd_p (id)",
    ],
    "dl_out": [
        'CREATE TABLE semsearch.do_p (id bigint NOT NULL, tf int NOT NULL, lexeme text COLLATE "C" NOT NULL)',
        f"INSERT INTO semsearch.do_p SELECT id, tf, lexeme FROM semsearch.{P} ORDER BY lexeme, id",
        "ALTER TABLE semsearch.do_p ADD PRIMARY KEY (lexeme, id) INCLUDE (tf)",
        "CREATE TABLE semsearch.do_len (id bigint PRIMARY KEY, dl int NOT NULL)",
        f"INSERT INTO semsearch.do_len SELECT DISTINCT id, dl FROM semsearch.{P} ORDER BY id",
    ],
}
for size in (128, 1024):
    BUILD[f"blocks{size}"] = [
        f'CREATE TABLE semsearch.bk{size} (lexeme text COLLATE "C" NOT NULL, first_id bigint NOT NULL, '
        f"ids bigint[] NOT NULL, tfdl int[] NOT NULL, PRIMARY KEY (lexeme, first_id))",
        f"INSERT INTO semsearch.bk{size} SELECT lexeme, min(id), array_agg(id ORDER BY id), "
        f"array_agg(dl * 256 + tf ORDER BY id) FROM (SELECT *, (row_number() OVER (PARTITION BY lexeme ORDER BY id) "
        f"- 1) / {size} AS blk FROM semsearch.{P}) b GROUP BY lexeme, blk ORDER BY lexeme, min(id)",
    ]
RELATIONS = {
    "current": [P],
    "rewritten": ["rw_p"],
    "lexid": ["lx_lex", "lx_p"],
    "dedup": ["dd_p"],
    "dl_out": ["do_p", "do_len"],
    "blocks128": ["bk128"],
    "blocks1024": ["bk1024"],
    "blocks1024s": ["bk1024"],
}
# (id, tf, dl) of the postings of the lexeme w.lexeme
SOURCE = {
    "current": f"SELECT p.id, p.tf, p.dl FROM semsearch.{P} p WHERE p.lexeme = w.lexeme OFFSET 0",
    "rewritten": "SELECT p.id, p.tf, p.dl FROM semsearch.rw_p p WHERE p.lexeme = w.lexeme OFFSET 0",
    "lexid": "SELECT p.id, p.tfdl & 255 AS tf, p.tfdl >> 8 AS dl FROM semsearch.lx_p p "
    "WHERE p.lid = (SELECT l.lid FROM semsearch.lx_lex l WHERE l.lexeme = w.lexeme) OFFSET 0",
    "dedup": "SELECT p.id, p.tf, p.dl FROM semsearch.dd_p p WHERE p.lexeme = w.lexeme OFFSET 0",
    "dl_out": "SELECT p.id, p.tf, l.dl FROM semsearch.do_p p JOIN semsearch.do_len l ON l.id = p.id "
    "WHERE p.lexeme = w.lexeme OFFSET 0",
    "blocks128": "SELECT u.id, u.x & 255 AS tf, u.x >> 8 AS dl FROM semsearch.bk128 b, unnest(b.ids, b.tfdl) u(id, x) "
    "WHERE b.lexeme = w.lexeme OFFSET 0",
    "blocks1024": "SELECT u.id, u.x & 255 AS tf, u.x >> 8 AS dl FROM semsearch.bk1024 b, "
    "unnest(b.ids, b.tfdl) u(id, x) WHERE b.lexeme = w.lexeme OFFSET 0",
    # unnest in the select list: a ProjectSet streams the arrays (no tuplestore per block)
    "blocks1024s": "SELECT u.id, u.x & 255 AS tf, u.x >> 8 AS dl FROM (SELECT unnest(b.ids) AS id, unnest(b.tfdl) AS x "
    "FROM semsearch.bk1024 b WHERE b.lexeme = w.lexeme) u OFFSET 0",
}


def statement(source: str) -> sql.Composed:
    """The library's unfiltered statement with the postings subquery replaced by ``source``."""
    lib = bm25.search_statement(T, "english").as_string(None)
    old = SOURCE["current"].replace("semsearch.", '"semsearch".').replace(P, f'"{P}"')
    assert old in lib, "the library's postings subquery moved: update SOURCE['current']"
    return sql.SQL(lib.replace(old, source))  # type: ignore[arg-type]  # bench only: fixed texts above


def sizes(conn: psycopg.Connection) -> dict[str, int]:
    common = sum(
        (conn.execute("SELECT pg_total_relation_size(%s::regclass)", [f"semsearch.{t}"]).fetchone() or (0,))[0]
        for t in (f"{T}_bm25d", f"{T}_bm25s")
    )
    out = {"df+stats": common}
    for name, rels in RELATIONS.items():
        out[name] = common + sum(
            (conn.execute("SELECT pg_total_relation_size(%s::regclass)", [f"semsearch.{r}"]).fetchone() or (0,))[0]
            for r in rels
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="load by INSERTs of this many rows with the triggers on")
    ap.add_argument("--out", default="bench/results/bm25_layouts")
    args = ap.parse_args()
    url = embedded_url(Settings.from_env().data_dir, database="semsearch_bm25_bench")
    migrate.upgrade(url)
    data = load_cranfield()
    queries = [" ".join(q.split()) for q in data["queries"]]
    texts = synthetic(data["doc_texts"], args.rows) if args.rows else data["doc_texts"]
    lay = layout("bench_layouts")
    res: dict[str, Any] = {
        "command": "python bench/bm25_layouts.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": len(texts),
        "load": f"INSERT statements of {args.batch} rows, triggers on" if args.batch else "COPY, then backfill",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for rels in RELATIONS.values():
            for r in rels:
                if r != P:
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("semsearch", r)))
        keys = [f"d{i}" for i in range(len(texts))]
        if args.batch:  # as add_many writes: the key grows by one statement's postings at a time
            create(conn, lay, stats=True)
            insert = sql.SQL("INSERT INTO {} (key, content) SELECT * FROM unnest(%s::text[], %s::text[])")
            for s in range(0, len(texts), args.batch):
                conn.execute(insert.format(lay.table), [keys[s : s + args.batch], texts[s : s + args.batch]])
        else:
            create(conn, lay, stats=False)
            copy(conn, lay, keys, texts)
            with conn.transaction():
                for stmt in bm25.create_statements(lay.table_name) + bm25.backfill_statements(lay.table_name):
                    conn.execute(stmt)
        for steps in BUILD.values():
            for s in steps:
                conn.execute(s)  # type: ignore[arg-type]  # bench only: fixed texts above
        vacuum(conn, lay)
        for rels in RELATIONS.values():
            for r in rels:
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier("semsearch", r)))
        collection = (
            conn.execute("SELECT pg_total_relation_size(%s::regclass)", [f"semsearch.{T}"]).fetchone() or (0,)
        )[0]
        sz = sizes(conn)
        res["bytes_per_doc"] = {k: round(v / len(texts), 1) for k, v in sz.items()}
        res["collection_bytes_per_doc"] = round(collection / len(texts), 1)
        res["over_collection"] = {k: round(v / collection, 3) for k, v in sz.items() if k != "df+stats"}
        print(json.dumps(res, indent=1), flush=True)
        stmts = {name: statement(src) for name, src in SOURCE.items()}
        params = [{"text": q, "k": 10, "k1": bm25.K1, "b": bm25.B} for q in queries]
        answers: dict[str, list[Any]] = {m: [] for m in stmts}
        for m, s in stmts.items():
            for p in params:
                answers[m].append([(r[0], round(float(r[2]), 9)) for r in conn.execute(s, p, prepare=True)])
        res["same_answers"] = {m: answers[m] == answers["current"] for m in stmts}
        times: dict[str, list[float]] = {m: [] for m in stmts}
        order = list(stmts)
        for _ in range(args.rounds):
            for p in params:
                order = order[1:] + order[:1]
                for m in order:
                    t0 = time.perf_counter()
                    conn.execute(stmts[m], p, prepare=True).fetchall()
                    times[m].append((time.perf_counter() - t0) * 1000)
        res["p50_ms"] = {m: round(statistics.median(t), 3) for m, t in times.items()}
        res["p50_over_current"] = {m: round(res["p50_ms"][m] / res["p50_ms"]["current"], 3) for m in stmts}
        for rels in RELATIONS.values():
            for r in rels:
                if r != P:
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("semsearch", r)))
        conn.execute(sql.SQL("DROP TABLE {}").format(lay.table))
        for stmt in bm25.drop_statements(lay.table_name):
            conn.execute(stmt)
    print(json.dumps(res, indent=1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}_{len(texts) // 1000}k.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
