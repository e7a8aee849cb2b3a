"""Reliability: single keys in delete, concurrent upserts, sampling of partly embedded collections."""

from __future__ import annotations

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
        (None, "expected a key or a list of keys, got nonetype"),
    ],
)
def test_delete_checks_keys_before_deleting_anything(col, keys, message):
    before = _keys(col)
    with pytest.raises(errors.InvalidInputError) as info:
        col.delete(keys)
    assert message in str(info.value).lower()
    assert _keys(col) == before
