"""Shared fixtures; the Postgres ones live in tests/plugin_postgres.py (loaded via pytest addopts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def movies() -> tuple[list[str], np.ndarray, np.ndarray]:
    """62 titles, their real 3-small 1536-dim vectors and the API's 256-dim vectors."""
    full = json.loads((DATA / "movies-es" / "peliculas_text-embedding-3-small-1536.json").read_text())
    short = json.loads((DATA / "movies-es" / "peliculas_text-embedding-3-small-256.json").read_text())
    titles = sorted(full)
    return titles, np.array([full[t] for t in titles]), np.array([short[t] for t in titles])
