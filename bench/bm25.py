"""BM25 (semsearch.bm25) against 0.1.0's ts_rank text search: latency, nDCG@10, storage, load speed.

    SEMSEARCH_DATA_DIR=/tmp/ss-bm25 .venv/bin/python bench/bm25.py [--rows 100000] [--out bench/results/bm25.json]

Corpora (both in collection tables made by semsearch's own DDL, english config):

- cranfield: the 1,400 Cranfield docs (title + abstract, as benchdata.cranfield reads
  them), its 225 queries and judgments: nDCG@10 and latency.
- synthetic (``--rows``, 100k by default): Cranfield docs repeated with perturbations,
  so that term statistics look like real text: copy c of doc d keeps each word with
  probability 0.8 and gets 3 words drawn from the whole corpus inserted at random
  places, plus a copy tag; the 225 Cranfield queries run against it (latency only).

Latency: the same prepared statements as the library would run, k = 10, every query
once untimed, then both methods per query back to back in alternating order (so
drift hits both alike), after VACUUM ANALYZE of every table. Storage: heap + indexes
+ TOAST of the three BM25 tables over the row count. Load: one COPY of all rows
into an empty collection table, with and without the statistics triggers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from benchdata import cranfield  # bench/ is on sys.path when run as a script
from psycopg import sql

from semsearch import bm25, migrate
from semsearch.config import Settings
from semsearch.embedded import embedded_url
from semsearch.evaluate import ndcg
from semsearch.layout import Layout
from semsearch.plans import Plan

ROOT = Path(__file__).resolve().parents[1]
DIMS = 256  # a realistic row: the collection has an embedding column (left NULL here, as with defer=True)


def load_cranfield() -> dict[str, Any]:
    """benchdata's parser on the repository's copy (the docs file is gzipped there)."""
    src = ROOT / "tests" / "data" / "cranfield"
    tmp = Path(tempfile.mkdtemp(prefix="cranfield-"))
    with gzip.open(src / "cran.all.1400.gz", "rb") as f:
        (tmp / "cran.all.1400").write_bytes(f.read())
    for name in ("cran.qry", "cranqrel"):
        (tmp / name).write_bytes((src / name).read_bytes())
    return cranfield(tmp)


def synthetic(texts: list[str], rows: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = [w for t in texts for w in t.split()]
    out = []
    for i in range(rows):
        words = [w for w in texts[i % len(texts)].split() if rng.random() < 0.8]
        for _ in range(3):
            words.insert(rng.randint(0, len(words)), rng.choice(vocab))
        out.append(" ".join(words) + f" copy{i // len(texts)}")
    rng.shuffle(out)
    return out


def layout(name: str) -> Layout:
    return Layout(name, dims=DIMS, storage="vector", plan=Plan.parse("halfvec", dims=DIMS))


def create(conn: psycopg.Connection, lay: Layout, *, stats: bool) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(lay.table))
    for stmt in bm25.drop_statements(lay.table_name):
        conn.execute(stmt)
    with conn.transaction():
        conn.execute(lay.create_table_sql())
        for stmt in lay.secondary_indexes_sql():
            conn.execute(stmt)
        if stats:
            for stmt in bm25.create_statements(lay.table_name) + bm25.backfill_statements(lay.table_name):
                conn.execute(stmt)


def copy(conn: psycopg.Connection, lay: Layout, keys: list[str], texts: list[str]) -> float:
    """Seconds for one COPY of all rows (in one transaction, committed)."""
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor().copy(sql.SQL("COPY {} (key, content) FROM STDIN").format(lay.table)) as cp:
        for k, t in zip(keys, texts, strict=True):
            cp.write_row((k, t))
    return time.perf_counter() - t0


def vacuum(conn: psycopg.Connection, lay: Layout) -> None:
    names = bm25.Names(lay.table_name)
    for t in (lay.table_name, names.postings, names.df, names.stats):
        if conn.execute("SELECT to_regclass(%s)", [f"semsearch.{t}"]).fetchone() != (None,):
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier("semsearch", t)))


def ts_rank_statement(lay: Layout) -> sql.Composed:
    """0.1.0's text search, as ``Layout.text_sql`` without the filter and the array wrapping."""
    return sql.SQL(
        "SELECT key, content, ts_rank(tsv, q, 1)::float8 AS score, metadata "
        "FROM {t}, semsearch.any_words({cfg}::regconfig, %(text)s::text) q "
        "WHERE tsv @@ q ORDER BY score DESC, id LIMIT %(k)s"
    ).format(t=lay.table, cfg=sql.Literal(lay.text_config))


def latency(
    conn: psycopg.Connection, lay: Layout, queries: list[str], rounds: int = 1, warm: int | None = None
) -> dict[str, Any]:
    """Timings of both methods; ``_keys`` holds each method's top-10 keys from the untimed warm-up pass."""
    stmts = {"ts_rank": ts_rank_statement(lay), "bm25": bm25.search_statement(lay.table_name, lay.text_config)}
    params = [{"text": q, "k": 10, "k1": bm25.K1, "b": bm25.B} for q in queries]
    keys: dict[str, list[list[str]]] = {m: [] for m in stmts}
    for m, s in stmts.items():  # warm-up: caches, and psycopg prepares the statements
        for p in params[:warm]:
            keys[m].append([r[0] for r in conn.execute(s, p, prepare=True)])
    times: dict[str, list[float]] = {m: [] for m in stmts}
    order = list(stmts)
    for _ in range(rounds):
        for p in params:
            order.reverse()
            for m in order:
                t0 = time.perf_counter()
                conn.execute(stmts[m], p, prepare=True).fetchall()
                times[m].append((time.perf_counter() - t0) * 1000)
    out: dict[str, Any] = {}
    for m, ts in times.items():
        qs = statistics.quantiles(ts, n=20)
        out[m] = {
            "p50_ms": round(statistics.median(ts), 3),
            "p95_ms": round(qs[18], 3),
            "mean_ms": round(sum(ts) / len(ts), 3),
        }
    out["searches_per_method"] = len(times["bm25"])
    out["_keys"] = keys
    return out


def storage(conn: psycopg.Connection, lay: Layout) -> dict[str, Any]:
    names = bm25.Names(lay.table_name)
    q = "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)"
    out: dict[str, Any] = {}
    total = 0
    for t in (names.postings, names.df, names.stats):
        rel = f"semsearch.{t}"
        all_b, heap = conn.execute(q, [rel, rel]).fetchone() or (0, 0)
        out[t.rsplit("_", 1)[1]] = {"total_bytes": all_b, "heap_bytes": heap}
        total += all_b
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(lay.table)).fetchone()
    postings = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(names.ident(names.postings))).fetchone()
    tsv = conn.execute(sql.SQL("SELECT avg(pg_column_size(tsv)) FROM {}").format(lay.table)).fetchone()
    n = rows[0] if rows else 0
    out.update(
        rows=n,
        postings=postings[0] if postings else 0,
        postings_per_row=round((postings[0] if postings else 0) / max(n, 1), 1),
        bytes_per_row=round(total / max(n, 1), 1),
        collection_table_bytes_per_row=round(
            (
                conn.execute("SELECT pg_total_relation_size(%s::regclass)", [f"semsearch.{lay.table_name}"]).fetchone()
                or (0,)
            )[0]
            / max(n, 1),
            1,
        ),
        avg_tsv_bytes=round(float(tsv[0]), 1) if tsv and tsv[0] is not None else None,
    )
    return out


def concurrent_writers(url: str, lay: Layout, texts: list[str], slots: int, seconds: float = 4.0) -> dict[str, Any]:
    """Two connections upserting overlapping keys for ``seconds`` (transactions of three 20-row upserts
    2 ms apart): committed rows/s. With one slot a transaction waits for the other to commit."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(lay.table))
        for stmt in bm25.drop_statements(lay.table_name):
            conn.execute(stmt)
        with conn.transaction():
            conn.execute(lay.create_table_sql())
            for stmt in lay.secondary_indexes_sql():
                conn.execute(stmt)
            for stmt in bm25.create_statements(lay.table_name, slots=slots):
                conn.execute(stmt)
    done = [0, 0]
    deadlocks = [0, 0]
    stop = time.perf_counter() + seconds
    upsert = sql.SQL(
        "INSERT INTO {} (key, content) SELECT * FROM unnest(%s::text[], %s::text[]) "
        "ON CONFLICT (key) DO UPDATE SET content = excluded.content"
    ).format(lay.table)

    def work(i: int) -> None:
        rng = random.Random(i)
        with psycopg.connect(url, autocommit=True) as conn:
            while time.perf_counter() < stop:
                batches = [sorted({f"k{rng.randrange(5000)}" for _ in range(20)}) for _ in range(3)]
                try:
                    with conn.transaction():  # 3 statements, with the application's work between them
                        for keys in batches:
                            conn.execute(upsert, [keys, [rng.choice(texts) for _ in keys]])
                            time.sleep(0.002)
                    done[i] += sum(len(k) for k in batches)
                except psycopg.errors.DeadlockDetected:
                    deadlocks[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        exact = conn.execute(bm25.verify_statement(lay.table_name)).fetchall() == []
        conn.execute(sql.SQL("DROP TABLE {}").format(lay.table))
        for stmt in bm25.drop_statements(lay.table_name):
            conn.execute(stmt)
    return {"slots": slots, "rows_per_s": round(sum(done) / elapsed), "deadlocks": sum(deadlocks), "exact": exact}


def touch(conn: psycopg.Connection, lay: Layout) -> float:
    """Seconds for an UPDATE of every row that leaves the text alone (metadata here; embeddings alike)."""
    t0 = time.perf_counter()
    with conn.transaction():
        conn.execute(sql.SQL("UPDATE {} SET metadata = '{{\"touched\": true}}'").format(lay.table))
    return time.perf_counter() - t0


def corpus(conn: psycopg.Connection, name: str, keys: list[str], texts: list[str]) -> dict[str, Any]:
    """Load ``texts`` without and with the triggers; returns load speeds and storage (table left loaded)."""
    lay = layout(name)
    create(conn, lay, stats=False)
    plain_s = copy(conn, lay, keys, texts)
    vacuum(conn, lay)
    plain_touch_s = touch(conn, lay)
    create(conn, lay, stats=True)
    stats_s = copy(conn, lay, keys, texts)
    vacuum(conn, lay)
    assert conn.execute(bm25.verify_statement(lay.table_name)).fetchall() == []
    touch_s = touch(conn, lay)
    vacuum(conn, lay)
    return {
        "rows": len(texts),
        "copy_rows_per_s": {"without_stats": round(len(texts) / plain_s), "with_stats": round(len(texts) / stats_s)},
        "copy_seconds": {"without_stats": round(plain_s, 2), "with_stats": round(stats_s, 2)},
        "update_metadata_all_rows_s": {"without_stats": round(plain_touch_s, 2), "with_stats": round(touch_s, 2)},
        "storage": storage(conn, lay),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2, help="timed passes over the 225 queries per corpus")
    ap.add_argument("--out", default="bench/results/bm25.json")
    args = ap.parse_args()
    started = time.perf_counter()
    url = embedded_url(Settings.from_env().data_dir, database="semsearch_bm25_bench")
    migrate.upgrade(url)
    data = load_cranfield()
    queries = [" ".join(q.split()) for q in data["queries"]]
    result: dict[str, Any] = {
        "server": "",
        "method": __doc__.split("\n\n", 2)[2].strip() if __doc__ else "",
        "k1": bm25.K1,
        "b": bm25.B,
        "slots": bm25.SLOTS,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        result["server"] = (conn.execute("SELECT version()").fetchone() or ("",))[0]
        # --- Cranfield: nDCG and latency
        cr = corpus(conn, "bench_bm25_cran", data["doc_ids"], data["doc_texts"])
        lat = latency(conn, layout("bench_bm25_cran"), queries, rounds=args.rounds)
        keys = lat.pop("_keys")
        scores: dict[str, list[float]] = {m: [] for m in keys}
        for n in range(1, len(queries) + 1):
            gains = data["qrels"].get(n)
            if gains:
                for m in keys:
                    scores[m].append(ndcg(keys[m][n - 1], gains))
        cr["ndcg_at_10"] = {m: round(sum(v) / len(v), 4) for m, v in scores.items()}
        cr["judged_queries"] = len(scores["bm25"])
        cr["latency"] = lat
        result["cranfield"] = cr
        print("cranfield done", json.dumps(cr["ndcg_at_10"]), flush=True)
        conn.execute(sql.SQL("DROP TABLE {}").format(layout("bench_bm25_cran").table))
        for stmt in bm25.drop_statements("col_bench_bm25_cran"):
            conn.execute(stmt)
        # --- the synthetic corpus: latency, storage, load speed
        texts = synthetic(data["doc_texts"], args.rows)
        sy = corpus(conn, "bench_bm25_syn", [f"d{i}" for i in range(len(texts))], texts)
        lat = latency(conn, layout("bench_bm25_syn"), queries, rounds=args.rounds, warm=20)
        lat.pop("_keys")
        sy["latency"] = lat
        sy["corpus"] = "Cranfield docs repeated, each copy keeping 80% of its words plus 3 random corpus words"
        result["synthetic"] = sy
        print("synthetic done", flush=True)
        conn.execute(sql.SQL("DROP TABLE {}").format(layout("bench_bm25_syn").table))
        for stmt in bm25.drop_statements("col_bench_bm25_syn"):
            conn.execute(stmt)
    # --- two concurrent writers: one slot (every writer waits for the other) vs the default
    result["concurrent_upserts"] = [
        concurrent_writers(url, layout("bench_bm25_conc"), data["doc_texts"], slots) for slots in (1, bm25.SLOTS)
    ]
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def table(r: dict[str, Any]) -> str:
    lines = [f"{'':38} {'cranfield':>14} {'synthetic':>14}"]
    c, s = r["cranfield"], r["synthetic"]

    def row(label: str, a: Any, b: Any) -> None:
        lines.append(f"{label:38} {a!s:>14} {b!s:>14}")

    row("rows", c["rows"], s["rows"])
    for m in ("ts_rank", "bm25"):
        row(
            f"{m} p50 / p95 ms",
            f"{c['latency'][m]['p50_ms']} / {c['latency'][m]['p95_ms']}",
            f"{s['latency'][m]['p50_ms']} / {s['latency'][m]['p95_ms']}",
        )
    row("nDCG@10 ts_rank / bm25", f"{c['ndcg_at_10']['ts_rank']} / {c['ndcg_at_10']['bm25']}", "-")
    row("bm25 tables bytes/row", c["storage"]["bytes_per_row"], s["storage"]["bytes_per_row"])
    row(
        "collection table bytes/row",
        c["storage"]["collection_table_bytes_per_row"],
        s["storage"]["collection_table_bytes_per_row"],
    )
    row("postings/row", c["storage"]["postings_per_row"], s["storage"]["postings_per_row"])
    for k in ("without_stats", "with_stats"):
        row(f"COPY rows/s {k}", c["copy_rows_per_s"][k], s["copy_rows_per_s"][k])
    for k in ("without_stats", "with_stats"):
        row(f"UPDATE metadata all rows s {k}", c["update_metadata_all_rows_s"][k], s["update_metadata_all_rows_s"][k])
    for cw in r["concurrent_upserts"]:
        lines.append(
            f"2 writers, slots={cw['slots']}: {cw['rows_per_s']} rows/s, deadlocks {cw['deadlocks']}, "
            f"exact {cw['exact']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
