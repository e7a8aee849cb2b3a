"""Query path v2: nothing stored is executed, SQL and Python answer alike, one light import."""

from __future__ import annotations

import os

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from semsearch import errors
from semsearch.vectors import check_query_vector
from tests.test_aio import round_trips, traced

PLANS = ["bit", "mrl:64", "mrl-bit:128", "halfvec", "none", "bit->mrl:64"]


@pytest.fixture
def role(db):
    """A role that may write every semsearch table (what add, tune and backfill need), and no more."""
    name = f"semsearch_writer_{os.getpid()}"
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA semsearch TO {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA semsearch TO {}").format(
                sql.Identifier(name)
            )
        )
    yield name
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _as(conn, role, stmt, params=None):
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        return conn.execute(stmt, params)


def _superuser(conn, role) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role]).fetchone()[0]


def test_a_writer_of_the_catalog_cannot_change_what_another_roles_search_runs(db, movies, role):
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, model="label", compression="bit")
    col.add(titles, titles, embeddings=full)
    before = col.search(vector=full[3], k=5).keys
    with db.connection() as conn:
        # every semsearch table, the new collection's included (its catalog row is visible only so)
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA semsearch TO {}").format(
                sql.Identifier(role)
            )
        )
        # 0.1.0's attack: the SQL text a search executed lived in the catalog. It is gone.
        with pytest.raises(psycopg.errors.UndefinedColumn):
            _as(conn, role, "UPDATE semsearch.collections SET ann_sql = 'x'")
        # the per-collection functions belong to their creator: a writer cannot replace them
        for attack in (
            "CREATE OR REPLACE FUNCTION semsearch.col_m_ann(query vector, k integer, candidates integer, spec jsonb) "
            "RETURNS SETOF semsearch.hit LANGUAGE sql AS $$ SELECT NULL::semsearch.hit $$",
            "ALTER FUNCTION semsearch.col_m_ann(vector, integer, integer, jsonb) RENAME TO x",
            "CREATE FUNCTION semsearch.col_m_text(query_text text, k integer, spec jsonb, extra int DEFAULT 0) "
            "RETURNS SETOF semsearch.hit LANGUAGE sql AS $$ SELECT NULL::semsearch.hit $$",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                _as(conn, role, attack)
        # what the catalog holds is data, checked: SQL text in it is refused or never run (here both the
        # row-level security, which names no such table, and the table name's CHECK refuse it)
        with pytest.raises((psycopg.errors.CheckViolation, psycopg.errors.InsufficientPrivilege)):
            _as(conn, role, "UPDATE semsearch.collections SET table_name = 'col_m\"; DROP TABLE x; --'")
        escalate = (
            "bit') t CROSS JOIN (WITH e AS (UPDATE pg_catalog.pg_authid SET rolsuper = true "
            f"WHERE rolname = '{role}' RETURNING 1) SELECT count(*) FROM e) z --"
        )
        _as(conn, role, "UPDATE semsearch.collections SET compression = %s", [escalate])
        # the owner's SQL search ignores the plan text (its statements were made at DDL time)
        keys = [r[0] for r in conn.execute("SELECT key FROM semsearch.search('m', %s, 5)", [full[3]])]
        assert keys == before
        assert not _superuser(conn, role)
    # and Python refuses the row as it reads it, before composing anything
    with pytest.raises(errors.ConfigurationError, match="expected a valid catalog row"):
        db.collection("m")
    with db.connection() as conn:
        assert not _superuser(conn, role)
        conn.execute("UPDATE semsearch.collections SET compression = 'bit'")
        _as(conn, role, "UPDATE semsearch.collections SET statements_version = 1")
    with pytest.raises(errors.SchemaVersionError, match="semsearch db upgrade"):
        db.collection("m")


def _sql_hits(db, stmt, params):
    with db.connection() as conn:
        return [(r[0], r[1]) for r in conn.execute(stmt, params)]


@pytest.mark.parametrize("compression", PLANS)
def test_sql_functions_return_exactly_what_python_returns(db, movies, compression):
    titles, _, short = movies
    col = db.create_collection("m", dims=256, model="label", compression=compression)
    meta = [{"kids": i % 3 == 0, "n": i} for i in range(len(titles))]
    col.add(titles, titles, embeddings=short, metadata=meta, tenant=["a" if i % 2 else "b" for i in range(len(titles))])
    rng = np.random.default_rng(0)
    for q in short[rng.choice(len(titles), 4, replace=False)] + 0.05:
        sent = check_query_vector(q, dims=256)  # what Python sends: unit-norm float32
        for kwargs, extra in (
            ({}, ""),
            ({"exact": True}, ", exact => true"),
            ({"oversample": 2.5}, ", oversample => 2.5"),
            ({"where": {"kids": True}}, ", filter => '{\"kids\": true}'"),
            ({"tenant": "a"}, ", tenant => 'a'"),
        ):
            py = [(h.key, h.score) for h in col.search(vector=q, k=7, **kwargs)]
            stmt = sql.SQL("SELECT key, score FROM semsearch.search('m', %s::vector, 7" + extra + ")")
            assert _sql_hits(db, stmt, [sent]) == py, kwargs
        py = [(h.key, h.score) for h in col.search("El Rey León", vector=q, k=5, mode="hybrid")]
        got = _sql_hits(db, "SELECT key, score FROM semsearch.hybrid_search('m', 'El Rey León', %s::vector, 5)", [sent])
        assert got == py
    py = [(h.key, h.score) for h in col.search("la bella y la bestia", k=5, mode="text")]
    assert _sql_hits(db, "SELECT key, score FROM semsearch.text_search('m', 'la bella y la bestia', 5)", []) == py


def test_grant_gives_a_role_one_collection_to_search_or_write(db, db_url, movies):
    """What db.grant() runs is what the README lists; a role granted one collection is refused another."""
    titles, _, short = movies
    db.create_collection("docs", dims=256, model="label", compression="bit").add(titles, titles, embeddings=short)
    db.create_collection("other", dims=256, model="label", compression="bit").add(["x"], ["x"], embeddings=short[:1])
    suffix = os.getpid()
    reader, writer = f"semsearch_r_{suffix}", f"semsearch_w_{suffix}"
    with db.connection() as conn:
        for role in (reader, writer):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    db.grant(reader, "docs")
    db.grant(writer, "docs", write=True)
    with pytest.raises(errors.ConfigurationError, match="expected an existing role"):
        db.grant("nobody_at_all", "docs")
    try:
        with semsearch.connect(make_conninfo(db_url, options=f"-c role={writer}")) as as_writer:
            col = as_writer.collection("docs")
            assert col.add(["new"], ["Nueva"], embeddings=short[5:6] + 0.01).inserted == 1
            assert col.tune(target_recall=0.9, k=5, sample=20).reached
            assert col.delete(["new"]) == 1
            with as_writer.connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE semsearch.collections SET table_name = 'col_other' WHERE name = 'docs'")
        with semsearch.connect(make_conninfo(db_url, options=f"-c role={reader}")) as as_reader:
            col = as_reader.collection("docs")
            assert col.search(vector=short[3], k=3).keys[0] == titles[3]
            assert col.search(vector=short[3], k=3, where={"x": 1}).keys == []
            with as_reader.connection() as conn:
                assert [r[0] for r in conn.execute("SELECT key FROM semsearch.search('docs', %s, 1)", [short[3]])] == [
                    titles[3]
                ]
            with pytest.raises(errors.PermissionDeniedError, match="semsearch grant ROLE COLLECTION"):
                col.add(["nope"], ["nope"], embeddings=short[:1])
            # another collection's catalog row is not even visible to it (row-level security, 0006)
            with pytest.raises(errors.CollectionNotFoundError):
                as_reader.collection("other").search(vector=short[0], k=1)
    finally:
        with db.connection() as conn:
            for role in (reader, writer):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_explain_shows_the_text_statement_with_the_collections_own_bm25_settings(db):
    """Before: explain composed the text statement with the default k1/b, not the ones that run."""
    col = db.create_collection("bm", dims=8, model="label", compression="none", bm25_k1=2.0, bm25_b=0.3)
    col.add(["a", "b"], ["wing flutter at speed", "boundary layer"], embeddings=np.eye(8)[:2])
    shown = col.explain("wing flutter", mode="text", where={"x": 1}).sql
    with db.connection() as conn:
        body = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'col_bm_text'").fetchone()[0]
    for text in (shown, body):
        assert "2.0::float8" in text and "0.3::float8" in text, text
        assert "1.2::float8" not in text and "0.75::float8" not in text


def test_a_search_sends_its_settings_and_time_limit_as_one_statement(db_url, movies, tmp_path):
    """Before: ``set_config`` of hnsw.ef_search and of statement_timeout were two statements of the pipeline."""
    titles, full, _ = movies
    db = semsearch.connect(db_url, max_connections=1, search_timeout=5)
    col = db.create_collection("m", dims=1536, model="label", compression="halfvec")
    col.add(titles, titles, embeddings=full)
    col.search(vector=full[0], k=5)  # the handle's catalog check is not due for the next one
    with db.connection() as conn:
        pgconn = conn.pgconn
    with traced(pgconn, tmp_path / "trace") as path:
        hits = col.search(vector=full[1], k=5)
    executed = [x for x in path.read_text().splitlines() if x.startswith("F") and "\tExecute" in x]
    assert len(executed) == 2 and round_trips(path) == 1
    assert hits.keys[0] == titles[1]
    with db.connection() as conn:
        assert conn.execute("SHOW hnsw.ef_search").fetchone() == ("40",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)  # local to the search's round trip
    db.close()
