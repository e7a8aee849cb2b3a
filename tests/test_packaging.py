"""The built wheel carries the top-level migrations/ and sql/ and works without the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg

from semsearch.catalog import SCHEMA_HEAD

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_upgrades_a_database_and_runs_the_demo(tmp_path, db_url):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("semsearch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "semsearch/migrations/env.py" in names and "semsearch/sql/0002_search.sql" in names
    assert any(n.startswith("semsearch/migrations/versions/0002") for n in names)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
        check=True,
        capture_output=True,
    )
    # the installed package, not the source tree: run from elsewhere with it first on the path
    env = {**os.environ, "PYTHONPATH": str(site)}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA semsearch CASCADE")  # a database that never had semsearch
    code = "import semsearch, sys; sys.argv[0] = 'semsearch'; from semsearch.cli import main; main()"

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code, "--url", db_url, *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import semsearch; print(semsearch.__file__)"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(site))
    assert f"schema at {SCHEMA_HEAD}" in run("db", "upgrade")
    assert "summary: 200 rows" in run("demo", "--rows", "200")
