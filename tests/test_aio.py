"""semsearch.aio: the sync API's results, errors and round trips, on psycopg's async pool."""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import pq

import semsearch
import semsearch.aio
from semsearch import errors

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def loaded(db, movies):
    """62 movies (real 1536-dim vectors) in a bit-plan collection, with metadata and two tenants."""
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, model="label", compression="bit")
    col.add(
        titles,
        titles,
        embeddings=full,
        metadata=[{"i": i, "even": i % 2 == 0} for i in range(len(titles))],
        tenant=["a" if i % 3 else "b" for i in range(len(titles))],
    )
    return col


def specs(movies) -> list[dict[str, Any]]:
    """One search per mode and option: vector, exact, oversample, ef_search, filters, tenant, text, hybrid."""
    titles, full, _ = movies
    word = max(titles[3].split(), key=len)
    return [
        {"vector": full[3], "k": 5},
        {"vector": full[7], "k": 10, "exact": True},
        {"vector": full[9], "k": 5, "oversample": 2},
        {"vector": full[9], "k": 5, "ef_search": 80},
        {"vector": full[11], "k": 5, "where": {"even": True}},
        {"vector": full[11], "k": 5, "where": {"i": {"$lt": 30}}, "tenant": "a"},
        {"vector": full[11], "k": 5, "exact": True, "tenant": "b"},
        {"query": word, "mode": "text", "k": 5},
        {"query": word, "mode": "text", "k": 5, "where": {"even": False}},
        {"query": word, "mode": "hybrid", "vector": full[3], "k": 5},
        {"query": word, "mode": "hybrid", "vector": full[3], "k": 5, "fusion": "rrf", "vector_weight": 2},
    ]


def answer(result: semsearch.SearchResult) -> list[tuple[str, float, dict[str, Any]]]:
    return [(h.key, h.score, h.metadata) for h in result]


async def test_async_returns_the_sync_keys_and_scores_for_every_mode(db_url, loaded, movies):
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.collection("m")
        for spec in specs(movies):
            expected, got = loaded.search(**spec), await acol.search(**spec)
            assert answer(got) == answer(expected), spec
            assert (got.k, got.exact, got.complete) == (expected.k, expected.exact, expected.complete)
            assert len(got) > 0
        assert await acol.count() == loaded.count() == 62
        assert [i.name for i in await adb.collections()] == [i.name for i in loaded.db.collections()]


async def test_async_writes_are_what_sync_writes_and_embed_through_the_collections_model(db, db_url):
    texts = ["cats purr on the sofa", "dogs bark at the mailman", "a kitten sleeps", "jet engines roar"]
    sync_col = db.create_collection("s", model="local", dims=64)
    sync_added = sync_col.add([f"k{i}" for i in range(4)], texts, metadata=[{"n": i} for i in range(4)])
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.create_collection("a", model="local", dims=64)
        added = await acol.add([f"k{i}" for i in range(4)], texts, metadata=[{"n": i} for i in range(4)])
        assert added == sync_added
        # identical text: its stored vector is reused, not embedded again
        again = await acol.add(["k9"], [texts[0]])
        assert (again.inserted, again.embedded, again.reused) == (1, 0, 1)
        assert await acol.delete(["k9", "nope"]) == 1
        for query in ("a small cat", "loud machines"):
            for mode in ("vector", "hybrid"):
                expected = sync_col.search(query, mode=mode, k=3)
                got = await acol.search(query, mode=mode, k=3)
                assert answer(got) == answer(expected), query
        # what async wrote, sync reads the same
        assert answer(db.collection("a").search("a small cat", k=4)) == answer(sync_col.search("a small cat", k=4))
        many = await acol.add_many(
            ({"key": f"m{i}", "content": f"note {i} about cats"} for i in range(30)), batch_size=7
        )
        assert (many.inserted, await acol.count()) == (30, 34)
        await adb.drop_collection("a")
        assert "a" not in [i.name for i in db.collections()]


async def test_async_add_many_bulk_loads_an_empty_collection_and_rebuilds_its_index(db, db_url, movies):
    titles, full, _ = movies

    async def records():
        for t, v in zip(titles, full, strict=True):
            yield {"key": t, "content": t, "embedding": v}

    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.create_collection("bulk", dims=1536, model="label", compression="bit")
        result = await acol.add_many(records(), batch_size=20)
    assert result.inserted == 62 and result.tuned is None  # under 1,000 rows: no autotune
    with db.connection() as conn:
        assert conn.execute("SELECT to_regclass('semsearch.col_bulk_hnsw') IS NOT NULL").fetchone()[0]
    col = db.collection("bulk")
    assert col.search(vector=full[5], k=1)[0].key == titles[5]


def _outcome(call) -> tuple[type, str]:
    try:
        call()
    except errors.SemsearchError as exc:
        return type(exc), str(exc)
    raise AssertionError("expected an error")


async def _aoutcome(call) -> tuple[type, str]:
    try:
        await call()
    except errors.SemsearchError as exc:
        return type(exc), str(exc)
    raise AssertionError("expected an error")


async def test_async_refuses_what_sync_refuses_with_the_same_errors(db, db_url, loaded, movies):
    _, full, _ = movies
    bad_searches = [
        {"vector": full[0], "k": 0},
        {"vector": full[0], "k": True},
        {"vector": full[0][:10]},
        {"vector": np.zeros(1536)},
        {"vector": full[0], "mode": "fuzzy"},
        {"query": "x", "vector": full[0]},
        {},
        {"vector": full[0], "oversample": 0.5},
        {"vector": full[0], "ef_search": 5000},
        {"vector": full[0], "where": {"$nope": 1}},
        {"vector": full[0], "where": {"i": {"$lt": "x", "$gt": object()}}},
        {"vector": full[0], "tenant": ""},
        {"query": "  ", "mode": "text"},
        {"query": "a\x00b", "mode": "text"},
        {"query": "x", "mode": "text", "fusion": "rrf"},
        {"query": "x", "vector": full[0], "mode": "hybrid", "fusion": "max"},
    ]
    bad_adds = [
        {"keys": ["a", "a"], "contents": ["x", "y"], "embeddings": full[:2]},
        {"keys": ["a"], "contents": [""], "embeddings": full[:1]},
        {"keys": ["a"], "contents": ["x"], "embeddings": full[:2]},
        {"keys": ["a"], "contents": ["x"], "embeddings": full[:1], "metadata": [{"x": math.nan}]},
        {"keys": [True], "contents": ["x"], "embeddings": full[:1]},
        {"keys": "ab", "contents": "xy"},
        {"keys": ["a"], "contents": ["x"], "embeddings": full[:1], "tenant": [""]},
    ]
    db.create_collection("t", dims=1536, model="label", tenant_required=True)
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.collection("m")
        for spec in bad_searches:
            assert await _aoutcome(lambda spec=spec: acol.search(**spec)) == _outcome(
                lambda spec=spec: loaded.search(**spec)
            ), spec
        for spec in bad_adds:
            assert await _aoutcome(lambda spec=spec: acol.add(**spec)) == _outcome(lambda spec=spec: loaded.add(**spec))
        for keys in (None, b"k", [1.5]):
            assert await _aoutcome(lambda keys=keys: acol.delete(keys)) == _outcome(
                lambda keys=keys: loaded.delete(keys)
            )
        tenanted = await adb.collection("t")
        assert await _aoutcome(lambda: tenanted.search(vector=full[0])) == _outcome(
            lambda: db.collection("t").search(vector=full[0])
        )
        assert await _aoutcome(lambda: tenanted.add(["k"], ["x"], embeddings=full[:1])) == _outcome(
            lambda: db.collection("t").add(["k"], ["x"], embeddings=full[:1])
        )
        assert await _aoutcome(lambda: adb.collection("nope")) == _outcome(lambda: db.collection("nope"))
        assert await _aoutcome(lambda: adb.drop_collection("nope")) == _outcome(lambda: db.drop_collection("nope"))
        assert await _aoutcome(lambda: adb.collection("bad name!")) == _outcome(lambda: db.collection("bad name!"))
        create = {"dims": 1536, "model": "label"}
        assert await _aoutcome(lambda: adb.create_collection("m", **create)) == _outcome(
            lambda: db.create_collection("m", **create)
        )
        for bad in ({"model": "local", "dims": 300}, {"dims": 8, "model": "x", "text_config": "klingon"}):
            assert await _aoutcome(lambda bad=bad: adb.create_collection("n", **bad)) == _outcome(
                lambda bad=bad: db.create_collection("n", **bad)
            )
        # nothing was written by any refused call
        assert await acol.count() == 62 and await tenanted.count() == 0
        # a handle whose collection is dropped meanwhile
        db.drop_collection("m")
        assert await _aoutcome(lambda: acol.search(vector=full[0], where={"even": True})) == _outcome(
            lambda: loaded.search(vector=full[0], where={"even": True})
        )
    with pytest.raises(errors.DatabaseError, match="could not connect"):
        await semsearch.aio.connect("postgresql://nobody@127.0.0.1:1/none")


@contextmanager
def traced(pgconn: pq.abc.PGconn, path: Path) -> Iterator[Path]:
    """libpq's protocol trace of one connection while the block runs, into ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    pgconn.trace(fd)
    pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
    try:
        yield path
    finally:
        pgconn.untrace()
        os.close(fd)


def sent(path: Path) -> list[str]:
    """The messages the client sent (statement text, parameters, Sync), prepared names made comparable.

    Flush (send me what you have) is left out: psycopg's async connection sends one more
    of them, which asks for no work and ends no round trip.
    """
    lines = path.read_text().splitlines()
    return [re.sub(r"_pg3_\d+", "_pg3_N", x) for x in lines if x.startswith("F") and not x.endswith("\tFlush")]


def round_trips(path: Path) -> int:
    """Each round trip ends with the server's ReadyForQuery."""
    return sum("\tReadyForQuery" in line for line in path.read_text().splitlines())


async def test_an_async_search_sends_the_sync_statements_in_one_round_trip(db_url, loaded, movies, tmp_path):
    # one connection each, so the traced connection is the one every search uses
    sync_db = semsearch.connect(db_url, max_connections=1)
    async with await semsearch.aio.connect(db_url, max_connections=1) as adb:
        with sync_db.connection() as conn:
            sync_pg = conn.pgconn
        async with adb.connection() as aconn:
            async_pg = aconn.pgconn
        for n, spec in enumerate(specs(movies)):
            # a handle opened just now has checked its catalog row: both skip or send the same check
            col, acol = sync_db.collection("m"), await adb.collection("m")
            for run in ("first", "prepared"):
                with traced(sync_pg, tmp_path / f"s{n}{run}") as s_path:
                    col.search(**spec)
                with traced(async_pg, tmp_path / f"a{n}{run}") as a_path:
                    await acol.search(**spec)
                assert sent(a_path) == sent(s_path), spec
                assert any(line.split("\t")[2] in ("Parse", "Bind") for line in sent(a_path))
            assert round_trips(a_path) == round_trips(s_path) == 1, spec
    sync_db.close()


async def test_50_concurrent_async_searches_on_a_pool_of_4_all_match_sync(db_url, loaded, movies):
    titles, full, _ = movies
    all_specs = specs(movies)
    calls = [dict(all_specs[i % len(all_specs)]) for i in range(50)]
    for i, spec in enumerate(calls):
        if "vector" in spec:
            spec["vector"] = full[i % len(titles)]
    expected = [answer(loaded.search(**spec)) for spec in calls]
    async with await semsearch.aio.connect(db_url, max_connections=4) as adb:
        acol = await adb.collection("m")
        got = await asyncio.gather(*(acol.search(**spec) for spec in calls))
        assert adb.pool.get_stats()["pool_size"] <= 4
    assert [answer(r) for r in got] == expected


def test_a_filtered_search_on_a_collection_dropped_meanwhile_says_so_sync(db, loaded, movies):
    # the SQL functions go by name: the drop shows as their error, which must not reach the user raw
    _, full, _ = movies
    db.drop_collection("m")
    for spec in ({"where": {"even": True}}, {"tenant": "a"}, {"query": "x", "mode": "text"}):
        with pytest.raises(errors.CollectionNotFoundError, match="got 'm' dropped"):
            loaded.search(**({"vector": full[0]} if "query" not in spec else {}), **spec)


async def test_an_openai_collection_embeds_on_the_async_client_with_the_sync_results(db, db_url):
    from semsearch.embeddings.openai import OpenAIEmbedder
    from tests.fake_openai import FakeOpenAI

    texts = ["the wing stalls at high angles", "boundary layers thicken", "supersonic inlets"]
    with FakeOpenAI() as server:
        embedder = OpenAIEmbedder(model="text-embedding-3-small", dims=256, api_key="k", base_url=server.base_url)
        col = db.create_collection("o", embedder=embedder)
        col.add(["a", "b", "c"], texts)
        async with await semsearch.aio.connect(db_url) as adb:
            acol = await adb.collection("o", embedder=embedder)
            await acol.add(["d"], ["shock waves on a wedge"])
            expected = col.search("stall", k=3, mode="hybrid")
            got = await acol.search("stall", k=3, mode="hybrid")
            assert np.array_equal(await embedder.aembed(texts), embedder.embed(texts))
        await embedder.async_client.close()
        agents = [r.headers.get("user-agent", "").split("/")[0] for r in server.requests]
    assert answer(got) == answer(expected)
    # the sync calls went through OpenAI, the async ones through AsyncOpenAI (no thread)
    assert agents == ["OpenAI", "AsyncOpenAI", "OpenAI", "AsyncOpenAI", "AsyncOpenAI", "OpenAI"]


async def test_searches_cancelled_mid_flight_leave_the_pool_serving(db_url, loaded, movies):
    # a web client that goes away cancels its request's task, wherever the search was
    _, full, _ = movies
    async with await semsearch.aio.connect(db_url, max_connections=2) as adb:
        acol = await adb.collection("m")
        for ticks in range(6):
            tasks = [asyncio.ensure_future(acol.search(vector=full[i], k=5, where={"even": True})) for i in range(8)]
            for _ in range(ticks):
                await asyncio.sleep(0)  # let them get as far as this many event-loop turns
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        got = await asyncio.gather(*(acol.search(vector=full[i], k=5) for i in range(8)))
    assert [answer(r) for r in got] == [answer(loaded.search(vector=full[i], k=5)) for i in range(8)]


async def test_async_add_many_autotunes_a_bulk_load_as_sync_add_many_does(db, db_url):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(1000, 64))
    records = [{"key": f"r{i}", "content": f"row {i}", "embedding": v} for i, v in enumerate(vectors)]
    sync_result = db.create_collection("s", dims=64, model="label", compression="mrl-bit:32").add_many(records)
    async with await semsearch.aio.connect(db_url) as adb:
        acol = await adb.create_collection("a", dims=64, model="label", compression="mrl-bit:32")
        result = await acol.add_many(iter(records))
        assert result.tuned is not None and sync_result.tuned is not None
        # the same search over the same rows, on two HNSW graphs (built apart: their recalls differ a
        # little); a wider ef_search level is kept only when its p50 beats the automatic point's
        # (tune.EF_LADDER), a timing two runs need not agree on: so the same target, about the same candidates
        assert result.tuned.reached and sync_result.tuned.reached and result.tuned.rows == 1000
        assert abs(result.tuned.candidates - sync_result.tuned.candidates) <= 0.1 * sync_result.tuned.candidates
        assert acol.info.oversample == db.collection("a").info.oversample == result.tuned.oversample
        assert db.collection("s").info.oversample == sync_result.tuned.oversample
        assert answer(await acol.search(vector=vectors[5], k=10)) == answer(
            db.collection("s").search(vector=vectors[5], k=10)
        )
