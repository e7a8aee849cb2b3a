"""Citus is a layout (issue 18, item 5): what depends on distribution is asked of the layout, never branched on.

Before: ~50 mentions of ``distributed_by`` in 17 modules, each deciding for itself what a
distributed table changes. Now a collection's :class:`~semsearch.layout.Layout` answers
(``distributed``, ``tenant_in_key``, ``routes_by_tenant``, ``statement_triggers``,
``locks_rows_first``, ``correlates_local_tables``, ``set_local_sql``, ``check_one_server``,
``unique_key``) and only the modules below hold the value itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import semsearch
from semsearch.errors import ConfigurationError
from semsearch.layout import Layout
from semsearch.plans import Plan

ROOT = Path(semsearch.__file__).parent

#: where the distribution column may be named: the layout (which answers every decision), the catalog
#: row (which stores it) and a new one's checked settings, the statement builders, and semsearch.distributed
#: (Citus' own I/O)
ALLOWED = {
    "layout", "collection_info", "collection_settings", "catalog", "distributed", "ddl", "statements", "generated"
}  # fmt: skip
_MENTION = re.compile(r"\bdistributed_by\b")


def mentions(root: Path) -> dict[str, int]:
    """Each module under ``root`` (dotted, without ``semsearch.``) that names ``distributed_by``, and how often."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        n = len(_MENTION.findall(path.read_text(encoding="utf-8")))
        if n:
            found[".".join(path.relative_to(root).with_suffix("").parts)] = n
    return found


def test_the_finder_finds_a_mention(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.py").write_text("if info.distributed_by == 'tenant':\n    x = layout.distributed_by\n")
    (tmp_path / "other.py").write_text("distribute_by = None  # not the column\n")
    assert mentions(tmp_path) == {"sub.mod": 2}


def test_only_the_layout_the_catalog_the_statements_and_citus_name_the_distribution_column() -> None:
    outside = {m: n for m, n in mentions(ROOT).items() if m not in ALLOWED}
    assert outside == {}, f"ask the collection's Layout instead of branching on distributed_by: {outside}"


def _layout(by: str | None) -> Layout:
    return Layout("docs", dims=8, storage="vector", plan=Plan.parse("halfvec", dims=8), distributed_by=by)


@pytest.mark.parametrize(
    ("by", "answers"),
    [
        (None, (False, False, False, True, True, True, "key")),
        ("key", (True, False, False, False, False, False, "key")),
        ("tenant", (True, True, True, False, False, False, "tenant, key")),
    ],
)
def test_the_layout_answers_each_decision(by: str | None, answers: tuple[object, ...]) -> None:
    layout = _layout(by)
    got = (
        layout.distributed,
        layout.tenant_in_key,
        layout.routes_by_tenant,
        layout.statement_triggers,
        layout.locks_rows_first,
        layout.correlates_local_tables,
        layout.unique_key.as_string(None),
    )
    assert got == answers


def test_local_settings_reach_the_workers_of_a_distributed_table() -> None:
    plain = [s.as_string(None) for s in _layout(None).set_local_sql({"semsearch.upsert": "on"})]
    assert plain == ["SELECT set_config('semsearch.upsert', 'on', true)"]
    sharded = [s.as_string(None) for s in _layout("key").set_local_sql({"semsearch.upsert": "on"})]
    assert sharded == ["SET LOCAL citus.propagate_set_commands = 'local'", 'SET LOCAL "semsearch"."upsert" = \'on\'']


def test_a_distributed_collection_is_refused_where_one_server_is_needed() -> None:
    _layout(None).check_one_server(" to sync a table to")
    with pytest.raises(ConfigurationError, match=r"^expected a collection on one server to sync a table to, got 'docs' "
                       r"distributed by tenant \(why\)$"):  # fmt: skip
        _layout("tenant").check_one_server(" to sync a table to", " (why)")
