"""CSV cells as JSON values: the inference rule and forced types."""

from __future__ import annotations

import pytest

from semsearch.csv_types import column_kind, convert, infer, parse_types
from semsearch.readers import Fields, read_csv


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


@pytest.mark.parametrize(
    ("cells", "kind"),
    [
        (["02134", "90210", ""], "str"),  # one leading zero keeps the whole column text
        (["1995", "2001", ""], "int"),
        (["1", "2.5", "-0.1"], "float"),
        (["true", "FALSE", ""], "bool"),
        (["true", "1"], "str"),
        (["42", "n/a"], "str"),
        (["", ""], "str"),
    ],
)
def test_inference_per_column(cells, kind):
    assert column_kind(cells) == kind


def test_a_csv_column_gets_one_type_whatever_its_cells_look_like(tmp_path):
    src = tmp_path / "places.csv"
    src.write_text("key,content,zip,pop,price,ok\na,Boston,02134,650000,1,true\nb,Beverly Hills,90210,,2.5,false\n")
    rows = list(read_csv(src, Fields()))
    assert [r[3] for r in rows] == [
        {"zip": "02134", "pop": 650000, "price": 1.0, "ok": True},
        {"zip": "90210", "pop": None, "price": 2.5, "ok": False},
    ]
    assert type(rows[0][3]["price"]) is float  # one JSON type per column: numbers compare alike
