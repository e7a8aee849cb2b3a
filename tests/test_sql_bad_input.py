"""SQL callers' jsonpath filters: every variable defined, and a predicate, before any row is read (schema 0006).

Before 0006 an undefined variable was a raw ``UndefinedObject`` from the rows, and a path that
is no predicate (``'$.y'``) silently matched nothing.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

CALLS = {
    "search": "SELECT * FROM semsearch.search('sq', '[1,1,1,1]'::vector, 2, filter_path => %s::jsonpath)",
    "text_search": "SELECT * FROM semsearch.text_search('sq', 'cat', 2, filter_path => %s::jsonpath)",
    "hybrid_search": (
        "SELECT * FROM semsearch.hybrid_search('sq', 'cat', '[1,1,1,1]'::vector, 2, filter_path => %s::jsonpath)"
    ),
}


@pytest.fixture
def conn(db):
    col = db.create_collection("sq", dims=4, model="label", compression="halfvec")
    col.add(
        keys=["a", "b", "c"],
        contents=["alpha cat", "beta cat", "gamma cat"],
        embeddings=np.eye(4)[:3] + 0.1,
        metadata=[{"y": 1}, {"y": 2}, {"y": 3}],
    )
    with db.connection() as c:
        yield c


@pytest.mark.parametrize("fn", CALLS)
def test_a_variable_only_a_jsonpath_filter_reaches_must_be_defined_too(conn, fn):
    # on an empty document the filter ? (...) never runs: the rows would raise UndefinedObject (42704)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute(CALLS[fn], ["exists($.y ? (@ > $nope))"]).fetchall()
    assert info.value.diag.message_primary == (
        "expected filter_vars to define every $variable of filter_path, got none: "
        'could not find jsonpath variable "nope"'
    )


@pytest.mark.parametrize("fn", CALLS)
@pytest.mark.parametrize(("path", "shown"), [("$.y", "'$.\"y\"'"), ("$", "'$'"), ("$.y[0]", "'$.\"y\"[0]'")])
def test_a_filter_path_that_is_not_a_predicate_is_refused_not_an_empty_result(conn, fn, path, shown):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute(CALLS[fn], [path]).fetchall()
    assert (
        info.value.diag.message_primary
        == f"expected filter_path as a predicate (true or false for each row), got {shown}"
    )


@pytest.mark.parametrize(
    ("path", "keys"),
    [("$.y < 2", ["a"]), ("strict $.y < 3", ["a", "b"]), ("exists($.y ? (@ > 2))", ["c"]), ('$.s == "a$\\"x\\""', [])],
)
def test_predicates_pass_the_check(conn, path, keys):
    assert sorted(r[0] for r in conn.execute(CALLS["search"], [path])) == keys


def test_sql_filters_have_pythons_caps(conn):
    """The same limits as where= from Python (semsearch.filters): values per list, length of the jsonpath."""
    from semsearch import filters

    many = "[" + ",".join(map(str, range(filters.MAX_IN_VALUES + 1))) + "]"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at most 1000 values in one filter_vars list"):
        conn.execute(
            "SELECT * FROM semsearch.search('sq', '[1,1,1,1]'::vector, 2, filter_path => '$.y == $v', "
            "filter_vars => jsonb_build_object('v', %s::jsonb))",
            [many],
        ).fetchall()
    long_path = " || ".join(["$.y == 1"] * (filters.MAX_PATH_CHARS // 8))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected a filter_path of at most 65536"):
        conn.execute(CALLS["search"], [long_path]).fetchall()
    assert filters.MAX_IN_VALUES == 1000 and filters.MAX_PATH_CHARS == 65536  # the numbers the SQL states
