"""A collection as a Citus distributed table: shards, writes, every search, tuning and alter on a real cluster."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

import semsearch
from semsearch import searching
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.model_switch import migrate_model

DIMS = 64


def _rows(n: int, seed: int = 0) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in range(n)]
    texts = [f"{['red', 'green', 'blue'][i % 3]} bird number {i}" for i in range(n)]
    return keys, texts, rng.normal(size=(n, DIMS)), [f"t{i % 4}" for i in range(n)]


def _on_shards(url: str, table: str, query: str) -> list[str]:
    """``query`` on every shard of ``table`` (``%s`` is the shard's name), one result per shard."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT success, result FROM run_command_on_shards(%s, %s)", [table, query]).fetchall()
    assert all(ok for ok, _ in rows), rows
    return [r for _, r in rows]


@pytest.mark.parametrize("by", ["key", "tenant"])
def test_a_distributed_collection_has_shards_on_both_workers_each_with_its_indexes(
    cdb: semsearch.Database, fresh: Callable[[str], str], citus_url: str, by: str
) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="bit", distribute_by=by)
    assert col.info.distributed_by == by
    table = f"semsearch.{col.layout.table_name}"
    with psycopg.connect(citus_url) as conn:
        nodes, shards = conn.execute(
            "SELECT count(DISTINCT nodeport), count(*) FROM citus_shards WHERE table_name = %s::regclass", [table]
        ).fetchone()  # type: ignore[misc]
        column = conn.execute("SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition "
                              "WHERE logicalrelid = %s::regclass", [table]).fetchone()  # fmt: skip
    assert (nodes, column) == (2, (by,))
    assert shards >= 2
    indexes = "SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass AND pg_get_indexdef(indexrelid) LIKE "
    hnsw = _on_shards(citus_url, table, indexes + "'%%USING hnsw%%'")
    text = _on_shards(citus_url, table, indexes + "'%%USING gin (tsv)%%'")
    assert hnsw == ["1"] * shards and text == ["1"] * shards


def test_add_upsert_delete_and_bulk_load_by_key(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="halfvec", distribute_by="key")
    keys, texts, vecs, _ = _rows(300)
    records = [
        {"key": k, "content": t, "embedding": v, "metadata": {"i": i}}
        for i, (k, t, v) in enumerate(zip(keys, texts, vecs, strict=True))
    ]
    got = col.add_many(records, bulk=True, autotune=False)
    assert (got.inserted, got.updated) == (300, 0)
    again = col.add(keys[:10], [t + " again" for t in texts[:10]], embeddings=vecs[:10])
    same = col.add(keys[10:20], texts[10:20], embeddings=vecs[10:20], metadata=[{"i": i} for i in range(10, 20)])
    assert (again.inserted, again.updated) == (0, 10)
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 10)
    assert col.delete(["k0", "k1", "missing"]) == 2
    assert col.count() == 298
    hit = col.search(vector=vecs[5], k=1)[0]
    assert (hit.key, hit.content) == ("k5", texts[5] + " again")


def test_by_tenant_a_key_is_unique_per_tenant_and_a_tenant_search_runs_on_one_shard(
    cdb: semsearch.Database, fresh: Callable[[str], str]
) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="bit", distribute_by="tenant")
    keys, texts, vecs, tenants = _rows(200)
    col.add(keys, texts, embeddings=vecs, tenant=tenants)
    # the same key under another tenant is another row; under its own tenant an update
    col.add(["k1"], ["moved"], embeddings=vecs[1:2], tenant="t9")
    up = col.add(["k1"], ["edited"], embeddings=vecs[1:2], tenant="t1")
    assert (up.inserted, up.updated, col.count()) == (0, 1, 201)
    with pytest.raises(InvalidInputError, match="distributed by tenant"):
        col.add(["x"], ["no tenant"], embeddings=vecs[:1])
    mine = col.search(vector=vecs[1], k=5, tenant="t9")
    assert [h.key for h in mine] == ["k1"] and mine[0].content == "moved"
    everyone = col.search(vector=vecs[1], k=2)
    assert {h.content for h in everyone} == {"moved", "edited"}
    routed = col.explain(vector=vecs[1], k=5, tenant="t1").plan
    fanned = col.explain(vector=vecs[1], k=5).plan
    # routed: the whole two-stage statement is one task on the tenant's shard; fanned out, the
    # coarse pass is one task per shard and the rescore one more on the coordinator's result
    assert re.findall(r"Task Count: (\d+)", routed) == ["1"]
    assert max(map(int, re.findall(r"Task Count: (\d+)", fanned))) >= 2
    # text and SQL functions with a tenant are routed too, and agree with Python
    sql_keys = _sql(cdb, "SELECT key FROM semsearch.search(%s, %s, 5, tenant => 't1')", [col.name, vecs[3]])
    assert sql_keys == [h.key for h in col.search(vector=vecs[3], k=5, tenant="t1")]


def test_deferred_rows_are_embedded_by_backfill(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    col = cdb.create_collection(fresh("c"), model="local", dims=64, distribute_by="key")
    col.add(["a", "b"], ["cats purr softly", "dogs bark loudly"])
    col.add(["p1", "p2"], ["a kitten sleeps", "a puppy plays"], defer=True)
    assert {h.key for h in col.search("kitten", k=10)} == {"a", "b"}
    done = col.backfill()
    assert (done.pending, done.embedded) == (2, 2)
    assert col.search("a kitten sleeps", k=1)[0].key == "p1"
    # a text changed by raw SQL loses its stale vector on the worker; semsearch's own upsert keeps it
    with psycopg.connect(cdb.url, autocommit=True) as conn:
        stale = conn.execute(
            psycopg.sql.SQL("UPDATE {} SET content = 'edited' WHERE key = 'a' RETURNING embedding IS NULL").format(
                col.layout.table
            )
        ).fetchone()
    assert stale == (True,)
    assert col.backfill().embedded == 1


def _sql(db: semsearch.Database, query: str, args: list[object]) -> list[str]:
    with psycopg.connect(db.url) as conn:  # a transaction: ef_search reaches the workers
        register_vector(conn)
        return [r[0] for r in conn.execute(query, args).fetchall()]


@pytest.mark.parametrize("by", ["key", "tenant"])
def test_every_search_mode_from_python_equals_the_sql_functions(
    cdb: semsearch.Database, fresh: Callable[[str], str], by: str
) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="halfvec", distribute_by=by)
    keys, texts, vecs, tenants = _rows(400, seed=1)
    col.add(keys, texts, embeddings=vecs, tenant=tenants, metadata=[{"colour": t.split()[0]} for t in texts])
    q = np.random.default_rng(5).normal(size=DIMS).astype(np.float32)
    exact = [h.key for h in col.search(vector=q, k=10, exact=True)]
    truth = [
        keys[i]
        for i in np.argsort(-(vecs / np.linalg.norm(vecs, axis=1, keepdims=True)) @ (q / np.linalg.norm(q)))[:10]
    ]
    assert exact == truth
    assert [h.key for h in col.search(vector=q, k=10)] == exact
    n = col.name
    cases = [
        (dict(vector=q), "SELECT key FROM semsearch.search(%s, %s, 10)", [n, q]),
        (dict(vector=q, exact=True), "SELECT key FROM semsearch.search(%s, %s, 10, exact => true)", [n, q]),
        (dict(vector=q, where={"colour": "red"}),
         """SELECT key FROM semsearch.search(%s, %s, 10, filter => '{"colour": "red"}')""", [n, q]),
        (dict(vector=q, tenant="t2"), "SELECT key FROM semsearch.search(%s, %s, 10, tenant => 't2')", [n, q]),
        (dict(query="blue bird", mode="text"), "SELECT key FROM semsearch.text_search(%s, 'blue bird', 10)", [n]),
        (dict(query="blue bird", vector=q, mode="hybrid"),
         "SELECT key FROM semsearch.hybrid_search(%s, 'blue bird', %s, 10)", [n, q]),
    ]  # fmt: skip
    for kwargs, query, args in cases:
        got = [h.key for h in col.search(k=10, **kwargs)]  # type: ignore[arg-type]
        assert got == _sql(cdb, query, args), kwargs
        assert len(got) == 10, kwargs
    red = col.search(vector=q, k=10, where={"colour": "red"})
    assert all(h.metadata == {"colour": "red"} for h in red)
    assert all("blue" in h.content for h in col.search("blue", mode="text", k=10))


def test_ef_search_reaches_the_workers(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", distribute_by="key")
    col.add(*_rows(50)[:2], embeddings=_rows(50)[2])
    # what each shard sees while a distributed plan runs: its settings go as SET LOCAL, propagated
    probe = searching.SearchPlan(
        statement=psycopg.sql.SQL("SELECT DISTINCT current_setting('hnsw.ef_search') FROM {}").format(col.layout.table),
        params={}, settings={"hnsw.ef_search": "123"}, distributed=True,
    )  # fmt: skip
    with cdb.connection() as conn:
        rows, _ = searching.execute(conn, probe)
    assert rows == [("123",)]


def test_evaluate_tune_and_alter_a_distributed_collection(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="halfvec", distribute_by="key")
    keys, texts, vecs, _ = _rows(600, seed=2)
    col.add(keys, texts, embeddings=vecs)
    report = col.evaluate(sample=20)
    assert report.recall >= 0.9
    tuned = col.tune(sample=20, target_recall=0.95)
    assert tuned.recall >= 0.95
    for concurrently in (True, False):
        col = cdb.alter_collection(
            col.name, compression="bit" if concurrently else "halfvec", concurrently=concurrently
        )
        assert col.info.distributed_by == "key"
        assert col.search(vector=vecs[7], k=1)[0].key == "k7"
    assert col.info.compression == "halfvec"


def test_evaluate_reports_the_sizes_of_the_shards(
    cdb: semsearch.Database, fresh: Callable[[str], str], citus_url: str
) -> None:
    # not the coordinator's empty shell (it reported "hnsw index 16 kB ... 55 B/row")
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", compression="halfvec", distribute_by="key")
    keys, texts, vecs, _ = _rows(600, seed=3)
    col.add(keys, texts, embeddings=vecs)
    report = col.evaluate(sample=10, repeat=1)
    hnsw = "SELECT pg_relation_size(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid " \
           "JOIN pg_am a ON a.oid = c.relam WHERE indrelid = '%s'::regclass AND a.amname = 'hnsw'"  # fmt: skip
    on_shards = sum(int(x) for x in _on_shards(citus_url, f"semsearch.{col.layout.table_name}", hnsw))
    assert report.index_bytes == on_shards > 600 * DIMS * 2  # halfvec: 2 bytes a dim, at least
    assert report.bytes_per_row > DIMS * 4  # the full vector alone is 4 bytes a dim
    assert report.indexes_bytes > report.index_bytes


def test_distribute_an_existing_collection_moves_its_rows(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    name = fresh("c")
    col = cdb.create_collection(name, dims=DIMS, model="vectors", compression="halfvec")
    keys, texts, vecs, tenants = _rows(100, seed=3)
    col.add(keys, texts, embeddings=vecs, tenant=tenants)
    before = [h.key for h in col.search(vector=vecs[0], k=5)]
    col = cdb.distribute_collection(name, by="tenant")
    assert (col.info.distributed_by, col.count()) == ("tenant", 100)
    assert [h.key for h in col.search(vector=vecs[0], k=5)] == before
    with pytest.raises(ConfigurationError, match="distributed by tenant"):
        cdb.distribute_collection(name, by="key")
    with pytest.raises(ConfigurationError, match="one server for migrate-model"):
        migrate_model(cdb, name, model="vectors", dims=DIMS)
    nulls = fresh("n")
    cdb.create_collection(nulls, dims=DIMS, model="vectors").add(["a"], ["no tenant"], embeddings=vecs[:1])
    with pytest.raises(ConfigurationError, match="1 without"):
        cdb.distribute_collection(nulls, by="tenant")
    assert cdb.collection(nulls).info.distributed_by is None


def test_a_synced_table_and_a_distributed_collection_do_not_meet(
    cdb: semsearch.Database, fresh: Callable[[str], str]
) -> None:
    synced, table = fresh("s"), fresh("src")
    name = psycopg.sql.Identifier(table)
    with cdb.connection() as conn:
        conn.execute(psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(name))
        conn.execute(psycopg.sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, body text)").format(name))
    try:
        cdb.sync_table(table, collection=synced, key="id", text="body", model="vectors", dims=DIMS)
        with pytest.raises(ConfigurationError, match="synced from"):
            cdb.distribute_collection(synced, by="key")
        cdb.unsync_table(table, drop_collection=True)
        spread = fresh("d")
        cdb.create_collection(spread, dims=DIMS, model="vectors", distribute_by="key")
        with pytest.raises(ConfigurationError, match="distributed by key"):
            cdb.sync_table(table, collection=spread, key="id", text="body")
    finally:
        with cdb.connection() as conn:
            conn.execute(psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(name))


def test_a_reader_granted_a_distributed_collection_searches_it(
    cdb: semsearch.Database, fresh: Callable[[str], str], citus_url: str
) -> None:
    col = cdb.create_collection(fresh("c"), dims=DIMS, model="vectors", distribute_by="key")
    keys, texts, vecs, _ = _rows(50)
    col.add(keys, texts, embeddings=vecs)
    with psycopg.connect(citus_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS citus_reader")
        conn.execute("CREATE ROLE citus_reader LOGIN")
    try:
        cdb.grant("citus_reader", col.name)
        reader_url = psycopg.conninfo.make_conninfo(citus_url, user="citus_reader")
        with semsearch.connect(reader_url) as reader:
            assert reader.collection(col.name).search(vector=vecs[4], k=1)[0].key == "k4"
            assert reader.collection(col.name).search("red bird", mode="text", k=3)
    finally:
        with psycopg.connect(citus_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY citus_reader")
            conn.execute("DROP ROLE citus_reader")


def test_the_cli_creates_and_distributes_collections(cdb: semsearch.Database, fresh: Callable[[str], str]) -> None:
    from click.testing import CliRunner

    from semsearch.cli import main

    made, later = fresh("cli"), fresh("later")
    runner = CliRunner()
    got = runner.invoke(
        main, ["--url", cdb.url, "create", made, "--model", "vectors", "--dims", "8", "--distribute-by", "tenant"]
    )
    assert got.exit_code == 0, got.output
    assert cdb.collection(made).info.distributed_by == "tenant"
    runner.invoke(main, ["--url", cdb.url, "create", later, "--model", "vectors", "--dims", "8"])
    got = runner.invoke(main, ["--url", cdb.url, "distribute", later, "--by", "key"])
    assert (got.exit_code, got.output) == (0, f"distributed {later} by key\n")
    assert cdb.collection(later).info.distributed_by == "key"


def test_alembic_creates_and_alters_a_distributed_collection(
    cdb: semsearch.Database, fresh: Callable[[str], str]
) -> None:
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    import semsearch.alembic  # noqa: F401  (registers op.create_collection & co.)

    name = fresh("alembic")
    engine = sa.create_engine(cdb.url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            op = Operations(MigrationContext.configure(conn))
            op.create_collection(name, model="vectors", dims=DIMS, compression="halfvec", distribute_by="tenant")
            op.alter_collection(name, compression="bit", concurrently=False)
    finally:
        engine.dispose()
    col = cdb.collection(name)
    assert (col.info.distributed_by, col.info.compression) == ("tenant", "bit")
    keys, texts, vecs, tenants = _rows(20)
    col.add(keys, texts, embeddings=vecs, tenant=tenants)
    assert col.search(vector=vecs[3], k=1, tenant=tenants[3])[0].key == "k3"


def test_the_async_api_searches_a_distributed_collection_with_its_settings_on_the_workers(
    cdb: semsearch.Database, fresh: Callable[[str], str]
) -> None:
    import asyncio

    import semsearch.aio
    from semsearch.aio.search import execute as aexecute

    name = fresh("c")
    col = cdb.create_collection(name, dims=DIMS, model="vectors", distribute_by="key")
    keys, texts, vectors, _ = _rows(300)
    col.add(keys, texts, embeddings=vectors)
    probe = searching.SearchPlan(
        statement=psycopg.sql.SQL("SELECT DISTINCT current_setting('hnsw.ef_search') FROM {}").format(col.layout.table),
        params={}, settings={"hnsw.ef_search": "77"}, distributed=True,
    )  # fmt: skip

    async def run() -> tuple[list[tuple[str, ...]], list[list[str]]]:
        async with await semsearch.aio.connect(cdb.url) as adb:
            async with adb.connection() as conn:
                rows, _ = await aexecute(conn, probe)
            acol = await adb.collection(name)
            found = [(await acol.search(vector=v, k=10)).keys for v in vectors[:5]]
        return rows, found

    rows, found = asyncio.run(run())
    assert rows == [("77",)]
    assert found == [col.search(vector=v, k=10).keys for v in vectors[:5]]


def test_handles_made_before_a_distribution_by_tenant_write_and_search_the_distributed_table(
    cdb: semsearch.Database, fresh: Callable[[str], str]
) -> None:
    """Before: an old handle's next add raised a raw ``InvalidColumnReference: there is no unique or
    exclusion constraint matching the ON CONFLICT specification`` (its upsert named the plain table's
    key; distributed by tenant, a key is unique per tenant)."""
    import asyncio

    import semsearch.aio

    name = fresh("c")
    col = cdb.create_collection(name, dims=DIMS, model="vectors", compression="halfvec")
    keys, texts, vecs, tenants = _rows(130, seed=5)
    col.add(keys[:100], texts[:100], embeddings=vecs[:100], tenant=tenants[:100])
    writer, reader = cdb.collection(name), cdb.collection(name)

    async def run() -> None:
        async with await semsearch.aio.connect(cdb.url) as adb:
            awriter, areader = await adb.collection(name), await adb.collection(name)
            cdb.distribute_collection(name, by="tenant")
            live = cdb.collection(name)
            got = writer.add(keys[100:110], texts[100:110], embeddings=vecs[100:110], tenant=tenants[100:110])
            assert got.inserted == 10 and writer.info == live.info
            # a stored key under another tenant is another row now
            assert (
                writer.add([keys[0]], ["the same key, another tenant"], embeddings=vecs[120:121], tenant="t9").inserted
                == 1
            )
            got = await awriter.add(keys[110:120], texts[110:120], embeddings=vecs[110:120], tenant=tenants[110:120])
            assert got.inserted == 10 and awriter.info == live.info
            assert live.count() == 121
            for i in (3, 105, 115):
                expected = live.search(vector=vecs[i], k=5, tenant=tenants[i]).keys
                assert expected[0] == keys[i]
                assert reader.search(vector=vecs[i], k=5, tenant=tenants[i]).keys == expected
                assert (await areader.search(vector=vecs[i], k=5, tenant=tenants[i])).keys == expected
            assert reader.info == areader.info == live.info
            assert writer.delete([keys[105]]) == 1 and await awriter.delete([keys[115]]) == 1
            assert live.count() == 119

    asyncio.run(run())
