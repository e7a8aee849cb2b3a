"""Bad input raises a semsearch error naming what was expected, and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import errors


@pytest.fixture
def col(db):
    c = db.create_collection("docs", dims=16, model="label", compression="bit")
    rng = np.random.default_rng(1)
    c.add(keys=["a", "b", "c"], contents=["alpha", "beta", "gamma"], embeddings=rng.normal(size=(3, 16)))
    return c


def _snapshot(col):
    with col.db.connection() as conn:
        return conn.execute(
            f"SELECT key, content, metadata, embedding::text FROM semsearch.{col.layout.table_name} ORDER BY key"
        ).fetchall()


def _vecs(n, dims=16):
    return np.random.default_rng(2).normal(size=(n, dims))


def _nested(depth):
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2, 15)},
            "expected embeddings of shape (2, 16)",
        ),
        (
            {
                "keys": ["x", "y"],
                "contents": ["one", "two"],
                "embeddings": np.vstack([_vecs(1), np.full((1, 16), np.nan)]),
            },
            "nan or inf in row 1",
        ),
        (
            {
                "keys": ["x", "y"],
                "contents": ["one", "two"],
                "embeddings": np.vstack([_vecs(1), np.full((1, 16), np.inf)]),
            },
            "nan or inf",
        ),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": np.vstack([_vecs(1), np.zeros((1, 16))])},
            "zero vector in row 1",
        ),
        ({"keys": ["x", "y"], "contents": ["one", "  "], "embeddings": _vecs(2)}, "expected non-empty text"),
        ({"keys": ["x", "x"], "contents": ["one", "two"], "embeddings": _vecs(2)}, "expected unique keys"),
        (
            {"keys": ["x", ""], "contents": ["one", "two"], "embeddings": _vecs(2)},
            "expected a non-empty str or int key",
        ),
        ({"keys": ["x", "y"], "contents": ["one"], "embeddings": _vecs(2)}, "expected 2 contents"),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, {"f": object()}]},
            "json-serialisable",
        ),
        (
            {
                "keys": ["x", "y"],
                "contents": ["one", "two"],
                "embeddings": _vecs(2),
                "metadata": [{}, {"f": float("nan")}],
            },
            "json-serialisable",
        ),
        ({"keys": ["x", "y"], "contents": ["one", "t\x00wo"], "embeddings": _vecs(2)}, "nul"),
        ({"keys": "xy", "contents": "ab", "embeddings": _vecs(2)}, "got a single string"),
        # nul characters: Postgres text cannot hold them
        (
            {"keys": ["x", "y\x00"], "contents": ["one", "two"], "embeddings": _vecs(2)},
            "a key at position 1 without nul",
        ),
        ({"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "tenant": "t\x00"}, "a tenant at"),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "tenant": ["t", "u\x00"]},
            "a tenant at position 1 without nul characters",
        ),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, {"f\x00": 1}]},
            "keys in metadata at position 1 without nul characters",
        ),
        (
            {
                "keys": ["x", "y"],
                "contents": ["one", "two"],
                "embeddings": _vecs(2),
                "metadata": [{}, {"f": ["ok", {"g": "v\x00"}]}],
            },
            "strings in metadata at position 1 without nul characters",
        ),
        # lone surrogates: UTF-8 cannot encode them
        ({"keys": ["x", "y"], "contents": ["one", "t\ud800wo"], "embeddings": _vecs(2)}, "lone surrogate"),
        ({"keys": ["x", "y\udfff"], "contents": ["one", "two"], "embeddings": _vecs(2)}, "lone surrogate"),
        ({"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "tenant": "\ud800"}, "surrogate"),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, {"\ud800": 1}]},
            "keys in metadata at position 1 without nul characters or lone surrogates",
        ),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, {"f": "\ud800"}]},
            "lone surrogate '\\ud800' at index 0",
        ),
        # structure
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, _nested(1000)]},
            "expected metadata at position 1 nested at most 32 levels deep",
        ),
        (
            {"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "metadata": [{}, {"f": {1, 2}}]},
            "expected metadata at position 1 to be json-serialisable, got a value of type set",
        ),
        ({"keys": ["x", "y"], "contents": ["one", "two"], "embeddings": _vecs(2), "tenant": 5}, "expected tenant as"),
        ({"keys": ["x", True], "contents": ["one", "two"], "embeddings": _vecs(2)}, "got true at position 1"),
        ({"keys": ["x", 1.0], "contents": ["one", "two"], "embeddings": _vecs(2)}, "got 1.0 at position 1"),
    ],
)
def test_bad_rows_raise_and_leave_the_table_unchanged(col, kwargs, message):
    before = _snapshot(col)
    # the first row of each batch updates an existing key: it must not land either
    kwargs = {**kwargs}
    if isinstance(kwargs["keys"], list):
        first = kwargs["keys"][0]
        kwargs["keys"] = ["a" if k == first else k for k in kwargs["keys"]]
    with pytest.raises(errors.InvalidInputError) as info:
        col.add(**kwargs)
    assert message in str(info.value).lower()
    assert _snapshot(col) == before


def test_metadata_nested_32_levels_is_accepted(col):
    col.add(keys=["deep"], contents=["deep"], embeddings=_vecs(1), metadata=[_nested(31)])
    with pytest.raises(errors.InvalidInputError, match="nested at most 32 levels"):
        col.add(keys=["deeper"], contents=["deeper"], embeddings=_vecs(1), metadata=[_nested(32)])


def test_bad_rows_are_refused_before_the_embedder_is_called(db):
    col = db.create_collection("loc", dims=64, model="local", compression="halfvec")
    calls = []
    inner = col.embedder.embed_batch  # type: ignore[attr-defined]
    col.embedder.embed_batch = lambda texts: calls.append(texts) or inner(texts)  # type: ignore[attr-defined]
    with pytest.raises(errors.InvalidInputError, match="lone surrogate"):
        col.add(keys=["a", "b"], contents=["fine", "caf\udce9"])
    with pytest.raises(errors.InvalidInputError, match="nul"):
        col.add(keys=["a", "b"], contents=["fine", "ok"], metadata=[{}, {"x": "\x00"}])
    assert calls == [] and col.count() == 0


def test_a_database_failure_mid_batch_writes_nothing(col):
    before = _snapshot(col)
    # a key over btree's row size limit fails inside Postgres, after the COPY has run
    import psycopg

    huge_key = "".join(np.random.default_rng(3).choice(list("abcdefghijklmnopqrstuvwxyz"), 20_000))
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="index row"):
        col.add(keys=["a", "z", huge_key], contents=["new alpha", "zed", "long"], embeddings=_vecs(3))
    assert _snapshot(col) == before


@pytest.mark.parametrize("name", ["x; drop table y", "Movies", "1abc", "a-b", "", "a" * 49, None])
def test_collection_names_must_be_plain_identifiers(db, name):
    with pytest.raises(errors.InvalidNameError, match="expected a collection name"):
        db.create_collection(name, dims=8, model="label")
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.collections").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("dims", "compression", "storage", "message"),
    [
        (1536, "mrl:4000", "vector", "expected mrl dims between 1 and 1536, got 4000"),
        (8000, "halfvec", "vector", "expected at most 4000 dims for halfvec"),
        (3072, "none", "vector", "expected at most 2000 dims for an hnsw index on the full vector"),
        (1536, "mrl", "vector", "expected mrl:<dims>"),
        (1536, "pq:8", "vector", "expected a compression plan like"),
        (1536, "bit:12", "vector", "expected bit without dims"),
    ],
)
def test_compression_plans_the_dims_do_not_allow(db, dims, compression, storage, message):
    with pytest.raises(errors.CompressionPlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        db.create_collection("c", dims=dims, model="label", compression=compression, storage=storage)
    with db.connection() as conn:
        assert conn.execute("SELECT to_regclass('semsearch.col_c')").fetchone()[0] is None


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"dims": True}, errors.ConfigurationError, "expected dims as an int, got True"),
        ({"dims": "8"}, errors.ConfigurationError, "expected dims as an int"),
        ({"text_config": 5}, errors.ConfigurationError, "expected text_config as the name"),
        ({"text_config": "english\x00"}, errors.InvalidInputError, "a text_config"),
        ({"text_config": "klingon"}, errors.ConfigurationError, "expected a text search configuration"),
        ({"model": "a\x00b"}, errors.InvalidInputError, "a model name"),
        ({"model": "local", "dims": 300}, errors.ConfigurationError, r"embedder dims in \(64, 128, 256\), got 300"),
        ({"model": "text-embedding-3-small", "dims": 2048}, errors.ConfigurationError, "at most 1536"),
        ({"model": "text-embedding-ada-002", "dims": 256}, errors.ConfigurationError, "cannot be resized"),
    ],
)
def test_collection_settings_of_the_wrong_type_are_refused(db, settings, error, message):
    with pytest.raises(error, match=message):
        db.create_collection("c", **{"dims": 8, "model": "label", **settings})
    assert db.collections() == []


def test_unknown_collection(db):
    with pytest.raises(errors.CollectionNotFoundError, match="unknown 'nope'"):
        db.collection("nope")
    with pytest.raises(errors.CollectionNotFoundError):
        db.drop_collection("nope")
    db.drop_collection("nope", missing_ok=True)


def test_existing_collection_is_not_replaced(db, col):
    with pytest.raises(errors.CollectionExistsError):
        db.create_collection("docs", dims=16, model="label")
    assert col.count() == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vector": np.ones(15)}, "expected a query vector of 16 dims"),
        ({"vector": np.zeros(16)}, "expected non-zero vectors"),
        ({"vector": np.ones(16), "k": 0}, "expected k between 1 and 10000"),
        ({"vector": np.ones(16), "oversample": 0.5}, "expected oversample between 1 and 1000"),
        ({"vector": np.ones(16), "where": "lang=es"}, "expected where= as a dict"),
        ({}, "expected exactly one of a query text or vector=, got neither"),
        ({"query": "nul\x00byte", "mode": "text"}, "without nul characters"),
        ({"query": "x", "vector": np.ones(16)}, "got both"),
        ({"vector": np.ones(16), "where": {"f": "a\x00"}}, "without nul characters"),
        ({"vector": np.ones(16), "where": {"f": {"$eq": "\ud800"}}}, "lone surrogate"),
        ({"vector": np.ones(16), "where": {"f": _nested(1000)}}, "nested at most 32 levels"),
    ],
)
def test_bad_searches(col, kwargs, message):
    with pytest.raises(errors.InvalidInputError, match=message):
        col.search(**kwargs)


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_query_text_with_a_lone_surrogate_is_refused_before_embedding(db, mode):
    col = db.create_collection("loc", dims=64, model="local", compression="halfvec")
    col.add(keys=["a"], contents=["a cafe"])
    with pytest.raises(errors.InvalidInputError, match="lone surrogate"):
        col.search("caf\udce9", mode=mode)


def test_text_query_and_tenant_with_a_lone_surrogate_or_nul_are_refused(col):
    with pytest.raises(errors.InvalidInputError, match="lone surrogate"):
        col.search("caf\udce9", mode="text")
    for tenant in ("a\x00b", "caf\udce9", "", 5):
        with pytest.raises(errors.InvalidInputError, match="tenant"):
            col.search("cafe", mode="text", tenant=tenant)
    for bad in ({"ef_search": True}, {"oversample": True}, {"oversample": "2"}):
        with pytest.raises(errors.InvalidInputError):
            col.search("cafe", **bad)


def test_sql_function_rejects_bad_arguments_with_clear_messages(db, col):
    import psycopg

    with db.connection() as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected a query vector of 16 dims, got 3"):
            conn.execute("SELECT * FROM semsearch.search('docs', '[1,2,3]'::vector, 5)")
        with pytest.raises(psycopg.errors.UndefinedObject, match="unknown collection 'nope'"):
            conn.execute("SELECT * FROM semsearch.search('nope', '[1,2,3]'::vector, 5)")
