"""Shared fixtures; the Postgres ones live in tests/plugin_postgres.py (loaded via pytest addopts)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"

# the primary + streaming standby fixture (replica_cluster), started only by the tests that ask for it
pytest_plugins = ["tests.replica_cluster"]


@pytest.fixture(scope="session")
def movies() -> tuple[list[str], np.ndarray, np.ndarray]:
    """62 titles, their real 3-small 1536-dim vectors and the API's 256-dim vectors."""
    full = json.loads((DATA / "movies-es" / "peliculas_text-embedding-3-small-1536.json").read_text())
    short = json.loads((DATA / "movies-es" / "peliculas_text-embedding-3-small-256.json").read_text())
    titles = sorted(full)
    return titles, np.array([full[t] for t in titles]), np.array([short[t] for t in titles])


@pytest.fixture(scope="session")
def cranfield() -> tuple[dict[str, str], list[str]]:
    """Cranfield's documents {id: .W text (or .T)} and its queries in file order (query n is the n-th)."""

    def records(text: str) -> list[dict[str, str]]:
        found = []
        for rec in re.split(r"^\.I ", text, flags=re.M)[1:]:
            parts = re.split(r"^\.([A-Z])\s*$", rec, flags=re.M)
            fields = {tag: " ".join(body.split()) for tag, body in zip(parts[1::2], parts[2::2], strict=True)}
            found.append({"id": parts[0].strip(), **fields})
        return found

    with gzip.open(DATA / "cranfield" / "cran.all.1400.gz", "rt") as f:
        docs = {d["id"]: d.get("W") or d.get("T", "") for d in records(f.read())}
    queries = [q["W"] for q in records((DATA / "cranfield" / "cran.qry").read_text())]
    return {k: v for k, v in docs.items() if v}, queries


@pytest.fixture
def run(db_url):
    """``run("search", "docs", "q")``: the ``semsearch`` command on the test database, in-process.

    ``ok=False`` expects a failure; no traceback may reach the user either way.
    """
    from click.testing import CliRunner

    from semsearch.cli import main

    runner = CliRunner()

    def invoke(*args, input=None, ok=True):
        result = runner.invoke(main, ["--url", db_url, *map(str, args)], input=input, prog_name="semsearch")
        assert (result.exit_code == 0) == ok, result.output
        assert "Traceback" not in result.output
        return result

    return invoke
