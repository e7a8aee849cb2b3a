"""connect() reads the server's pgvector version and refuses one older than MIN_PGVECTOR.

The server here has pgvector 0.8.5 and cannot install an older one (pgvector ships one
install script), so the old versions come in through one seam, ``server.EXTENSION``:
the same query with its two version columns replaced by literals. The read-only column
stays the real expression, made true by a real read-only database.
"""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest
from psycopg import sql

import semsearch
import semsearch.aio
from semsearch import errors, server

QUERY = server.EXTENSION.as_string(None)


def pretend(monkeypatch: pytest.MonkeyPatch, packaged: str, installed: str) -> None:
    """The server check reads pgvector at these versions (and the rest as it is)."""
    assert "default_version, installed_version" in QUERY
    versions = sql.SQL("{}::text, {}::text").format(sql.Literal(packaged), sql.Literal(installed)).as_string(None)
    monkeypatch.setattr(server, "EXTENSION", sql.SQL(QUERY.replace("default_version, installed_version", versions)))


def test_the_real_server_reports_its_pgvector_and_passes(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        packaged, installed, read_only = conn.execute(server.EXTENSION).fetchone()
    assert server.pgvector_version(installed) >= server.MIN_PGVECTOR
    assert server.pgvector_version(packaged) >= server.MIN_PGVECTOR
    assert read_only is False
    semsearch.connect(db_url).close()


def test_an_old_pgvector_is_refused_by_sync_async_and_the_cli(db_url, monkeypatch, run):
    pretend(monkeypatch, "0.8.5", "0.8.1")
    with pytest.raises(errors.ExtensionVersionError, match=re.escape("expected pgvector >= 0.8.2, got 0.8.1")) as info:
        semsearch.connect(db_url)
    assert "run ALTER EXTENSION vector UPDATE in this database" in str(info.value)
    with pytest.raises(errors.ExtensionVersionError, match=re.escape("expected pgvector >= 0.8.2, got 0.8.1")):
        asyncio.run(semsearch.aio.connect(db_url))
    out = run("list", ok=False).output
    assert "expected pgvector >= 0.8.2, got 0.8.1" in out and len(out.strip().splitlines()) == 1
    pretend(monkeypatch, "0.8.1", "0.8.1")
    with pytest.raises(errors.ExtensionVersionError, match=re.escape("install pgvector >= 0.8.2 on the server")):
        semsearch.connect(db_url)


def test_an_old_pgvector_on_a_read_only_database_is_searched_with_a_warning(db, db_url, monkeypatch):
    col = db.create_collection("docs", dims=4, model="label")
    col.add(["a", "b"], ["alpha", "beta"], embeddings=[[1, 0, 0, 0], [0, 1, 0, 0]])
    with db.connection() as conn:
        name = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(sql.Identifier(name)))
    pretend(monkeypatch, "0.8.1", "0.8.1")
    try:
        with pytest.warns(UserWarning, match=r"expected pgvector >= 0.8.2, got 0.8.1.*a read-only server"):
            reader = semsearch.connect(db_url)
        with reader:
            assert reader.collection("docs").search(vector=[1, 0, 0, 0], k=1)[0].key == "a"
    finally:
        with db.connection() as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(sql.Identifier(name)))
