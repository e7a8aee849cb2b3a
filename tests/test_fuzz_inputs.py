"""The fuzzing round's inputs (issue 21, item 9): each is refused by a semsearch error, or works.

Sync and async take the same inputs: every case runs through both (and the CLI where it
takes them). Refused inputs write nothing; the messages say what was expected.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

import semsearch
import semsearch.aio
from semsearch import errors

DIMS = 8


@pytest.fixture
def col(db):
    c = db.create_collection("fz", dims=DIMS, model="label", compression="bit")
    rng = np.random.default_rng(1)
    c.add(keys=["a", "b", "c"], contents=["alpha", "beta", "gamma"], embeddings=rng.normal(size=(3, DIMS)))
    return c


def call(api: str, db_url: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """``col.<method>(*args, **kwargs)`` on collection ``fz``, through the sync or the async API."""
    if api == "sync":
        with semsearch.connect(db_url) as db:
            return getattr(db.collection("fz"), method)(*args, **kwargs)

    async def run() -> Any:
        async with await semsearch.aio.connect(db_url) as adb:
            return await getattr(await adb.collection("fz"), method)(*args, **kwargs)

    return asyncio.run(run())


def create(api: str, db_url: str, name: str) -> Any:
    if api == "sync":
        with semsearch.connect(db_url) as db:
            return db.create_collection(name, dims=DIMS, model="label").info

    async def run() -> Any:
        async with await semsearch.aio.connect(db_url) as adb:
            return (await adb.create_collection(name, dims=DIMS, model="label")).info

    return asyncio.run(run())


def rows(db) -> list[tuple[Any, ...]]:
    with db.connection() as conn:
        return conn.execute("SELECT key, embedding::text FROM semsearch.col_fz ORDER BY key").fetchall()


APIS = ["sync", "async"]
BAD_VECTORS = [
    (["a"] * DIMS, "expected a query vector of numbers, got str values"),
    (["1"] * DIMS, "expected a query vector of numbers, got str values"),
    (object(), "expected a query vector of numbers, got a value of type object"),
    ("abcdefgh", "expected a query vector of numbers, got str values"),
    ({"a": 1}, "expected a query vector of numbers, got a value of type dict"),
    ([1j] * DIMS, "expected a query vector of numbers, got complex values"),
    ([True] * DIMS, "expected a query vector of numbers, got bool values"),
    ([[1.0], [1.0, 2.0]], "expected a query vector of numbers, got a ragged list"),
    ([None] * DIMS, "expected a query vector of numbers, got a value of type nonetype"),
    ([1e39] * DIMS, "expected values a float32 can hold (at most 3.4e+38 in size), got 1e+39 in row 0"),
    ([float("nan")] * DIMS, "expected finite values, got nan or inf in row 0"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("vector", "message"), BAD_VECTORS, ids=[repr(v)[:20] for v, _ in BAD_VECTORS])
def test_a_query_vector_that_is_not_numbers_is_refused(db_url, col, api, vector, message):
    with pytest.raises(errors.InvalidInputError) as info:
        call(api, db_url, "search", vector=vector)
    assert str(info.value).lower() == message


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("scale", [1e38, 1.1e38, 1e-40, 1e-45])
def test_a_query_vector_at_float32s_extremes_searches_as_its_direction(db_url, col, api, scale):
    # the norm of 1e38s overflows float32: it was refused as "a zero vector"; 1e-45s underflowed
    direction = np.array([1.0, -1, 2, 0, 0.5, 1, -3, 1])
    expected = [(h.key, round(h.score, 5)) for h in col.search(vector=direction, k=3)]
    got = call(api, db_url, "search", vector=direction * scale, k=3)
    assert [(h.key, round(h.score, 5)) for h in got] == expected


@pytest.mark.parametrize("api", APIS)
def test_rows_of_huge_or_tiny_floats_are_stored_as_their_unit_vector(db, db_url, col, api):
    direction = np.array([1.0, -1, 2, 0, 0.5, 1, -3, 1])
    call(
        api, db_url, "add", keys=["h", "t"], contents=["huge", "tiny"], embeddings=[direction * 1e38, direction * 1e-44]
    )
    unit = direction / np.linalg.norm(direction)
    stored = dict(rows(db))
    for key in ("h", "t"):
        assert np.allclose(json.loads(stored[key]), unit, atol=1e-6), key


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        ([[1e39] * DIMS], "expected values a float32 can hold (at most 3.4e+38 in size), got 1e+39 in row 0"),
        ([["1"] * DIMS], "expected embeddings of numbers, got str values"),
        ([[True] * DIMS], "expected embeddings of numbers, got bool values"),
    ],
)
def test_rows_whose_vectors_are_not_float32_numbers_are_refused(db, db_url, col, api, embeddings, message):
    before = rows(db)
    with pytest.raises(errors.InvalidInputError) as info:
        call(api, db_url, "add", keys=["a"], contents=["new alpha"], embeddings=embeddings)
    assert str(info.value).lower() == message
    assert rows(db) == before


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("keys", [{"a": 1}, {"a": "b"}], ids=["dict", "dict-of-str"])
def test_delete_refuses_a_dict_instead_of_deleting_its_keys(db, db_url, col, api, keys):
    before = rows(db)
    with pytest.raises(errors.InvalidInputError) as info:
        call(api, db_url, "delete", keys)
    assert str(info.value) == "expected a key or a list of keys, got a dict"
    assert rows(db) == before


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("existing", "new", "clash"),
    [
        ("fz", "fz_hnsw", "the hnsw index of collection 'fz'"),
        ("fz", "fz_hnsw_next", "the hnsw_next index of collection 'fz'"),
        ("fz", "fz_bm25p", "the bm25p table of collection 'fz'"),
        ("fz", "fz_bm25d", "the bm25d table of collection 'fz'"),
        ("fz", "fz_key_key", "the key_key index of collection 'fz'"),
        ("fz", "fz_id_seq", "the id_seq sequence of collection 'fz'"),
        ("fz_hnsw", "fz", "the table of collection 'fz_hnsw'"),
        ("fz_bm25s", "fz", "the table of collection 'fz_bm25s'"),
    ],
)
def test_a_collection_whose_tables_or_indexes_another_one_owns_is_refused(db, db_url, api, existing, new, clash):
    db.create_collection(existing, dims=DIMS, model="label")
    with pytest.raises(errors.InvalidNameError) as info:
        create(api, db_url, new)
    assert str(info.value).startswith(f"expected a collection name whose tables and indexes are free, got {new!r}")
    assert clash in str(info.value)
    assert [i.name for i in db.collections()] == [existing]


@pytest.mark.parametrize("api", APIS)
def test_names_that_only_look_alike_are_accepted(db, db_url, api):
    db.create_collection("fz", dims=DIMS, model="label")
    # a table named like one of fz's functions, and a prefix without the underscore
    for name in ("fz_text", "fz_ann", "fzhnsw", "f"):
        assert create(api, db_url, name).name == name
    assert sorted(i.name for i in db.collections()) == ["f", "fz", "fz_ann", "fz_text", "fzhnsw"]


def test_the_reserved_names_are_every_object_a_collection_makes(db):
    from semsearch.layout import Layout

    c = db.create_collection("fz", dims=DIMS, model="label", tenant_required=True)
    with db.connection() as conn:
        found = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'semsearch'::regnamespace AND relname LIKE 'col\\_fz%'"
        )
        made = {r[0] for r in found}
    declared = dict(Layout.relation_names(c.layout.table_name))
    # the index a rebuild builds next to the live one exists only while it runs
    assert made == set(declared) - {"col_fz_hnsw_next"}


def test_the_cli_refuses_a_clashing_collection_and_bad_vectors_in_one_line(run, db, tmp_path):
    run("create", "fz", "--model", "label", "--dims", DIMS)
    result = run("create", "fz_hnsw", "--model", "label", "--dims", DIMS, ok=False)
    assert "expected a collection name whose tables and indexes are free, got 'fz_hnsw'" in result.output
    q = tmp_path / "q.json"
    q.write_text(json.dumps([1e38] * DIMS))
    run("search", "fz", "--vector-file", q)
    q.write_text(json.dumps(["a"] * DIMS))
    assert "expected a json list of numbers" in run("search", "fz", "--vector-file", q, ok=False).output.lower()
    q.write_text(json.dumps([1e39] * DIMS))
    assert "expected values a float32 can hold" in run("search", "fz", "--vector-file", q, ok=False).output


async def _misuse(db_url: str) -> list[str]:
    found = []
    with pytest.raises(errors.NotAwaitedError) as info, semsearch.aio.connect(db_url):  # type: ignore[attr-defined]
        pass
    found.append(str(info.value))
    with pytest.raises(errors.NotAwaitedError) as info:
        await semsearch.aio.connect(db_url).collection("fz")  # type: ignore[attr-defined]
    found.append(str(info.value))
    adb = await semsearch.aio.connect(db_url)
    with pytest.raises(errors.NotAwaitedError) as info, adb:  # type: ignore[attr-defined]
        pass
    found.append(str(info.value))
    with pytest.raises(errors.NotAwaitedError) as info:
        adb.collection("fz").search(vector=[1.0] * DIMS)  # type: ignore[attr-defined]
    found.append(str(info.value))
    acol = await adb.collection("fz")
    with pytest.raises(errors.NotAwaitedError) as info:
        [h.key for h in acol.search(vector=[1.0] * DIMS)]  # type: ignore[attr-defined]
    found.append(str(info.value))
    assert len(await acol.search(vector=[1.0] * DIMS)) == 3
    # a task takes the call as the coroutine it is (asyncio.create_task, task groups)
    assert await asyncio.create_task(acol.count()) == 3
    assert await asyncio.gather(acol.count(), adb.collections()) == [3, await adb.collections()]
    await adb.close()
    # `async with connect(...)` without the await opens and closes it too
    async with semsearch.aio.connect(db_url) as again:
        assert [i.name for i in await again.collections()] == ["fz"]
    assert again.pool.closed
    return found


def test_async_calls_used_without_await_say_to_await_them(db_url, col):
    assert asyncio.run(_misuse(db_url)) == [
        "expected `async with semsearch.aio.connect(...)` or `await semsearch.aio.connect(...)`, got `with`",
        "expected `await semsearch.aio.connect(...)` before `.collection`, got the call not awaited",
        "expected `async with` on an AsyncDatabase, got `with`",
        "expected `await AsyncDatabase.collection(...)` before `.search`, got the call not awaited",
        "expected `await AsyncCollection.search(...)` before iterating, got the call not awaited",
    ]
