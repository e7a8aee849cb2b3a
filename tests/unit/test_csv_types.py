"""CSV cells as JSON values: the inference rule and forced types."""

from __future__ import annotations

import pytest

from semsearch.csv_types import convert, infer, parse_types


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("", None),
        ("0", 0),
        ("-12", -12),
        ("+7", 7),
        ("007", "007"),
        ("2.5", 2.5),
        ("-0.1", -0.1),
        (".5", 0.5),
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        ("00.5", "00.5"),
        ("1e999", "1e999"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1,000", "1,000"),
        (" 42", " 42"),
        ("true", True),
        ("FALSE", False),
        ("yes", "yes"),
        ("null", "null"),
        ("hello", "hello"),
    ],
)
def test_inference_per_cell(cell, value):
    got = infer(cell)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("cell", "kind", "value"),
    [
        ("007", "int", 7),
        (" 5 ", "int", 5),
        ("", "int", None),
        ("3", "float", 3.0),
        ("1", "bool", True),
        ("False", "bool", False),
        ("", "str", ""),
        ("007", "str", "007"),
        ('["a", 1]', "json", ["a", 1]),
        ("", "json", None),
    ],
)
def test_forced_types(cell, kind, value):
    got = convert(cell, kind)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("cell", "kind", "message"),
    [
        ("2.5", "int", "expected an int in this column, got '2.5'"),
        ("nan", "float", "expected a float in this column, got 'nan'"),
        ("yes", "bool", "expected a bool in this column, got 'yes'"),
        ("[1,", "json", "expected JSON, got '[1,'"),
        ("NaN", "json", "expected JSON, got 'NaN'"),
    ],
)
def test_cells_that_do_not_fit_their_type(cell, kind, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        convert(cell, kind)


def test_parse_types():
    assert parse_types("year=int, ok=bool,") == {"year": "int", "ok": "bool"}
    for bad in ("year", "year=date", "=int", ","):
        with pytest.raises(ValueError, match="expected column=type"):
            parse_types(bad)
