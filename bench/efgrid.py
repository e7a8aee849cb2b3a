"""Where a ``bit`` plan's time and recall go at scale: candidates x ef_search, against pgvector by hand.

    python bench/efgrid.py --rows 1000000                  # builds once (~35 min on 2 cores), keeps it
    python bench/efgrid.py --rows 1000000 --reuse          # the grid again on the kept database
    python bench/efgrid.py --rows 1000000 --reuse --autotune   # also rerun autotune on the kept collection

A ``bit`` collection's search is a coarse HNSW walk over bits (cost grows with ``hnsw.ef_search``)
and an exact rescore of its ``candidates`` rows against the full vectors (one heap row each, out
of the page cache once the table outgrows shared_buffers). Autotune picks one point of that plane;
this maps the plane. The database (the scale set, bench/benchdata.py, and the baseline: pgvector's
HNSW on ``vector(1536)``, built as bench/sweep.py builds it) is kept between runs (``--reuse``) so
the grid can be remeasured after a change to the tuner without another hour of building.

Per point: recall@10 on the held-out queries (alone); then the points reaching 0.99 are timed
interleaved one query each against the baseline at its own first ef_search reaching 0.99
(``--rounds`` passes, medians, ratio = point p50 / baseline p50 in the same pairing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contenders as ct
import harness as hz
import numpy as np
import psycopg
import querypath as qp
import sweep as sw
from psycopg import sql
from run import library_state

import semsearch
from semsearch.tune import autotune

ROOT = Path(__file__).resolve().parents[1]
NAME = "efgrid_bit"
CANDIDATES = (10, 20, 30, 40, 60, 80, 120, 160)
EFS = (100, 200, 300, 400, 600, 800, 1000)


def existing_rows(conn: psycopg.Connection, table: str) -> int | None:
    """Rows of ``table`` (public schema), or None when it does not exist."""
    if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:  # type: ignore[index]
        return None
    return int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0])  # type: ignore[index]


def build(db: semsearch.Database, url: str, vs: Any, args: argparse.Namespace, out: dict[str, Any]) -> None:
    n, d = vs.base.shape
    with db.connection() as conn:
        have_base = existing_rows(conn, ct.PG_TABLE)
    if have_base != n:
        out["baseline_build"] = sw.baseline(db, url, vs, args)
    if NAME not in {c.name for c in db.collections()}:
        col = db.create_collection(NAME, dims=int(d), model=ct.MODEL, compression="bit")
        started = time.perf_counter()
        got = col.add_many(ct.records(vs.base, vs.texts), bulk=True, progress=True, total=int(n))
        out["collection_build"] = {"add_many_s": round(time.perf_counter() - started, 1), "tuned": str(got.tuned)}
        hz.vacuum(db, ct.table_of(col))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--build-memory", default="9GB", help="maintenance_work_mem of the baseline's build")
    ap.add_argument("--reuse", action="store_true", help="keep what the database already holds")
    ap.add_argument("--autotune", action="store_true", help="rerun autotune on the collection first")
    ap.add_argument("--candidates", default=",".join(map(str, CANDIDATES)))
    ap.add_argument("--efs", default=",".join(map(str, EFS)))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "efgrid")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    vs = sw.dataset(str(args.rows))
    qn = min(args.queries, len(vs.queries))
    queries, truth = np.ascontiguousarray(vs.queries[:qn]), vs.truth[:qn]
    dbname = f"semsearch_efgrid_{vs.name}"
    url = psycopg.conninfo.make_conninfo(hz.bench_server(), dbname=dbname) if args.reuse else hz.bench_database(dbname)
    db = semsearch.connect(url, upgrade=True)
    out: dict[str, Any] = {"rows": int(vs.base.shape[0]), "queries": qn, "command": " ".join(sys.argv)}
    out["library"] = library_state()
    out["started"], out["loadavg_at_start"] = time.strftime("%Y-%m-%d %H:%M:%S %Z"), sw.loadavg()
    build(db, url, vs, args, out)
    col = db.collection(NAME)
    if args.autotune:
        started = time.perf_counter()
        tuned = autotune(col, after_bulk_load=True)
        out["autotune"] = {"result": str(tuned), "seconds": round(time.perf_counter() - started, 1)}
        col = db.collection(NAME)
    info = col.info
    out["stored"] = {"oversample": info.oversample, "ef_search": getattr(info, "ef_search", None)}
    hz.prewarm(db, ct.PG_TABLE)
    hz.prewarm(db, ct.table_of(col))
    conn = hz.connect_raw(url)
    query = qp.BASELINE_SQL.format(sql.Identifier(ct.PG_TABLE), sql.Literal(10))

    def baseline(q: np.ndarray) -> list[int]:
        return [r[0] for r in conn.execute(query, {"q": q}, prepare=True).fetchall()]

    points = qp.sweep(baseline, conn, queries, truth)
    best = hz.smallest_reaching(points, sw.TARGET) or points[-1]
    out["baseline"] = {"sweep": points, "ef_search": int(best["knob"])}
    qp.set_ef(conn, int(best["knob"]))
    sw.log(f"baseline ef_search {best['knob']}; stored {out['stored']}")

    def point(c: int | None, ef: int | None) -> Any:
        over = None if c is None else c / 10

        def run(q: np.ndarray) -> list[int]:
            return [int(h.key) for h in col.search(vector=q, k=10, oversample=over, ef_search=ef)]

        return run

    grid = []
    for c in [int(x) for x in args.candidates.split(",")]:
        for ef in [int(x) for x in args.efs.split(",")]:
            if ef < c:
                continue
            recall = hz.recall_at([point(c, ef)(q) for q in queries], truth)
            grid.append({"candidates": c, "ef_search": ef, "recall": round(recall, 4)})
            sw.log(f"  candidates {c} ef_search {ef}: recall {recall:.4f}")
            if recall >= sw.TARGET:
                break  # a larger ef_search at this count reaches too, and costs more
    timed = [g for g in grid if g["recall"] >= sw.TARGET] + [{"candidates": None, "ef_search": None}]
    for g in timed:
        who = "stored" if g["candidates"] is None else f"c{g['candidates']}_ef{g['ef_search']}"
        runners = {"baseline": baseline, who: point(g["candidates"], g["ef_search"])}
        c = qp.interleave(runners, queries, truth, args.rounds, 0, False, names=("baseline", who))
        g.update(p50_ms=c[who]["p50_ms"], baseline_p50_ms=c["baseline"]["p50_ms"], ratio=c[who]["p50_ratio"])
        g["timed_recall"] = c[who]["recall"]
        sw.log(f"  {who}: p50 {g['p50_ms']} ms, baseline {g['baseline_p50_ms']} ms, ratio {g['ratio']}")
    out["grid"], out["timed"] = grid, timed
    out["loadavg_at_end"] = sw.loadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{vs.name}.json"
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    sw.log(f"wrote {path}")
    conn.close()
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
