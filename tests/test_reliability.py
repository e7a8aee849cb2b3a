"""Reliability: single keys in delete, concurrent upserts, sampling of partly embedded collections."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest

from semsearch import errors


@pytest.fixture
def col(db):
    c = db.create_collection("c", dims=4, model="label", compression="none")
    keys = ["d", "o", "c", "1", "doc1", "7"]
    c.add(keys=keys, contents=[f"text {k}" for k in keys], embeddings=np.random.default_rng(0).normal(size=(6, 4)))
    return c


def _keys(col):
    with col.db.connection() as conn:
        return [r[0] for r in conn.execute(f"SELECT key FROM semsearch.{col.layout.table_name} ORDER BY key")]


def test_delete_of_one_str_key_deletes_that_key_not_its_characters(col):
    assert col.delete("doc1") == 1
    assert _keys(col) == ["1", "7", "c", "d", "o"]
    assert col.delete(7) == 1
    assert col.delete("doc1") == 0
    assert _keys(col) == ["1", "c", "d", "o"]


def test_delete_of_a_list_still_deletes_each_key(col):
    assert col.delete(["d", "o", 1, "nope"]) == 3
    assert _keys(col) == ["7", "c", "doc1"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (True, "expected a non-empty str or int key, got true"),
        ([True], "expected a non-empty str or int key, got true at position 0"),
        (["d", ""], "expected a non-empty str or int key, got '' at position 1"),
        (["d", None], "got none at position 1"),
        (["d", 1.5], "got 1.5 at position 1"),
        (["d", "o\x00"], "nul"),
        (["d", "o\ud800"], "lone surrogate"),
        (b"doc1", "expected a key or a list of keys, got bytes"),
        (
            None,
            "expected keys, a non-empty where= or tenant= to delete by",
        ),  # no keys: a filter, since delete by filter
    ],
)
def test_delete_checks_keys_before_deleting_anything(col, keys, message):
    before = _keys(col)
    with pytest.raises(errors.InvalidInputError) as info:
        col.delete(keys)
    assert message in str(info.value).lower()
    assert _keys(col) == before


def _vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=4)
    return v / np.linalg.norm(v)


def test_concurrent_upserts_of_the_same_keys_in_opposite_orders_do_not_deadlock(db):
    col = db.create_collection("c", dims=4, model="label", compression="none")
    keys = [f"k{i:02d}" for i in range(20)]
    errors_seen: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str, order: list[str]) -> None:
        try:
            start.wait()
            for batch in range(100):
                contents = [f"{name} batch {batch} key {k}" for k in order]
                col.add(
                    keys=order,
                    contents=contents,
                    embeddings=np.array([_vector(c) for c in contents]),
                    metadata=[{"writer": name, "batch": batch} for _ in order],
                )
        except BaseException as exc:  # the assertion below reports it
            errors_seen.append(exc)

    threads = [
        threading.Thread(target=writer, args=("up", keys)),
        threading.Thread(target=writer, args=("down", keys[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors_seen == []
    with db.connection() as conn:
        rows = conn.execute("SELECT key, content, metadata, embedding::vector FROM semsearch.col_c ORDER BY key")
        rows = rows.fetchall()
    assert [r[0] for r in rows] == keys
    for key, content, meta, vec in rows:
        # every row is one writer's whole write: content, metadata and vector agree
        assert content == f"{meta['writer']} batch {meta['batch']} key {key}"
        np.testing.assert_allclose(vec.to_numpy(), _vector(content), atol=1e-6)
    # the last commit was one writer's last batch, which wrote every row
    [last] = {r[1].split(" key ")[0] for r in rows}
    assert last in ("up batch 99", "down batch 99")


def _fail_upserts(db, times: int, sqlstate: str) -> None:
    """A real trigger that fails the next ``times`` upserts as a deadlock would (a sequence survives rollback)."""
    with db.connection() as conn:
        conn.execute("CREATE SEQUENCE semsearch.test_failures")
        conn.execute(
            "CREATE FUNCTION semsearch.test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF nextval('semsearch.test_failures') <= {int(times)} THEN "
            f"RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_fail BEFORE INSERT OR UPDATE ON semsearch.col_c "
            "FOR EACH STATEMENT EXECUTE FUNCTION semsearch.test_fail()"
        )


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])  # deadlock_detected, serialization_failure
def test_an_upsert_that_deadlocks_once_is_retried(col, sqlstate):
    _fail_upserts(col.db, 1, sqlstate)
    got = col.add(keys=["d", "new"], contents=["changed d", "new row"], embeddings=np.ones((2, 4)))
    assert (got.inserted, got.updated) == (1, 1)
    assert _keys(col) == ["1", "7", "c", "d", "doc1", "new", "o"]


def test_an_upsert_that_deadlocks_twice_raises_and_writes_nothing(col):
    _fail_upserts(col.db, 2, "40P01")
    with pytest.raises(errors.WriteConflictError, match="expected to write 2 rows to 'c', got a deadlock twice"):
        col.add(keys=["d", "new"], contents=["changed d", "new row"], embeddings=np.ones((2, 4)))
    assert _keys(col) == ["1", "7", "c", "d", "doc1", "o"]
    with col.db.connection() as conn:
        assert conn.execute("SELECT content FROM semsearch.col_c WHERE key = 'd'").fetchone()[0] == "text d"


def test_evaluate_and_tune_sample_only_embedded_rows(db):
    col = db.create_collection("c", dims=4, model="label", compression="none")
    rng = np.random.default_rng(3)
    col.add(
        keys=[f"e{i}" for i in range(30)],
        contents=[f"embedded {i}" for i in range(30)],
        embeddings=rng.normal(size=(30, 4)),
    )
    # deferred rows wait for an embedder (none exists for a "label" model): their embedding is null
    col.add(keys=[f"p{i}" for i in range(30)], contents=[f"pending {i}" for i in range(30)], defer=True)
    assert col.pending() == 30
    from semsearch.workload import query_vectors

    ids, vectors = query_vectors(col, None, sample=60, seed=0)
    assert sorted(ids) == sorted(f"e{i}" for i in range(30)) and vectors.shape == (30, 4)
    report = col.evaluate(sample=20, k=5, repeat=1)
    assert report.queries == 20 and report.recall == 1.0
    assert col.tune(sample=20, k=5, target_recall=0.9).reached


def test_sampling_a_collection_with_no_embedded_row_says_so(db):
    col = db.create_collection("c", dims=4, model="label", compression="none")
    col.add(keys=["p"], contents=["pending"], defer=True)
    with pytest.raises(
        errors.InvalidInputError, match="expected embedded rows to sample in 'c', got none of 1 row\\(s\\) embedded"
    ):
        col.evaluate(sample=5)


def test_a_new_text_with_a_vector_given_keeps_that_vector(db):
    """0.1.0: the stale-vector trigger fired although add() gave the vector, leaving the row pending."""
    col = db.create_collection("t", dims=4, model="label", compression="none")
    v = np.array([[1.0, 0, 0, 0]])
    col.add(["a"], ["Toy Story"], embeddings=v)
    got = col.add(["a"], ["Toy Story (1995)"], embeddings=v)
    assert got.updated == 1 and col.pending() == 0
    assert col.search(vector=v[0], k=1).keys == ["a"]
    with db.connection() as conn:
        # any other writer changing the text loses the stale vector ...
        conn.execute("UPDATE semsearch.col_t SET content = 'Toy Story 2' WHERE key = 'a'")
        assert col.pending() == 1
        # ... unless the same statement sets a new one
        conn.execute("UPDATE semsearch.col_t SET content = 'Toy Story 3', embedding = '[0,1,0,0]' WHERE key = 'a'")
    assert col.pending() == 0 and col.search(vector=[0, 1, 0, 0], k=1)[0].score == pytest.approx(1.0)


def test_two_creators_of_one_collection_get_a_semsearch_error(db_url):
    import semsearch

    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create() -> None:
        with semsearch.connect(db_url) as db:
            barrier.wait()
            try:
                db.create_collection("race", dims=8, model="label")
                outcomes.append("created")
            except errors.CollectionExistsError:
                outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "exists", "exists", "exists"]


def test_rebuild_index_lets_searches_run_during_the_build(db):
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(4000, 256)).astype(np.float32)
    col = db.create_collection("r", dims=256, model="label", compression="halfvec", autotune=False)
    col.add_many({"key": i, "content": f"row {i}", "embedding": v} for i, v in enumerate(vecs))
    done = threading.Event()
    finished: list[tuple[float, str]] = []

    def search_while_building() -> None:
        while not done.is_set():
            key = col.search(vector=vecs[7], k=1).keys[0]
            finished.append((time.perf_counter(), key))

    searcher = threading.Thread(target=search_while_building)
    searcher.start()
    builds = []
    try:
        for concurrently in (True, False):
            started = time.perf_counter()
            col.rebuild_index(concurrently=concurrently)
            builds.append((started, time.perf_counter()))
    finally:
        done.set()
        searcher.join()
    assert {key for _, key in finished} == {"7"}
    for started, ended in builds:
        # 0.1.0 dropped the live index in the build's transaction: searches waited for the commit
        during = [t for t, _ in finished if started + 0.05 < t < ended - 0.05]
        assert len(during) >= 3, (ended - started, len(finished))
    with db.connection() as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'col_r'")}
    assert "col_r_hnsw" in names and "col_r_hnsw_next" not in names


def test_a_bulk_load_killed_before_its_index_build_gets_the_index_when_rerun(db):
    col = db.create_collection("k", dims=8, model="label", compression="bit", autotune=False)
    records = [{"key": i, "content": f"row {i}", "embedding": np.eye(8)[i % 8] + i / 1000} for i in range(300)]
    col.add_many(records)
    with db.connection() as conn:
        # what a kill -9 between the load and the build leaves: the rows, no index
        conn.execute("DROP INDEX semsearch.col_k_hnsw")
    got = col.add_many(records)  # the documented resume: run the same load again
    assert got.unchanged == 300
    with db.connection() as conn:
        assert conn.execute("SELECT to_regclass('semsearch.col_k_hnsw')").fetchone()[0] is not None


def test_a_tenant_required_collection_refuses_writes_and_searches_without_one(db):
    import psycopg

    col = db.create_collection("t", dims=4, model="label", compression="none", tenant_required=True)
    v = np.eye(4)
    col.add(["a", "b"], ["apple", "banana"], embeddings=v[:2], tenant=["x", "y"])
    with pytest.raises(errors.InvalidInputError, match="expected a tenant for every row"):
        col.add(["c"], ["cherry"], embeddings=v[2:3])
    with pytest.raises(errors.InvalidInputError, match="expected a tenant for every row"):
        col.add(["c", "d"], ["cherry", "date"], embeddings=v[2:], tenant=["x", None])
    for mode, kwargs in (("vector", {"vector": v[0]}), ("text", {"query": "apple"}), ("hybrid", {"query": "apple"})):
        with pytest.raises(errors.InvalidInputError, match="expected tenant="):
            col.search(mode=mode, k=2, **({"vector": v[0]} if mode == "hybrid" else {}), **kwargs)
    assert col.search(vector=v[0], k=2, tenant="y").keys == ["b"]
    assert col.count() == 2
    with db.connection() as conn:
        for stmt in (
            "SELECT * FROM semsearch.search('t', '[1,0,0,0]', 2)",
            "SELECT * FROM semsearch.text_search('t', 'apple', 2)",
            "SELECT * FROM semsearch.hybrid_search('t', 'apple', '[1,0,0,0]', 2)",
        ):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected a tenant"):
                conn.execute(stmt)
        assert [r[0] for r in conn.execute("SELECT key FROM semsearch.search('t', '[1,0,0,0]', 2, tenant => 'x')")] == [
            "a"
        ]
        # any writer: the table itself refuses a row without a tenant
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO semsearch.col_t (key, content) VALUES ('z', 'zucchini')")


def test_searches_survive_the_server_closing_every_pooled_connection(db_url):
    """0.1.0: after a Postgres restart each pooled connection failed one call with a raw AdminShutdown."""
    import psycopg

    import semsearch

    with semsearch.connect(db_url, max_connections=3) as db:
        col = db.create_collection("r", dims=4, model="label", compression="none")
        col.add(["a"], ["apple"], embeddings=np.eye(4)[:1])
        with db.connection() as c1, db.connection() as c2:  # three connections in the pool
            c1.execute("SELECT 1")
            c2.execute("SELECT 1")
        with psycopg.connect(db_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        assert killed >= 3
        for _ in range(4):
            assert col.search(vector=np.eye(4)[0], k=1).keys == ["a"]


def test_alter_collection_works_with_a_pool_of_one(db_url):
    """0.1.0 held one pooled connection while asking for another: 30 s, then PoolTimeout."""
    import semsearch

    with semsearch.connect(db_url, max_connections=1) as db:
        db.create_collection("one", dims=8, model="label", compression="bit")
        started = time.perf_counter()
        col = db.alter_collection("one", compression="none", concurrently=True)
        col = db.alter_collection("one", oversample=3)
        assert col.info.compression == "none" and col.info.oversample == 3
        col.rebuild_index()
        assert time.perf_counter() - started < 10


def test_concurrent_alters_of_one_collection_leave_one_consistent_index(db_url):
    """0.1.0: two alter_collection at once failed and left an orphan _hnsw_next index."""
    import semsearch

    rng = np.random.default_rng(6)
    with semsearch.connect(db_url) as db:
        col = db.create_collection("a", dims=64, model="label", compression="bit", autotune=False)
        col.add_many({"key": i, "content": f"r{i}", "embedding": v} for i, v in enumerate(rng.normal(size=(2000, 64))))
    failures: list[Exception] = []

    def alter(plan: str) -> None:
        try:
            with semsearch.connect(db_url) as db:
                db.alter_collection("a", compression=plan)
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=alter, args=(plan,)) for plan in ("halfvec", "mrl:32", "none")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with semsearch.connect(db_url) as db, db.connection() as conn:
        info = db.collection("a").info
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'col_a_hnsw%'"))
        assert list(indexes) == ["col_a_hnsw"]
        expected = info.layout.hnsw_index_sql(m=info.hnsw_m, ef_construction=info.hnsw_ef_construction)
        assert info.layout.plan.opclass(info.layout.storage).as_string(None) in indexes["col_a_hnsw"]
        assert "hnsw" in expected.as_string(conn)


def test_rows_waiting_for_their_vector_never_come_back_from_vector_search(db):
    """0.1.0: deferred rows came back from the coarse pass with a null score (TypeError in Python)."""
    col = db.create_collection("p", dims=4, model="label", compression="none", autotune=False)
    col.add(["a", "b"], ["apple", "banana"], embeddings=np.eye(4)[:2])
    col.add([f"pending{i}" for i in range(20)], [f"text {i}" for i in range(20)], defer=True)
    assert col.pending() == 20
    for kwargs in ({}, {"exact": True}, {"oversample": 50}, {"where": {"x": None}}):
        got = col.search(vector=np.eye(4)[0], k=10, **kwargs)
        assert got.keys == ["a", "b"] and all(isinstance(h.score, float) for h in got), kwargs
    with db.connection() as conn:
        rows = conn.execute("SELECT key, score FROM semsearch.search('p', '[1,0,0,0]', 10)").fetchall()
    assert [r[0] for r in rows] == ["a", "b"] and all(r[1] is not None for r in rows)
