"""CSV cells as JSON values: numbers, booleans and nulls inferred per cell, or types forced per column.

Inference (the default for ``semsearch ingest`` of CSV files), per cell:

- an empty cell is null (a missing value: ``{"col": None}`` filters find it);
- ``true`` / ``false`` (any case) are booleans;
- an integer (``-12``, ``+7``, ``0``; no leading zeros, so ``007`` and zip codes stay text) is a number;
- a decimal (``2.5``, ``-0.1``, ``1e-3``, ``.5``; finite, no leading zeros before the point) is a number;
- anything else (``nan``, ``1,000``, `` 42`` with spaces, ``007``) stays text.

Forced types (``--metadata-types year=int,price=float,ok=bool,tags=json,zip=str``) apply to
their columns whatever the cells look like: ``int`` takes any digits (``007`` is 7), ``float``
any finite number, ``bool`` true/false/1/0, ``json`` any JSON, ``str`` the cell as is. An
empty cell is null except for ``str``; a cell that is not of its type stops the ingest at
its file and line.

Example::

    >>> infer("42"), infer("2.5"), infer("TRUE"), infer(""), infer("007")
    (42, 2.5, True, None, '007')
    >>> parse_types("year=int,ok=bool")
    {'year': 'int', 'ok': 'bool'}
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

TYPES = ("str", "int", "float", "bool", "json")

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_BOOLS = {"true": True, "false": False}


def infer(cell: str) -> Any:
    """The JSON value a CSV cell looks like (see the module's rules)."""
    if cell == "":
        return None
    low = cell.lower()
    if low in _BOOLS:
        return _BOOLS[low]
    if _INT.match(cell):
        return int(cell)
    if _FLOAT.match(cell):
        value = float(cell)
        if math.isfinite(value):
            return value
    return cell


def parse_types(text: str) -> dict[str, str]:
    """``col=type,...`` as a dict; raise ValueError naming what was expected."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        column, sep, kind = item.partition("=")
        if not sep or not column.strip() or kind.strip() not in TYPES:
            raise ValueError(f"expected column=type with a type in {', '.join(TYPES)}, got {item!r}")
        found[column.strip()] = kind.strip()
    if not found:
        raise ValueError(f"expected column=type pairs like year=int,ok=bool, got {text!r}")
    return found


def convert(cell: str, kind: str) -> Any:
    """``cell`` as ``kind``; raise ValueError saying what was expected and what arrived."""
    if kind == "str":
        return cell
    if cell == "":
        return None
    if kind == "json":
        try:
            return json.loads(cell, parse_constant=_no_constant)
        except ValueError as exc:
            raise ValueError(f"expected JSON, got {cell!r:.60} ({exc})") from None
    text = cell.strip()
    if kind == "bool" and text.lower() in (*_BOOLS, "1", "0"):
        return text.lower() in ("true", "1")
    if kind == "int" and re.match(r"^[+-]?[0-9]+$", text):
        return int(text)
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    raise ValueError(f"expected {'an' if kind == 'int' else 'a'} {kind} in this column, got {cell!r:.60}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"expected finite numbers, got {name}")
