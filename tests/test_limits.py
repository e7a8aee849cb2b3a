"""What one caller can make the server do: a time limit on every search, a cap on a filter's size.

The time limit is ``statement_timeout``, the search's only (local to its round trip, or its
session's and reset before any other use: tests/test_session_settings.py); a search past it
raises :class:`SearchTimeoutError`, not the driver's ``QueryCanceled``. Filters too big for
the jsonpath parser (the audit's 10,000 ``$or`` branches: "memory exhausted", 20,000: "stack
depth limit exceeded") are refused before a round trip, by the sync and the async API alike.
"""

from __future__ import annotations

import numpy as np
import pytest

import semsearch
import semsearch.aio
from semsearch.config import DEFAULT_SEARCH_TIMEOUT, Settings
from semsearch.errors import ConfigurationError, InvalidInputError, SearchTimeoutError

N = 5000
#: 511 conditions (the cap is 512), compared on every row of an exact scan: ~0.5 s for 5,000 rows
SLOW = {"$or": [{"n": i, "tag": f"t{i}"} for i in range(-255, 0)]}
HUGE = {"$or": [{"n": {"$eq": i}} for i in range(10_000)]}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def vectors():
    return np.random.default_rng(5).normal(size=(N, 8))


@pytest.fixture
def loaded(db, vectors):
    col = db.create_collection("lim", dims=8, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"r{i}", "embedding": v, "metadata": {"n": i}} for i, v in enumerate(vectors))
    return col


def _session_timeout(db) -> str:
    with db.connection() as conn:
        return conn.execute("SHOW statement_timeout").fetchone()[0]


def test_a_search_past_its_time_limit_raises_a_semsearch_error_and_leaves_the_session_alone(db_url, loaded, vectors):
    with semsearch.connect(db_url, search_timeout=0.05, max_connections=1) as db:
        col = db.collection("lim")
        assert db.search_timeout == 0.05
        with pytest.raises(SearchTimeoutError, match=r"search_timeout=0.05 s\), got it canceled") as caught:
            col.search(vector=vectors[0], k=5, exact=True, where=SLOW)
        assert isinstance(caught.value, TimeoutError) and caught.value.__cause__ is None
        # local to the search's round trip: the (only) pooled connection's session has no limit
        assert _session_timeout(db) == "0"
        assert col.search(vector=vectors[3], k=1).keys == ["3"]
        assert col.search(vector=vectors[3], k=1, where={"n": {"$lt": 10}}).keys == ["3"]
    with semsearch.connect(db_url, search_timeout=None) as db:
        assert db.search_timeout is None
        assert len(db.collection("lim").search(vector=vectors[0], k=5, exact=True, where=SLOW)) == 0


@pytest.mark.anyio
async def test_an_async_search_past_its_time_limit_raises_the_same_error(db_url, loaded, vectors):
    async with await semsearch.aio.connect(db_url, search_timeout=0.05, max_connections=1) as adb:
        col = await adb.collection("lim")
        with pytest.raises(SearchTimeoutError, match=r"search_timeout=0.05 s\), got it canceled"):
            await col.search(vector=vectors[0], k=5, exact=True, where=SLOW)
        async with adb.connection() as conn:
            assert (await (await conn.execute("SHOW statement_timeout")).fetchone())[0] == "0"
        assert (await col.search(vector=vectors[3], k=1)).keys == ["3"]
    async with await semsearch.aio.connect(db_url, search_timeout=None) as adb:
        col = await adb.collection("lim")
        assert len(await col.search(vector=vectors[0], k=5, exact=True, where=SLOW)) == 0


def test_the_time_limit_defaults_to_the_environment_setting(db_url, monkeypatch):
    monkeypatch.delenv("SEMSEARCH_SEARCH_TIMEOUT", raising=False)
    assert Settings.from_env().search_timeout == DEFAULT_SEARCH_TIMEOUT == 30
    for given, seconds in (("2.5", 2.5), ("none", None), ("0", None), ("off", None)):
        monkeypatch.setenv("SEMSEARCH_SEARCH_TIMEOUT", given)
        assert Settings.from_env().search_timeout == seconds
    monkeypatch.setenv("SEMSEARCH_SEARCH_TIMEOUT", "2.5")
    with semsearch.connect(db_url) as db:
        assert db.search_timeout == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("SEMSEARCH_SEARCH_TIMEOUT", bad)
        with pytest.raises(ConfigurationError, match="expected"):
            Settings.from_env()
    monkeypatch.delenv("SEMSEARCH_SEARCH_TIMEOUT")
    for bad in (0, -1, True, "5", float("inf")):
        with pytest.raises(ConfigurationError, match="expected search_timeout as seconds > 0, or None"):
            semsearch.connect(db_url, search_timeout=bad)


def test_oversized_filters_are_refused_before_a_round_trip(db, loaded, vectors):
    deep: dict = {"n": 1}
    for _ in range(17):
        deep = {"$not": deep}
    for where, message in ((HUGE, "at most 256 filters in one \\$or, got 10000"), (deep, "nested at most 16")):
        with pytest.raises(InvalidInputError, match=message):
            loaded.search(vector=vectors[0], k=5, where=where)
        with pytest.raises(InvalidInputError, match=message):
            loaded.search("r1", mode="text", where=where)
    # the largest filter allowed runs, and finds what it should
    got = loaded.search(vector=vectors[0], k=300, exact=True, where={"$or": [{"n": i} for i in range(256)]})
    assert sorted(int(k) for k in got.keys) == list(range(256))


@pytest.mark.anyio
async def test_oversized_filters_are_refused_by_the_async_api_too(db_url, loaded, vectors):
    async with await semsearch.aio.connect(db_url) as adb:
        col = await adb.collection("lim")
        with pytest.raises(InvalidInputError, match="at most 256 filters in one \\$or, got 10000"):
            await col.search(vector=vectors[0], k=5, where=HUGE)
