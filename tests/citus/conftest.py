"""Fixtures for tests on a real Citus cluster (coordinator + 2 workers), started by ``make test-citus``.

``SEMSEARCH_CITUS_URL`` is the coordinator's URL; without it the run stops at once and says
how to get one (these tests are never skipped). Each test gets collections with names of its
own, dropped afterwards: the cluster's database is shared by the whole run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import semsearch

#: where bench/benchdata.py finds the Jeopardy wheel (downloaded there once, outside the repo)
DATA_CACHE = Path(os.environ.get("SEMSEARCH_DATA_CACHE", "~/.cache/semsearch")).expanduser()


@pytest.fixture(scope="session")
def citus_url() -> str:
    url = os.environ.get("SEMSEARCH_CITUS_URL")
    if not url:
        pytest.exit(
            "tests/citus needs a Citus cluster: run `make test-citus` (SEMSEARCH_CITUS_URL unset)", returncode=3
        )
    return url


@pytest.fixture
def cdb(citus_url: str) -> Iterator[semsearch.Database]:
    """semsearch on the coordinator."""
    database = semsearch.connect(citus_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def fresh(cdb: semsearch.Database, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """``fresh("a")``: a collection name unique to this test, dropped after it."""
    made: list[str] = []
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:24]

    def name(suffix: str) -> str:
        made.append(f"t_{stem}_{suffix}")
        cdb.drop_collection(made[-1], missing_ok=True)
        return made[-1]

    yield name
    for n in made:
        cdb.drop_collection(n, missing_ok=True)


@pytest.fixture(scope="session")
def jeopardy() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """3,000 real ada-002 Jeopardy vectors (base), 100 held-out query vectors, the base's texts."""
    from bench import benchdata

    benchdata.CACHE = DATA_CACHE
    vectors, texts = benchdata.jeopardy_raw()
    order = np.random.default_rng(0).permutation(len(vectors))
    base, queries = order[100:3100], order[:100]
    return vectors[base], vectors[queries], [texts[i] for i in base]
