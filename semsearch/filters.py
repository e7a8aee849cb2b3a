"""Metadata filters: a small Mongo-style dict compiled to jsonb containment plus a jsonpath.

Plain values mean containment (``{"lang": "es"}``, ``{"tags": ["kids"]}``) and
use the GIN index on metadata. Operators build a jsonpath predicate whose
values travel as bound variables, never as SQL or jsonpath text:
``$eq $ne $lt $lte $gt $gte $in $nin $contains $exists``.

Filters combine with ``$and`` and ``$or`` (non-empty lists of filters) and ``$not``
(one filter; also on a field: ``{"f": {"$not": {"$lt": 3}}}``), nested at most
:data:`MAX_LOGICAL_DEPTH` levels. A plain value under them means what it means at
the top level (containment, and None for missing or null), compiled into the
jsonpath instead of containment, so the whole filter stays one jsonpath expression
with bound variables. ``$not`` keeps exactly the rows its filter does not: a row
whose field has another type than the value compared with is not matched by the
comparison, so it is matched by its ``$not``. One difference from containment, only
with lists inside lists: under ``$and/$or/$not`` jsonpath's lax mode looks into a
list held in a list, so ``{"t": ["a"]}`` there also matches a stored ``[["a"]]``.

None (JSON null) means "no value", whether the field is absent or holds null:

- ``{"f": None}`` and ``{"f": {"$eq": None}}`` match rows where ``f`` is missing
  or null; ``{"f": {"$ne": None}}`` matches rows where ``f`` exists and is not null.
- ``{"f": {"$in": ["a", None]}}`` matches ``f == "a"`` and rows where ``f`` is
  missing or null; ``$nin`` with None leaves those rows out.
- A None inside a plain dict value counts as its dotted field:
  ``{"a": {"b": None}}`` is ``{"a.b": None}``. A None field inside an object in a
  list (``{"tags": [{"x": None}]}``) is refused: it has no such reading.
- ``$lt $lte $gt $gte`` with None are refused. ``{"f": {"$contains": None}}``
  matches a list ``f`` holding a null; like every ``$contains``, an ``f`` that is
  not a list counts as a list of itself, so a null ``f`` matches too.

These compile into the jsonpath (``!exists($."f") || $."f".type() == "null"``),
never into containment and never into a variable: so the compiled
:class:`Filter` holds no null in ``contains`` object fields and none in ``vars``.

Limits: at most :data:`MAX_IN_VALUES` values in ``$in`` / ``$nin``, :data:`MAX_BRANCHES`
filters in one ``$and`` / ``$or``, :data:`MAX_CONDITIONS` conditions in the whole filter
(each field condition, and each item compared under ``$and/$or/$not``), a compiled
jsonpath of at most :data:`MAX_PATH_CHARS` characters (the one cap the SQL functions can
hold a caller's own ``filter_path`` to); values nested at most
:data:`semsearch.values.MAX_DEPTH` levels; no nul characters or lone surrogates in keys
or strings. Anything else raises :class:`InvalidInputError`
before the database is asked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semsearch.errors import InvalidInputError
from semsearch.values import check_json, check_text

#: most values one ``$in`` or ``$nin`` takes (they travel as one jsonpath variable)
MAX_IN_VALUES = 1000

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})*$")
_COMPARE = {"$eq": "==", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
OPERATORS = (*_COMPARE, "$in", "$nin", "$contains", "$exists")
#: filters combined: ``{"$or": [filter, ...]}``, ``{"$and": [...]}``, ``{"$not": filter}``
LOGICAL = ("$and", "$or", "$not")
#: deepest nesting of $and / $or / $not
MAX_LOGICAL_DEPTH = 16
#: most filters in one ``$and`` or ``$or`` list. Each one is a term the jsonpath parser nests
#: (20,000 exhaust its stack) and every row tested evaluates in turn: many values of one field
#: belong in one ``$in`` (one variable), not in an ``$or`` of equalities
MAX_BRANCHES = 256
#: most conditions in one filter, all levels together (an ``$or`` of 1,000 equalities took 2.2 s
#: per 10,000 rows filtered, linear in the conditions)
MAX_CONDITIONS = 512
#: longest compiled jsonpath: the one cap a SQL caller's own ``filter_path`` can be held to
MAX_PATH_CHARS = 65536


@dataclass(frozen=True)
class Filter:
    """A compiled filter: what ``semsearch.search(filter, filter_path, filter_vars)`` takes.

    Example::

        f = compile_filter({"lang": "es", "year": {"$gte": 2000}})
        f.contains   # {"lang": "es"}
        f.path       # '$."year" >= $v0'
        f.vars       # {"v0": 2000}
    """

    contains: dict[str, Any] | None
    path: str | None
    vars: dict[str, Any] | None


def _scalar(value: Any, field: str, op: str) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        check_text(value, f"a value for {field} {op}")
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(f"expected a finite number for {field} {op}, got {value!r}")
        return value
    raise InvalidInputError(f"expected a string, number, bool or null for {field} {op}, got {type(value).__name__}")


def _is_null(path: str) -> str:
    # .type() does not unwrap arrays in lax mode, so [null] is an array, not a null
    return f'(!exists({path}) || {path}.type() == "null")'


def _not_null(path: str) -> str:
    # a missing field gives an empty sequence, whose comparison is false
    return f'{path}.type() != "null"'


def _split_nulls(value: Any, field: str, null_fields: list[str]) -> Any:
    """``value`` without its null dict fields, whose dotted names go to ``null_fields``."""
    if not isinstance(value, dict):
        if _has_null_field(value):
            raise InvalidInputError(
                f"expected no null fields inside objects in a list for {field}, got one; "
                "filter on a dotted field with none instead"
            )
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        plain = isinstance(key, str) and _SEGMENT.match(key) is not None
        if (item is None or isinstance(item, dict)) and not plain and _has_null_field({key: item}):
            raise InvalidInputError(
                f"expected a field name of letters, digits and _ for a null in {field}, got {key!r}"
            )
        if item is None:
            null_fields.append(f"{field}.{key}")
        elif isinstance(item, dict) and plain:
            inner = _split_nulls(item, f"{field}.{key}", null_fields)
            if inner or not item:
                kept[key] = inner
        else:
            kept[key] = _split_nulls(item, f"{field}.{key}", null_fields)
    return kept


def _has_null_field(value: Any) -> bool:
    """Whether a dict anywhere in ``value`` has a null field (depth is checked already)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(v is None for v in item.values()):
                return True
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _accessor(field: str) -> str:
    # field segments are checked against _FIELD, so quoting them with json.dumps is exact
    return "$" + "".join("." + json.dumps(part) for part in field.split("."))


def _nest(field: str, value: Any) -> dict[str, Any]:
    for part in reversed(field.split(".")):
        value = {part: value}
    return value


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _operator_key(value: Any) -> str | None:
    """The first ``$``-key anywhere inside a containment value (it would match nothing), or None."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if str(key).startswith("$"):
                    return str(key)
                todo.append(inner)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return None


class _Terms:
    """The filter's variables (called with a value: its ``$name``) and its conditions, counted."""

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}
        self.conditions = 0

    def __call__(self, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = value
        return "$" + name

    def condition(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise InvalidInputError(
                f"expected at most {MAX_CONDITIONS} conditions in a filter, got more "
                "(many values of one field go in one $in)"
            )


def compile_filter(where: Mapping[str, Any] | None) -> Filter:
    """Check and compile a ``where=`` dict; raise :class:`InvalidInputError` on anything unknown.

    Example::

        f = compile_filter({"$or": [{"lang": "es"}, {"year": {"$lt": 1950}}]})
        f.contains   # None: under $or a plain value is a jsonpath predicate too
        f.vars       # {"v0": "es", "v1": 1950}
    """
    if where is None:
        return Filter(None, None, None)
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"expected where= as a dict, got {type(where).__name__}")
    var = _Terms()
    contains: dict[str, Any] = {}
    path = _predicates(where, var, contains, 0)
    if path is not None and len(path) > MAX_PATH_CHARS:
        raise InvalidInputError(f"expected a filter of at most {MAX_PATH_CHARS} characters compiled, got {len(path)}")
    return Filter(contains or None, path, var.variables or None)


def _predicates(where: Mapping[str, Any], var: _Terms, contains: dict | None, depth: int) -> str | None:
    """The jsonpath predicates of ``where``, joined by ``&&``.

    With ``contains`` (the top level), plain values are merged into it, for the GIN index;
    without (under ``$and``, ``$or``, ``$not``), they become jsonpath predicates of the same meaning.
    """
    preds: list[str] = []
    for field, cond in where.items():
        var.condition()
        if field in LOGICAL:
            preds.append(_logical(field, cond, var, depth))
            continue
        if not isinstance(field, str) or not _FIELD.match(field):
            raise InvalidInputError(
                f"expected a metadata field name of letters, digits and _ (dots for nesting), got {field!r}"
            )
        path = _accessor(field)
        if not (isinstance(cond, Mapping) and any(str(k).startswith("$") for k in cond)):
            check_json(cond, f"the filter value of {field}")
            nested = _operator_key(cond)
            if nested is not None:
                raise InvalidInputError(
                    f"expected operators right under a field (dotted names for nesting, e.g. {{'{field}.x': "
                    f"{{'$lt': 1}}}}), got {nested!r} inside the value of {field}"
                )
            if cond is None:
                preds.append(_is_null(path))
                continue
            null_fields: list[str] = []
            kept = _split_nulls(cond, field, null_fields)
            if contains is None:
                preds.append(_contained(path, cond, var, field))
                continue
            preds.extend(_is_null(_accessor(f)) for f in null_fields)
            if kept != {} or cond == {}:
                _merge(contains, _nest(field, kept))
            continue
        for op, value in cond.items():
            if op in ("$eq", "$ne") and value is None:
                preds.append(_is_null(path) if op == "$eq" else _not_null(path))
            elif op in _COMPARE:
                if value is None:
                    raise InvalidInputError(f"expected a string, number or bool for {field} {op}, got none")
                preds.append(f"{path} {_COMPARE[op]} {var(_scalar(value, field, op))}")
            elif op in ("$in", "$nin"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InvalidInputError(f"expected a non-empty list for {field} {op}, got {value!r}")
                if len(value) > MAX_IN_VALUES:
                    raise InvalidInputError(
                        f"expected at most {MAX_IN_VALUES} values for {field} {op}, got {len(value)}"
                    )
                # one variable holding the list, compared existentially: one lookup per row, not
                # one per value (a 1,000-value $in was quadratic in the values for every row)
                values = [_scalar(v, field, op) for v in value if v is not None]
                alts = [f"{path} == {var(values)}[*]"] if values else []
                if any(v is None for v in value):
                    alts.append(_is_null(path))
                ors = " || ".join(alts)
                preds.append(f"({ors})" if op == "$in" else f"!({ors})")
            elif op == "$contains":
                item = _scalar(value, field, op)
                preds.append(f"exists({path}[*] ? (@ == {'null' if item is None else var(item)}))")
            elif op == "$exists":
                if not isinstance(value, bool):
                    raise InvalidInputError(f"expected true or false for {field} $exists, got {value!r}")
                preds.append(f"exists({path})" if value else f"!exists({path})")
            elif op == "$not":
                if not (isinstance(value, Mapping) and value and all(str(k).startswith("$") for k in value)):
                    raise InvalidInputError(f"expected an object of operators for {field} $not, got {value!r:.80}")
                preds.append(_logical("$not", {field: value}, var, depth))
            else:
                raise InvalidInputError(
                    f"expected an operator in {', '.join((*OPERATORS, '$not'))}, got {op!r} on {field}"
                )
    return " && ".join(preds) or None


def _logical(op: str, value: Any, var: _Terms, depth: int) -> str:
    """``$and`` / ``$or`` of a list of filters, or ``$not`` of one, as one jsonpath predicate."""
    if depth >= MAX_LOGICAL_DEPTH:
        raise InvalidInputError(f"expected $and, $or and $not nested at most {MAX_LOGICAL_DEPTH} levels, got deeper")
    if op == "$not":
        if not isinstance(value, Mapping) or not value:
            raise InvalidInputError(f"expected a non-empty object (a filter) for $not, got {value!r:.80}")
        # a comparison of mismatched types is "unknown" in jsonpath, and !unknown is unknown: exists()
        # makes the operand true or false first, so $not keeps exactly the rows the filter leaves out
        return f"!exists($ ? ({_predicates(value, var, None, depth + 1)}))"
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(m, Mapping) and m for m in value):
        raise InvalidInputError(f"expected a non-empty list of non-empty objects (filters) for {op}, got {value!r:.80}")
    if len(value) > MAX_BRANCHES:
        raise InvalidInputError(
            f"expected at most {MAX_BRANCHES} filters in one {op}, got {len(value)} (many values of one field: $in)"
        )
    joiner = " && " if op == "$and" else " || "
    return "(" + joiner.join(f"({_predicates(m, var, None, depth + 1)})" for m in value) + ")"


def _contained(path: str, value: Any, var: _Terms, field: str) -> str:
    """A jsonpath predicate true where the value at ``path`` contains ``value`` as jsonb ``@>`` does,
    with the null reading of the containment form (None: missing or null).

    One difference, in a case only nested lists have: jsonpath's lax mode looks into a list held
    inside a list, so ``{"t": ["a"]}`` here also matches a stored ``{"t": [["a"]]}``.
    """
    if value is None:
        return _is_null(path)
    if isinstance(value, Mapping):
        preds = [f'{path}.type() == "object"'] if not value or any(v is not None for v in value.values()) else []
        for key, item in value.items():
            if not _SEGMENT.match(key):
                raise InvalidInputError(
                    f"expected field names of letters, digits and _ in {field} under $and/$or/$not, got {key!r}"
                )
            var.condition()
            preds.append(_contained(f"{path}.{json.dumps(key)}", item, var, f"{field}.{key}"))
        return "(" + " && ".join(preds) + ")"
    if isinstance(value, (list, tuple)):
        preds = [f'{path}.type() == "array"']
        for item in value:
            var.condition()
            preds.append(f"exists({path}[*] ? ({_contained('@', item, var, field)}))")
        return "(" + " && ".join(preds) + ")"
    kind = "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"
    return f'({path}.type() == "{kind}" && {path} == {var(value)})'
