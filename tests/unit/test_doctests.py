"""The library's docstring examples (``>>>``) run and hold; no Postgres needed."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import semsearch

# django's modules need its settings (tests/test_django_example.py covers them); migrations are alembic's
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(semsearch.__path__, "semsearch.")
    # alembic_ops: the deprecated alias of semsearch.alembic (it warns on import)
    if not m.name.startswith(("semsearch.django", "semsearch.migrations", "semsearch.alembic_ops"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_are_found():
    attempted = sum(doctest.testmod(importlib.import_module(n), report=False).attempted for n in MODULES)
    assert attempted >= 12
