"""The offline local embedder end to end, and content-hash reuse of embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import errors
from semsearch.embeddings import BatchedEmbedder
from semsearch.embeddings.local import LocalEmbedder


class CountingLocal(BatchedEmbedder):
    """The real local model, counting the texts it is asked to embed."""

    def __init__(self, dims: int = 256) -> None:
        self.inner = LocalEmbedder(dims)
        self.model, self.dims = self.inner.model, dims
        self.seen: list[str] = []

    def embed_batch(self, texts):
        self.seen.extend(texts)
        return self.inner.embed_batch(texts)


def test_local_embedder_is_offline_unit_norm_and_matryoshka():
    full = LocalEmbedder(256).embed(["a toddler movie about cats", "tax law for small companies"])
    assert full.shape == (2, 256) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-6)
    short = LocalEmbedder(64).embed(["a toddler movie about cats"])[0]
    truncated = full[0, :64] / np.linalg.norm(full[0, :64])
    np.testing.assert_allclose(short, truncated, atol=1e-6)
    with pytest.raises(errors.ConfigurationError, match=r"expected local embedder dims in \(64, 128, 256\), got 100"):
        LocalEmbedder(100)


def test_text_search_with_the_local_model(db):
    docs = db.create_collection("docs", model="local", dims=256, compression="mrl-bit:256")
    texts = [
        "the cat sleeps on the warm windowsill",
        "stock markets fell sharply after the announcement",
        "a recipe for sourdough bread with a crisp crust",
        "the football team won the championship final",
    ]
    docs.add(keys=["cat", "stocks", "bread", "football"], contents=texts)
    assert docs.search("kitten napping in the sun", k=1).keys == ["cat"]
    assert docs.search("baking a loaf", k=1).keys == ["bread"]
    assert db.collection("docs").info.model == "wordllama-l2-supercat"


def test_unchanged_text_is_never_re_embedded(db):
    emb = CountingLocal()
    col = db.create_collection("docs", embedder=emb, compression="halfvec")
    first = col.add(keys=["a", "b", "c"], contents=["red apples", "green pears", "red apples"])
    # identical texts in one batch are embedded once
    assert sorted(emb.seen) == ["green pears", "red apples"]
    assert (first.inserted, first.embedded, first.reused) == (3, 2, 1)
    emb.seen.clear()
    again = col.add(keys=["a", "b", "d"], contents=["red apples", "yellow bananas", "green pears"])
    assert emb.seen == ["yellow bananas"]
    assert (again.inserted, again.updated, again.unchanged, again.embedded, again.reused) == (1, 1, 1, 1, 2)
    # "d" got the vector stored for "green pears": searching that text finds it at similarity 1
    hit = col.search("green pears", k=1)[0]
    assert hit.key == "d" and hit.score == pytest.approx(1.0, abs=1e-5)


def test_embedding_failure_writes_nothing(db):
    class Failing(CountingLocal):
        def embed_batch(self, texts):
            raise errors.EmbeddingError("provider down")

    col = db.create_collection("docs", embedder=Failing(), compression="halfvec")
    with pytest.raises(errors.EmbeddingError, match="provider down"):
        col.add(keys=["a"], contents=["anything"])
    assert col.count() == 0


def test_fewer_rows_than_k_is_reported(db):
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    col.add(keys=["a", "b"], contents=["one thing", "another thing"], metadata=[{"lang": "en"}, {"lang": "es"}])
    result = col.search("thing", k=5)
    assert len(result) == 2 and not result.complete
    assert col.search("thing", k=2).complete
    filtered = col.search("thing", k=2, where={"lang": "es"})
    assert filtered.keys == ["b"] and not filtered.complete


def test_delete_and_upsert(db):
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    col.add(keys=["a", "b"], contents=["one thing", "another thing"])
    assert col.delete(["a", "zzz"]) == 1
    col.add(keys=["b"], contents=["a changed thing"], metadata=[{"v": 2}])
    hit = col.search("changed", k=1)[0]
    assert (hit.key, hit.content, hit.metadata) == ("b", "a changed thing", {"v": 2})
    assert col.count() == 1


def test_bulk_load_with_keys_repeated_across_batches(db):
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    records = [{"key": i % 150, "content": f"text number {i}"} for i in range(200)]
    got = col.add_many(records, batch_size=100, bulk=True)
    # batch 1 goes in by COPY; batch 2 repeats keys 0..49 and falls back to the upsert
    assert (got.inserted, got.updated) == (150, 50)
    assert col.count() == 150
    with db.connection() as conn:
        content = conn.execute("SELECT content FROM semsearch.col_docs WHERE key = '10'").fetchone()[0]
    assert content == "text number 160" and col.pending() == 0


def test_collections_of_different_dims_share_one_pooled_connection(db):
    small = db.create_collection("small", dims=4, model="label", compression="none")
    large = db.create_collection("large", dims=8, model="label", compression="none")
    small.add(keys=["a"], contents=["a"], embeddings=np.ones((1, 4)))
    large.add(keys=["b"], contents=["b"], embeddings=np.ones((1, 8)))
    small.add(keys=["c"], contents=["c"], embeddings=np.ones((1, 4)))
    assert (small.count(), large.count()) == (2, 1)
