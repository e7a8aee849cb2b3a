"""semsearch's own schema: up, down, up; connect() refuses a schema that is behind."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

import semsearch
from semsearch import errors, migrate
from semsearch.catalog import schema_version


def test_up_down_up(db_url):
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == migrate.head()
    migrate.downgrade(db_url)
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) is None
        assert conn.execute("SELECT to_regclass('semsearch.collections')").fetchone()[0] is None
        assert conn.execute("SELECT to_regprocedure('semsearch.content_hash(text)')").fetchone()[0] is None
    migrate.upgrade(db_url)
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=4, model="label", compression="none")
        col.add(keys=[1], contents=["one"], embeddings=np.ones((1, 4)))
        assert col.search(vector=np.ones(4), k=1).keys == ["1"]


def test_downgrade_to_base_drops_collection_tables(db_url):
    with semsearch.connect(db_url) as db:
        db.create_collection("c", dims=4, model="label", compression="none")
    migrate.downgrade(db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('semsearch.col_c')").fetchone()[0] is None


def test_connect_refuses_a_schema_that_is_behind(db_url):
    migrate.downgrade(db_url)
    with pytest.raises(errors.SchemaVersionError, match="run `semsearch db upgrade`"):
        semsearch.connect(db_url)
    with semsearch.connect(db_url, upgrade=True) as db:
        assert db.collections() == []


def test_a_server_without_pgvector_gets_install_instructions(db_url, monkeypatch):
    # pg_available_extensions is what a server without pgvector lacks; hide it for this session
    real_connect = psycopg.connect

    def connect_hiding_vector(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute(
            "CREATE TEMP VIEW pg_available_extensions AS "
            "SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> 'vector'"
        )
        conn.execute("SET search_path = pg_temp, pg_catalog, public")
        return conn

    monkeypatch.setattr(psycopg, "connect", connect_hiding_vector)
    with pytest.raises(errors.ExtensionMissingError, match="install it"):
        semsearch.connect(db_url)


def test_unreachable_server_is_a_database_error():
    with pytest.raises(errors.DatabaseError, match="could not connect"):
        semsearch.connect("postgresql://nobody@127.0.0.1:1/none")


def test_quarantine_migration_down_to_0001_and_up_again(db_url):
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=4, model="label", compression="none")
        col.add(keys=[1], contents=["one"], embeddings=np.ones((1, 4)))
    migrate.downgrade(db_url, "0001")
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == "0001"
        assert conn.execute("SELECT to_regclass('semsearch.quarantine')").fetchone()[0] is None
        # the collections stay
        assert conn.execute("SELECT count(*) FROM semsearch.col_c").fetchone()[0] == 1
    migrate.upgrade(db_url)
    with semsearch.connect(db_url) as db:
        col = db.collection("c")
        assert col.quarantined() == [] and col.pending() == 0 and col.count() == 1


def test_synced_tables_migration_down_to_0003_and_up_again(db_url):
    """Down: the sources' triggers go (their writes keep working), so do the notify triggers; up: they return."""
    with semsearch.connect(db_url) as db:
        with db.connection() as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        db.sync_table("notes", collection="notes", key="id", text="body", dims=4, model="label", compression="none")
    migrate.downgrade(db_url, "0003")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('semsearch.synced_tables')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'semsearch_%'").fetchone()[0] == 0
        conn.execute("INSERT INTO notes VALUES (1, 'written while not synced')")
    migrate.upgrade(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn, semsearch.connect(db_url) as db:
        conn.execute("LISTEN semsearch_pending")
        db.collection("notes").add(keys=["a"], contents=["pending"], defer=True)
        assert [n.payload for n in conn.notifies(timeout=5, stop_after=1)] == ["notes"]
        assert db.synced_tables() == []


def test_automatic_plans_migration_pins_existing_collections_and_goes_down_and_up_again(db_url):
    """Up from 0010: a collection that exists keeps its plan (pinned, no reason); down: the columns go, rows stay."""
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=4, model="label")  # automatic at head
        col.add(keys=[1], contents=["one"], embeddings=np.ones((1, 4)))
        assert col.info.plan_mode == "auto"
    migrate.downgrade(db_url, "0010")
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == "0010"
        columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = %s AND column_name LIKE 'plan_%%'"
        assert conn.execute(columns, ["collections"]).fetchone()[0] == 0
        assert conn.execute(columns, ["stats"]).fetchone()[0] == 0
        assert conn.execute("SELECT name, compression FROM semsearch.stats").fetchall() == [("c", "halfvec")]
        assert conn.execute("SELECT count(*) FROM semsearch.col_c").fetchone()[0] == 1
    migrate.upgrade(db_url)
    with semsearch.connect(db_url) as db:
        info = db.collection("c").info
        assert (info.compression, info.plan_mode, info.plan_reason) == ("halfvec", "pinned", None)
        assert db.collection("c").search(vector=np.ones(4), k=1).keys == ["1"]
        with db.connection() as conn:
            assert conn.execute("SELECT plan_mode FROM semsearch.stats").fetchall() == [("pinned",)]


def test_lean_search_migration_goes_down_to_0013s_functions_and_up_to_the_same_rows(db_url):
    """Down from 0014: search() and search_rows() are what an upgrade to 0013 makes (body, settings, comment);
    the rows a search returns are the same at 0013 and at 0014, DEBUG message included."""
    functions = (
        "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc') "
        "FROM pg_proc p WHERE p.pronamespace = 'semsearch'::regnamespace AND p.proname IN ('search', 'search_rows') "
        "ORDER BY 1"
    )
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=4, model="label", compression="halfvec")
        rng = np.random.default_rng(14)
        col.add(keys=list(range(50)), contents=[f"r{i}" for i in range(50)], embeddings=rng.normal(size=(50, 4)))
    q = [0.5, -0.2, 0.1, 0.8]

    def searched() -> tuple[list[tuple[str, float]], list[str]]:
        messages: list[str] = []
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.add_notice_handler(lambda d: messages.append(d.message_primary or ""))
            conn.execute("SET client_min_messages = debug1")
            rows = conn.execute("SELECT key, score FROM semsearch.search('c', %s::vector, 5)", [str(q)]).fetchall()
        return rows, [m for m in messages if m.startswith("semsearch plan ")]

    at_head = searched()
    migrate.downgrade(db_url, "0013")
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == "0013"
        down = conn.execute(functions).fetchall()
    assert searched() == at_head
    migrate.downgrade(db_url, "0012")
    migrate.upgrade(db_url, "0013")
    with psycopg.connect(db_url) as conn:
        assert conn.execute(functions).fetchall() == down
    migrate.upgrade(db_url)
    assert searched() == at_head
    assert len(at_head[0]) == 5 and len(at_head[1]) == 1


def test_planned_once_migration_goes_down_to_0014s_functions_and_up_to_the_same_rows(db_url):
    """Down from 0015: search() and search_rows() are what an upgrade to 0014 makes, search_rows_of() is gone;
    the rows a search returns (unfiltered, filtered, exact) are the same at 0014 and at 0015, DEBUG messages
    included, and search_rows() refuses a bad oversample before an unknown collection at both."""
    functions = (
        "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc') "
        "FROM pg_proc p WHERE p.pronamespace = 'semsearch'::regnamespace "
        "AND p.proname IN ('search', 'search_rows', 'search_rows_of') ORDER BY 1"
    )
    with semsearch.connect(db_url) as db:
        col = db.create_collection("c", dims=4, model="label", compression="bit")
        rng = np.random.default_rng(15)
        col.add(
            keys=list(range(60)),
            contents=[f"r{i}" for i in range(60)],
            embeddings=rng.normal(size=(60, 4)),
            metadata=[{"g": i % 2} for i in range(60)],
        )
    q = str([0.5, -0.2, 0.1, 0.8])
    calls = [
        ("SELECT key, score FROM semsearch.search('c', %s::vector, 5)", [q]),
        ("SELECT key, score FROM semsearch.search('c', %s::vector, 5, filter => '{\"g\": 1}')", [q]),
        ("SELECT key, score FROM semsearch.search('c', %s::vector, 5, exact => true)", [q]),
        ("SELECT key, score FROM semsearch.search_rows('c', %s::vector, 7)", [q]),
    ]

    def searched() -> list[tuple[list[tuple[str, float]], list[str]]]:
        out = []
        with psycopg.connect(db_url, autocommit=True) as conn:
            messages: list[str] = []
            conn.add_notice_handler(lambda d: messages.append(d.message_primary or ""))
            conn.execute("SET client_min_messages = debug1")
            for stmt, args in calls:
                messages.clear()
                rows = conn.execute(stmt, args).fetchall()
                out.append((rows, [m for m in messages if m.startswith("semsearch plan ")]))
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="oversample"):
                conn.execute("SELECT * FROM semsearch.search_rows('nope', %s::vector, 5, oversample => 0.5)", [q])
            with pytest.raises(psycopg.errors.UndefinedObject):
                conn.execute("SELECT * FROM semsearch.search('nope', %s::vector, 5, oversample => 0.5)", [q])
        return out

    at_head = searched()
    migrate.downgrade(db_url, "0014")
    with psycopg.connect(db_url) as conn:
        assert schema_version(conn) == "0014"
        down = conn.execute(functions).fetchall()
    assert [d[0].split("(")[0] for d in down] == ["semsearch.search", "semsearch.search_rows"]
    assert searched() == at_head
    migrate.downgrade(db_url, "0013")
    migrate.upgrade(db_url, "0014")
    with psycopg.connect(db_url) as conn:
        assert conn.execute(functions).fetchall() == down
    migrate.upgrade(db_url)
    assert searched() == at_head
    assert [len(rows) for rows, _ in at_head] == [5, 5, 5, 7]
    assert all(len(messages) == 1 for _, messages in at_head)
