"""Checks of the strings and JSON values semsearch sends to Postgres, made before anything is sent.

Postgres text cannot hold a nul character, and UTF-8 cannot encode a lone
surrogate (``"\\ud800"``, which Python strings may hold): sent as they are, both
fail half-way through a batch as a driver or encoding error. Deeply nested JSON
makes ``json.dumps`` raise ``RecursionError``. These checks turn each into an
:class:`InvalidInputError` naming the value and where it is.

Example::

    check_text("hello", "key at position 0")
    check_json({"a": [1, 2]}, "metadata at position 0")
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from semsearch.errors import InvalidInputError

#: deepest nesting of dicts and lists accepted in metadata and filter values
MAX_DEPTH = 32


def text_problem(text: str) -> str | None:
    """What makes ``text`` unstorable in Postgres, or None when it is fine.

    >>> text_problem("a\\x00b")
    'a nul character at index 1'
    >>> text_problem("ok") is None
    True
    """
    nul = text.find("\x00")
    if nul >= 0:
        return f"a nul character at index {nul}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"a lone surrogate {text[exc.start]!r} at index {exc.start}"
    return None


def check_text(text: str, what: str) -> None:
    """Raise :class:`InvalidInputError` if ``text`` holds a nul character or a lone surrogate."""
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInputError(f"expected {what} without nul characters or lone surrogates, got {problem}")


def check_json(value: Any, what: str) -> None:
    """Check that ``value`` becomes jsonb as it is: JSON types only, finite numbers,
    strings Postgres can store, at most :data:`MAX_DEPTH` levels of dicts and lists.

    Walks without recursion, so a value nested 100,000 deep is refused, not a crash.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"strings in {what}")
        elif item is None or isinstance(item, (bool, int)):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInputError(f"expected {what} to be json-serialisable, got the number {item!r}")
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                raise InvalidInputError(f"expected {what} nested at most {MAX_DEPTH} levels deep, got deeper")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        check_text(key, f"keys in {what}")
                    elif not (key is None or isinstance(key, (bool, int, float))):
                        raise InvalidInputError(
                            f"expected {what} to be json-serialisable, got a key of type {type(key).__name__}"
                        )
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        else:
            raise InvalidInputError(
                f"expected {what} to be json-serialisable, got a value of type {type(item).__name__}"
            )
    try:
        # the walk bounds the depth, so this cannot recurse too far; it still catches what the
        # walk lets through and json cannot write (a nan dict key, an int of more than 4300 digits)
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"expected {what} to be json-serialisable, got {exc}") from exc


def float4(x: float) -> float:
    """``x`` as a Postgres ``real`` (float4) holds it, as the shortest decimal that reads back the same.

    A ``real`` read as a Python float shows float32's noise (0.3 is 0.30000001192092896);
    this is the value a user gave, and still the same float4.

    >>> float4(0.30000001192092896), float4(5.199999809265137), float4(1.6999999)
    (0.3, 5.2, 1.6999999)
    """
    return float(str(np.float32(x)))
