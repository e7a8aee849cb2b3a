"""Metadata filters: a small Mongo-style dict compiled to jsonb containment plus a jsonpath.

Plain values mean containment (``{"lang": "es"}``, ``{"tags": ["kids"]}``) and
use the GIN index on metadata. Operators build a jsonpath predicate whose
values travel as bound variables, never as SQL or jsonpath text:
``$eq $ne $lt $lte $gt $gte $in $nin $contains $exists``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semsearch.errors import InvalidInputError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})*$")
_COMPARE = {"$eq": "==", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
OPERATORS = (*_COMPARE, "$in", "$nin", "$contains", "$exists")


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
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(f"expected a finite number for {field} {op}, got {value!r}")
        return value
    raise InvalidInputError(f"expected a string, number, bool or null for {field} {op}, got {type(value).__name__}")


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


def compile_filter(where: Mapping[str, Any] | None) -> Filter:
    """Check and compile a ``where=`` dict; raise :class:`InvalidInputError` on anything unknown."""
    if where is None:
        return Filter(None, None, None)
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"expected where= as a dict, got {type(where).__name__}")
    contains: dict[str, Any] = {}
    preds: list[str] = []
    variables: dict[str, Any] = {}

    def var(value: Any) -> str:
        name = f"v{len(variables)}"
        variables[name] = value
        return "$" + name

    for field, cond in where.items():
        if not isinstance(field, str) or not _FIELD.match(field):
            raise InvalidInputError(
                f"expected a metadata field name of letters, digits and _ (dots for nesting), got {field!r}"
            )
        path = _accessor(field)
        if not (isinstance(cond, Mapping) and any(str(k).startswith("$") for k in cond)):
            try:
                json.dumps(cond, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"expected a json value for {field}, got {cond!r}") from exc
            _merge(contains, _nest(field, cond))
            continue
        for op, value in cond.items():
            if op in _COMPARE:
                preds.append(f"{path} {_COMPARE[op]} {var(_scalar(value, field, op))}")
            elif op in ("$in", "$nin"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InvalidInputError(f"expected a non-empty list for {field} {op}, got {value!r}")
                ors = " || ".join(f"{path} == {var(_scalar(v, field, op))}" for v in value)
                preds.append(f"({ors})" if op == "$in" else f"!({ors})")
            elif op == "$contains":
                preds.append(f"exists({path}[*] ? (@ == {var(_scalar(value, field, op))}))")
            elif op == "$exists":
                if not isinstance(value, bool):
                    raise InvalidInputError(f"expected true or false for {field} $exists, got {value!r}")
                preds.append(f"exists({path})" if value else f"!exists({path})")
            else:
                raise InvalidInputError(f"expected an operator in {', '.join(OPERATORS)}, got {op!r} on {field}")
    return Filter(contains or None, " && ".join(preds) or None, variables or None)
