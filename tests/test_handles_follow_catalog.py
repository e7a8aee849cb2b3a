"""Handles follow the catalog: a handle (sync or async) made before a change of its collection's
definition writes and searches what the catalog says now, never with a raw driver error.

Each kind of change has its test here (alter, rebuild, migrate-model, drop); distribute is in
tests/citus/test_distributed.py (it needs a Citus cluster).
"""

from __future__ import annotations

import time

import pytest

import semsearch
import semsearch.aio
from semsearch import errors, model_switch
from semsearch.demo import stdlib_corpus
from semsearch.handle import CATALOG_CHECK_SECONDS

pytestmark = pytest.mark.anyio

QUERY = "parse a date from a string"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def docs(db):
    col = db.create_collection("docs", model="local", dims=64, compression="bit")
    col.add_many(stdlib_corpus(rows=200))
    return col


def index_def(db, col) -> str:
    with db.connection() as conn:
        return conn.execute(
            "SELECT pg_get_indexdef(%s::regclass)", [f"semsearch.{col.layout.table_name}_hnsw"]
        ).fetchone()[0]


async def test_after_an_alter_old_handles_write_and_search_with_the_new_plan(db, db_url, docs):
    """Before: an old handle kept the old plan for good (the check compared only the table's name),
    so its searches ordered by an expression no index serves: a scan of every row, each time."""
    async with await semsearch.aio.connect(db_url) as adb:
        writer, awriter = db.collection("docs"), await adb.collection("docs")
        reader, areader = db.collection("docs"), await adb.collection("docs")
        deleter, adeleter = db.collection("docs"), await adb.collection("docs")
        db.alter_collection("docs", compression="halfvec")
        live = db.collection("docs")
        assert live.info.compression == "halfvec"
        # the next write follows at once
        assert writer.add(["w1"], ["a row written by a handle made before the alter"]).inserted == 1
        assert writer.info == live.info
        assert (await awriter.add(["w2"], ["an async row written by a handle made before the alter"])).inserted == 1
        assert awriter.info == live.info
        # a search trusts its row for CATALOG_CHECK_SECONDS, then follows in its own round trip
        time.sleep(CATALOG_CHECK_SECONDS + 0.1)
        expected = live.search(QUERY, k=5).keys
        assert reader.search(QUERY, k=5).keys == expected and reader.info == live.info
        assert (await areader.search(QUERY, k=5)).keys == expected and areader.info == live.info
        assert live.search("a row written by a handle made before the alter", k=1).keys == ["w1"]
        assert live.count() == 202
        assert deleter.delete(["w1"]) == 1 and deleter.info == live.info
        assert await adeleter.delete(["w2"]) == 1 and adeleter.info == live.info
        assert live.count() == 200


async def test_an_old_handle_rebuilds_the_index_the_catalog_defines(db, db_url, docs):
    """Before: a handle made before an alter rebuilt (or bulk-loaded into) the old plan's index, which
    no search of the new plan can use."""
    async with await semsearch.aio.connect(db_url) as adb:
        old, aold = db.collection("docs"), await adb.collection("docs")
        db.alter_collection("docs", compression="halfvec")
        assert "halfvec" in index_def(db, docs)
        old.rebuild_index()
        assert "halfvec" in index_def(db, docs) and "binary_quantize" not in index_def(db, docs)
        db.alter_collection("docs", compression="bit")
        # a bulk load drops the index and builds it again afterwards: the catalog's, not the handle's
        await aold.add_many([{"key": "b1", "content": "bulk loaded by an old async handle"}], bulk=True)
        assert "binary_quantize" in index_def(db, docs) and aold.info == db.collection("docs").info
        assert db.collection("docs").search("bulk loaded by an old async handle", k=1).keys == ["b1"]


async def test_after_a_model_switch_old_handles_search_every_mode_and_write_at_once(db, db_url, docs):
    """Before: a hybrid search from a handle made before migrate-model failed with a raw
    ``InvalidParameterValue: expected a query vector of 128 dims, got 64`` (within the second
    its row was trusted: the SQL functions go by name, so they searched the new table)."""
    async with await semsearch.aio.connect(db_url) as adb:
        old, aold = db.collection("docs"), await adb.collection("docs")
        # their embedders are made: the old model's 64 dims
        old.search(QUERY, k=3)
        await aold.search(QUERY, k=3)
        model_switch.migrate_model(db, "docs", model="local", dims=128, sample=5, k=5)
        live = db.collection("docs")
        assert live.dims == 128
        for mode in ("hybrid", "text"):
            expected = live.search(QUERY, k=5, mode=mode).keys
            assert old.search(QUERY, k=5, mode=mode).keys == expected, mode
            assert (await aold.search(QUERY, k=5, mode=mode)).keys == expected, mode
        where = {"module": "datetime"}
        assert old.search(QUERY, k=3, where=where).keys == live.search(QUERY, k=3, where=where).keys
        assert old.dims == aold.dims == 128 and old.info == aold.info == live.info
        assert old.add(["s"], ["a row from an old sync handle"]).inserted == 1
        assert (await aold.add(["a"], ["a row from an old async handle"])).inserted == 1
        assert live.count() == 202 and live.pending() == 0
        assert live.search("a row from an old async handle", k=1).keys == ["a"]


async def test_old_handles_of_a_dropped_collection_say_so(db, db_url, docs):
    """Before: a write from a handle of a dropped collection failed with a raw ``UndefinedTable``."""
    async with await semsearch.aio.connect(db_url) as adb:
        old, aold = db.collection("docs"), await adb.collection("docs")
        db.drop_collection("docs")
        with pytest.raises(errors.CollectionNotFoundError, match="'docs'"):
            old.add(["x"], ["a row for a dropped collection"])
        with pytest.raises(errors.CollectionNotFoundError, match="'docs'"):
            await aold.add(["x"], ["a row for a dropped collection"])
        with pytest.raises(errors.CollectionNotFoundError, match="'docs'"):
            old.delete(["x"])


async def test_old_handles_count_and_explain_the_live_table_after_a_model_switch(db, db_url, docs):
    """Before: count(), pending() and explain() of a handle made before migrate-model used the switched-out table."""
    async with await semsearch.aio.connect(db_url) as adb:
        old, aold = db.collection("docs"), await adb.collection("docs")
        old.count()  # trusted rows from here on, as a busy handle's would be
        model_switch.migrate_model(db, "docs", model="local", dims=128, sample=5, k=5)
        live = db.collection("docs")
        live.add(["new"], ["a row only the live table holds"], defer=True)
        assert old.count() == await aold.count() == live.count() == 201
        old._checked_until = 0.0  # past the one second a handle trusts its row
        assert old.pending() == 1
        assert live.layout.table_name in old.explain(QUERY, k=3).sql
