"""Filter compilation, checked before anything reaches the database (no Postgres needed)."""

from __future__ import annotations

import pytest

from semsearch import errors
from semsearch.filters import MAX_IN_VALUES, compile_filter


def _nested(depth):
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"lang'; drop table x; --": 1}, "expected a metadata field name"),
        ({"a b": 1}, "expected a metadata field name"),
        ({"$.x": 1}, "expected a metadata field name"),
        ({"x": {"$regex": ".*"}}, "expected an operator in"),
        ({"x": {"$in": []}}, "expected a non-empty list"),
        ({"x": {"$lt": [1]}}, "expected a string, number, bool or null"),
        ({"x": {"$lt": float("nan")}}, "expected a finite number"),
        ({"x": {"$exists": "yes"}}, "expected true or false"),
        ({"x": object()}, "expected the filter value of x to be json-serialisable"),
        ({"x": {"$lt": None}}, "expected a string, number or bool for x \\$lt, got none"),
        ({"x": {"$in": list(range(1001))}}, "expected at most 1000 values for x \\$in, got 1001"),
        ({"x": {"$nin": ["a"] * 1001}}, "expected at most 1000 values for x \\$nin, got 1001"),
        ({"x": "a\x00b"}, "without nul characters"),
        ({"x": {"$eq": "a\x00b"}}, "without nul characters"),
        ({"x": {"$in": ["ok", "\x00"]}}, "without nul characters"),
        ({"x": {"a\x00": 1}}, "keys in the filter value of x without nul"),
        ({"x": ["\ud800"]}, "lone surrogate"),
        ({"x": {"$contains": "\udfff"}}, "lone surrogate"),
        ({"x": _nested(33)}, "nested at most 32 levels"),
        ({"x": _nested(100_000)}, "nested at most 32 levels"),
        ({"x": [{"y": None}]}, "expected no null fields inside objects in a list for x"),
        ({"x": {"y": [{"z": None}]}}, "expected no null fields inside objects in a list for x.y"),
        ({"x": {"a b": None}}, "expected a field name of letters, digits and _ for a null in x"),
    ],
)
def test_bad_filters_are_rejected_before_the_database(where, message):
    with pytest.raises(errors.InvalidInputError, match=message):
        compile_filter(where)


def test_compiled_filter_shape():
    f = compile_filter({"lang": "es", "meta.year": {"$gte": 2000, "$lt": 2010}, "tags": {"$nin": ["a"]}})
    assert f.contains == {"lang": "es"}
    assert f.path == '$."meta"."year" >= $v0 && $."meta"."year" < $v1 && !($."tags" == $v2[*])'
    assert f.vars == {"v0": 2000, "v1": 2010, "v2": ["a"]}


def test_in_takes_up_to_1000_values():
    f = compile_filter({"x": {"$in": list(range(1000))}})
    # one variable holding the list: a row is compared once, not once per value
    assert MAX_IN_VALUES == 1000 and f.path == '($."x" == $v0[*])' and f.vars == {"v0": list(range(1000))}
    assert compile_filter({"x": _nested(31)}).contains == {"x": _nested(31)}


IS_NULL = '(!exists($."lang") || $."lang".type() == "null")'


@pytest.mark.parametrize(
    ("where", "contains", "path", "variables"),
    [
        ({"lang": None}, None, IS_NULL, None),
        ({"lang": {"$eq": None}}, None, IS_NULL, None),
        ({"lang": {"$ne": None}}, None, '$."lang".type() != "null"', None),
        ({"lang": {"$in": ["es", None]}}, None, f'($."lang" == $v0[*] || {IS_NULL})', {"v0": ["es"]}),
        ({"lang": {"$in": [None]}}, None, f"({IS_NULL})", None),
        ({"lang": {"$nin": [None, "en"]}}, None, f'!($."lang" == $v0[*] || {IS_NULL})', {"v0": ["en"]}),
        ({"lang": {"$contains": None}}, None, 'exists($."lang"[*] ? (@ == null))', None),
        (
            {"a": {"b": None, "c": 1, "d": {"e": None}}, "lang": "es"},
            {"a": {"c": 1}, "lang": "es"},
            '(!exists($."a"."b") || $."a"."b".type() == "null") && '
            '(!exists($."a"."d"."e") || $."a"."d"."e".type() == "null")',
            None,
        ),
        ({"a": {"b": None}}, None, '(!exists($."a"."b") || $."a"."b".type() == "null")', None),
        ({"a": {}, "tags": [None]}, {"a": {}, "tags": [None]}, None, None),
    ],
)
def test_nulls_compile_into_the_path_not_containment_or_variables(where, contains, path, variables):
    """The contract the SQL side relies on: no null object field in contains, no null in vars."""
    f = compile_filter(where)
    assert (f.contains, f.path, f.vars) == (contains, path, variables)


def test_an_operator_nested_in_a_plain_value_is_refused_not_matched_against():
    """0.1.0 took {"a": {"b": {"$lt": 1}}} as containment of a literal "$lt" key: it matched nothing."""
    with pytest.raises(errors.InvalidInputError, match=r"'\$lt' inside the value of a"):
        compile_filter({"a": {"b": {"$lt": 1}}})
    with pytest.raises(errors.InvalidInputError, match=r"'\$in' inside the value of tags"):
        compile_filter({"tags": [{"x": {"$in": [1]}}]})
    assert compile_filter({"a.b": {"$lt": 1}}).path == '$."a"."b" < $v0'


def _deep(depth, leaf=None):
    where: dict = leaf or {"n": 1}
    for i in range(depth):
        where = {"$or": [where]} if i % 2 else {"$not": where}
    return where


@pytest.mark.parametrize(
    ("where", "message"),
    [
        # the audit's: 10,000 branches gave a raw "memory exhausted" from the jsonpath parser, 20,000
        # "stack depth limit exceeded"; refused in Python, before a round trip
        ({"$or": [{"n": {"$eq": i}} for i in range(10_000)]}, "at most 256 filters in one \\$or, got 10000"),
        ({"$and": [{"n": i} for i in range(20_000)]}, "at most 256 filters in one \\$and, got 20000"),
        ({"$or": [{"n": {"$eq": i}} for i in range(257)]}, "at most 256 filters in one \\$or, got 257"),
        # under the branch cap per list, over the conditions cap in all
        ({"$or": [{"$and": [{f"f{j}": i} for j in range(3)]} for i in range(200)]}, "at most 512 conditions"),
        ({f"f{i}": {"$gt": i} for i in range(513)}, "at most 512 conditions"),
        ({"$or": [{"tags": list(range(600))}]}, "at most 512 conditions"),
        (_deep(17), "nested at most 16 levels"),
        (_deep(100_000), "nested at most 16 levels"),
        ({"$or": [{".".join(["f" * 63] * 4) + f".x{i}": 1} for i in range(256)]}, "at most 65536 characters compiled"),
    ],
)
def test_oversized_filters_are_refused_before_the_database(where, message):
    with pytest.raises(errors.InvalidInputError, match=message):
        compile_filter(where)


def test_filters_up_to_the_caps_compile():
    from semsearch.filters import MAX_BRANCHES, MAX_CONDITIONS, MAX_LOGICAL_DEPTH, MAX_PATH_CHARS

    assert (MAX_BRANCHES, MAX_CONDITIONS, MAX_LOGICAL_DEPTH, MAX_PATH_CHARS) == (256, 512, 16, 65536)
    f = compile_filter({"$or": [{"n": i} for i in range(256)]})
    assert len(f.vars) == 256 and f.path.count(" || ") == 255
    assert len(compile_filter({f"f{i}": {"$gt": i} for i in range(512)}).vars) == 512
    assert compile_filter(_deep(16)).path.count("$or") == 0
