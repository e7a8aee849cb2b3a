"""What ``semsearch.search()``'s DEBUG plan message (migration 0009) costs per search, against a search.

The message is built (``jsonb_build_object``) on every call, sent only to a client that asked
(``client_min_messages = debug1``). Measured: a plpgsql loop running that RAISE 20,000 times against
the same loop without it, and a filtered ``semsearch.search()`` on 5,000 rows; rounds interleaved,
medians.

    python bench/plan_debug.py          # ~1 min on the embedded server (SEMSEARCH_DATA_DIR)
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
from pgvector import Vector

import semsearch
from semsearch.embedded import embedded_url

LOOPS, ROWS, DIMS, ROUNDS, SEARCHES = 20_000, 5_000, 64, 7, 200
RESULT = Path(__file__).resolve().parent / "results" / "plan_debug.json"

LOOP = """DO $$ DECLARE f jsonb := '{"contains": {"half": true}}'; BEGIN FOR i IN 1..%s LOOP %s END LOOP; END $$"""
RAISE = (
    "RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', 'col_x' || '_ann', 'k', i, "
    "'candidates', i, 'spec', f, 'settings', jsonb_strip_nulls(jsonb_build_object('hnsw.ef_search', "
    "i::text, 'hnsw.iterative_scan', 'relaxed_order')));"
)


def main() -> None:
    import psycopg

    from semsearch.config import Settings

    server = embedded_url(Settings.from_env().data_dir, database="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS semsearch_bench_plan")
        conn.execute("CREATE DATABASE semsearch_bench_plan")
    db = semsearch.connect(embedded_url(Settings.from_env().data_dir, database="semsearch_bench_plan"), upgrade=True)
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(ROWS, DIMS))
    col = db.create_collection("b", dims=DIMS, model="label", compression="halfvec")
    col.add([f"r{i}" for i in range(ROWS)], [f"row {i}" for i in range(ROWS)], embeddings=vectors,
            metadata=[{"half": i % 2 == 0} for i in range(ROWS)])  # fmt: skip
    q = Vector(vectors[3].astype(np.float32))
    with_raise, without, search = [], [], []
    with db.connection() as conn:
        conn.execute("ANALYZE semsearch.col_b")
        for _ in range(ROUNDS):
            for body, out in ((RAISE, with_raise), ("NULL;", without)):
                t = time.perf_counter()
                conn.execute(LOOP % (LOOPS, body))
                out.append((time.perf_counter() - t) / LOOPS * 1e6)
            times = []
            for _ in range(SEARCHES):
                t = time.perf_counter()
                conn.execute(
                    "SELECT * FROM semsearch.search('b', %s, 10, filter => '{\"half\": true}')", [q]
                ).fetchall()
                times.append((time.perf_counter() - t) * 1e3)
            search.append(statistics.median(times))
    db.close()
    per_call = statistics.median(with_raise) - statistics.median(without)
    result = {
        "debug_message_us_per_search": round(per_call, 2),
        "filtered_search_p50_ms": round(statistics.median(search), 3),
        "share_of_a_search": round(per_call / 1000 / statistics.median(search), 5),
        "loop_us_with_raise": [round(x, 2) for x in with_raise],
        "loop_us_without": [round(x, 2) for x in without],
        "search_p50_ms_per_round": [round(x, 3) for x in search],
        "rows": ROWS, "dims": DIMS, "loops": LOOPS, "rounds": ROUNDS,
    }  # fmt: skip
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}))


if __name__ == "__main__":
    main()
