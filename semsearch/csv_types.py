"""CSV cells as JSON values: one type per column, inferred from all its cells or forced.

Inference (the default for ``semsearch ingest`` of CSV files) looks at every cell of a
column, so that one filter matches the whole column (a zip code column of ``02134`` and
``90210`` stays text in both rows). An empty cell is null (a missing value:
``{"col": None}`` filters find it) and does not vote. A column is

- ``int`` when every other cell is an integer (``-12``, ``+7``, ``0``; no leading zeros,
  so ``007`` and zip codes stay text);
- ``float`` when every other cell is a number, decimals included (``2.5``, ``-0.1``,
  ``1e-3``, ``.5``; finite, no leading zeros before the point): all its cells are floats;
- ``bool`` when every other cell is ``true`` / ``false`` (any case);
- ``str`` otherwise (a single ``nan``, ``1,000``, `` 42`` with spaces or ``007`` is enough):
  every cell stays text.

Forced types (``--metadata-types year=int,price=float,ok=bool,tags=json,zip=str``) apply to
their columns whatever the cells look like: ``int`` takes any digits (``007`` is 7), ``float``
any finite number, ``bool`` true/false/1/0, ``json`` any JSON, ``str`` the cell as is. An
empty cell is null except for ``str``; a cell that is not of its type stops the ingest at
its file and line.

Example::

    >>> column_kind(["02134", "90210"]), column_kind(["1995", ""]), column_kind(["1", "2.5"])
    ('str', 'int', 'float')
    >>> infer("42"), infer("2.5"), infer("TRUE"), infer(""), infer("007")
    (42, 2.5, True, None, '007')
    >>> parse_types("year=int,ok=bool")
    {'year': 'int', 'ok': 'bool'}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

TYPES = ("str", "int", "float", "bool", "json")

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_BOOLS = {"true": True, "false": False}


def column_kind(cells: Iterable[str]) -> str:
    """The type inferred for a column from all its cells (see the module's rules)."""
    kinds = {_cell_kind(cell) for cell in cells if cell != ""}
    if kinds <= {"int"} and kinds:
        return "int"
    if kinds <= {"int", "float"} and kinds:
        return "float"
    if kinds == {"bool"}:
        return "bool"
    return "str"


def inferred(cell: str, kind: str) -> Any:
    """``cell`` of a column whose cells are all of ``kind`` (:func:`column_kind`); empty is null."""
    if cell == "":
        return None
    if kind == "bool":
        return _BOOLS[cell.lower()]
    return {"int": int, "float": float}.get(kind, str)(cell)


def _cell_kind(cell: str) -> str:
    value = infer(cell)
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float"}.get(type(value), "str")


def infer(cell: str) -> Any:
    """The JSON value one CSV cell looks like on its own (a column's type needs all its cells)."""
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
