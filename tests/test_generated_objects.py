"""sql/schema.sql shows the whole current schema: it equals a fresh upgrade's dump (tools/schema.py writes it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from semsearch import generated, statements

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("schema_tool", ROOT / "tools" / "schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_schema_file_is_what_a_fresh_upgrade_makes(db_url):
    tool = _tool()
    assert tool.SCHEMA_FILE.read_text() == tool.dump(db_url), "sql/schema.sql is stale: run `make schema`"


def test_migrations_import_nothing_that_later_changes():
    """Frozen: a migration defines what it touches inline (its SQL files included), never from the package."""
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        imports = re.findall(r"^\s*(?:from|import)\s+(semsearch\S*)", path.read_text(), re.M)
        assert imports == [], f"{path.name} imports {imports}"


def test_the_statements_version_is_defined_once(db):
    """Python's STATEMENTS_VERSION is what the SQL functions compare catalog rows with."""
    with db.connection() as conn:
        assert conn.execute("SELECT semsearch.statements_version()").fetchone() == (statements.STATEMENTS_VERSION,)
    assert str(statements.STATEMENTS_VERSION) in generated.VERSION_FUNCTION.as_string(None)


def test_db_upgrade_remakes_every_collections_generated_objects(db, db_url):
    """An older library's objects (or none: a collection from before BM25) are made from this version's code."""
    import numpy as np

    from semsearch import bm25, migrate

    col = db.create_collection("g", dims=8, model="label", compression="none")
    col.add(["a", "b"], ["boundary layer flutter", "shock wave"], embeddings=np.eye(8)[:2])
    with db.connection() as conn:
        for stmt in bm25.drop_statements("col_g"):  # statistics, their triggers and functions gone
            conn.execute(stmt)
        conn.execute("DROP FUNCTION semsearch.col_g_text(text, integer, jsonb)")
        conn.execute("UPDATE semsearch.collections SET statements_version = 1")
    assert migrate.upgrade(db_url) == ["g"]
    assert migrate.upgrade(db_url) == []  # nothing left to remake
    with db.connection() as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM semsearch.text_search('g', 'flutter', 5)")] == ["a"]
        assert conn.execute(bm25.verify_statement("col_g")).fetchall() == []
        conn.execute("INSERT INTO semsearch.col_g (key, content) VALUES ('c', 'flutter again')")  # triggers count it
        assert conn.execute(bm25.verify_statement("col_g")).fetchall() == []
    assert db.collection("g").search("flutter", k=5, mode="text").keys[0] in ("a", "c")
