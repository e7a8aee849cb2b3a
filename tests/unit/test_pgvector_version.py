"""pgvector's version: parsed from strings, and refused below MIN_PGVECTOR (no Postgres needed)."""

from __future__ import annotations

import pytest

from semsearch import errors
from semsearch.server import MIN_PGVECTOR, check_pgvector, pgvector_version


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("0.8.5", (0, 8, 5)),
        ("0.8.2", (0, 8, 2)),
        ("0.8.10", (0, 8, 10)),
        ("0.10.0", (0, 10, 0)),
        ("1.0", (1, 0, 0)),
        ("0.9.0-dev", (0, 9, 0)),
        ("dev", None),
        ("", None),
        (None, None),
    ],
)
def test_versions_parse_as_numbers_not_strings(text, parsed):
    assert pgvector_version(text) == parsed


def test_the_minimum_is_the_release_that_fixed_the_parallel_build_overflow():
    assert MIN_PGVECTOR == (0, 8, 2)
    # "0.8.10" > "0.8.2" as numbers, not as strings
    assert pgvector_version("0.8.10") > MIN_PGVECTOR > pgvector_version("0.8.1")


@pytest.mark.parametrize(("packaged", "installed"), [("0.8.2", "0.8.2"), ("0.8.5", None), ("0.10.0", "0.8.10")])
def test_recent_pgvector_passes(packaged, installed, recwarn):
    check_pgvector(packaged, installed)
    check_pgvector(packaged, installed, read_only=True)
    assert len(recwarn) == 0


@pytest.mark.parametrize(
    ("packaged", "installed", "got", "fix"),
    [
        ("0.8.1", "0.8.1", "got 0.8.1", "install pgvector >= 0.8.2 on the server"),
        ("0.7.4", None, "got 0.7.4", "then run ALTER EXTENSION vector UPDATE in each database"),
        ("0.8.5", "0.8.1", "got 0.8.1", "run ALTER EXTENSION vector UPDATE in this database (the server has 0.8.5)"),
        ("0.8.5", "0.5.0", "got 0.5.0", "ALTER EXTENSION vector UPDATE"),
        ("dev", "dev", "got dev", "install pgvector >= 0.8.2"),
    ],
)
def test_old_pgvector_is_refused_naming_the_fix_or_warned_about_when_read_only(packaged, installed, got, fix):
    with pytest.raises(errors.ExtensionVersionError) as info:
        check_pgvector(packaged, installed)
    message = str(info.value)
    assert message.startswith(f"expected pgvector >= 0.8.2, {got}: upgrade pgvector to >= 0.8.2 (")
    assert fix in message and "CVE-2026-3172" in message
    assert isinstance(info.value, errors.DatabaseError)
    with pytest.warns(UserWarning, match="a read-only server: searching it is allowed"):
        check_pgvector(packaged, installed, read_only=True)
