"""Plans, the server helpers and the package's imports: no Postgres needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semsearch import errors
from semsearch.plans import Plan
from semsearch.server import check_server, redact


def test_import_semsearch_stays_light():
    code = (
        "import sys, semsearch; heavy = ['sqlalchemy', 'alembic', 'openai', 'matplotlib', 'django', 'flask',"
        " 'semsearch.aio', 'fastapi', 'langchain_core', 'langchain', 'semsearch.langchain', 'llama_index'];"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_schema_head_constant_matches_the_migrations():
    from semsearch import catalog, migrate

    assert migrate.head() == catalog.SCHEMA_HEAD


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app@db.internal/app", "postgresql://app@db.internal/app"),
        ("host=/tmp dbname=app", "host=/tmp dbname=app"),
        ("postgresql://app:s3cret@db.internal/app", "user=app password=*** dbname=app host=db.internal"),
        ("app:s3cret@db.internal/app", "the database"),
    ],
)
def test_redact_masks_passwords_only(url, shown):
    assert redact(url) == shown


def test_a_url_that_does_not_parse_never_prints_its_password():
    with pytest.raises(errors.DatabaseError) as info:
        check_server("app:s3cret@db.internal/app")
    assert "s3cret" not in str(info.value) and info.value.__cause__ is None and info.value.__context__ is None


def test_funnel_plan_parsing():
    plan = Plan.parse("bit->mrl:256->full", dims=1536)
    assert (plan.kind, plan.dims, plan.middle, str(plan)) == ("bit", 1536, (256,), "bit->mrl:256")
    assert plan.default_oversample == 64
    for bad in ["bit->", "bit->bit", "bit->mrl:1536", "bit->halfvec", "mrl:4000->mrl:256"]:
        with pytest.raises(errors.CompressionPlanError):
            Plan.parse(bad, dims=1536)


def test_the_readme_table_of_kinds_is_made_from_plans_kinds():
    from pathlib import Path

    from semsearch.plans import kinds_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert kinds_table() in readme


@pytest.mark.parametrize("kind", ["bit", "mrl:64", "mrl-bit:64", "halfvec", "none"])
def test_every_kind_parses_prints_back_and_has_sql(kind):
    from psycopg import sql

    plan = Plan.parse(kind, dims=256)
    assert str(plan) == kind
    text = sql.Composed([plan.expression(sql.SQL("e"), dims=256, storage="vector")]).as_string(None)
    assert "e" in text and plan.default_oversample >= 1
    assert plan.opclass("vector").as_string(None).endswith("_ops")
