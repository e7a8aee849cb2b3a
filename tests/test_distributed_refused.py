"""Distributing needs a Citus coordinator: elsewhere it is refused before anything is written."""

from __future__ import annotations

import pytest

import semsearch
from semsearch.errors import ConfigurationError


def test_distributing_on_a_server_without_citus_is_refused_and_writes_nothing(db: semsearch.Database) -> None:
    with pytest.raises(ConfigurationError, match="without the citus extension"):
        db.create_collection("spread", dims=8, model="vectors", distribute_by="key")
    assert [c.name for c in db.collections()] == []
    db.create_collection("plain", dims=8, model="vectors")
    with pytest.raises(ConfigurationError, match="without the citus extension"):
        db.distribute_collection("plain", by="tenant")
    assert db.collection("plain").info.distributed_by is None


def test_distribute_by_must_be_key_or_tenant(db: semsearch.Database) -> None:
    with pytest.raises(ConfigurationError, match="expected distribute_by 'key' or 'tenant', got 'id'"):
        db.create_collection("spread", dims=8, model="vectors", distribute_by="id")
