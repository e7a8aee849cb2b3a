"""Run semsearch's alembic migrations from code (the CLI, integrations and tests use this)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from semsearch import bm25, catalog, generated, planner, statements
from semsearch.changes import ddl_lock
from semsearch.collection_info import CollectionInfo

VERSION_TABLE = "semsearch.alembic_version"


def sqlalchemy_url(url: str) -> sa.URL:
    """A libpq URL or ``key=value`` string as a SQLAlchemy URL on the psycopg 3 driver.

    >>> sqlalchemy_url("host=/tmp/sock dbname=app").render_as_string()
    'postgresql+psycopg:///app?host=%2Ftmp%2Fsock'
    """
    params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    # host and port ride in the query: psycopg takes them as-is, unix sockets included
    return sa.URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        database=params.pop("dbname", None),
        query=params,
    )


def migrations_dir() -> Path:
    """Where semsearch's migrations are: inside the installed package (wheels carry them as
    ``semsearch/migrations``), else the source tree's top-level ``migrations/`` (editable installs)."""
    packaged = resources.files("semsearch") / "migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[1] / "migrations"


def alembic_config() -> Config:
    """An alembic Config pointing at semsearch's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head() -> str:
    """The newest migration this library ships."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def _run(url: str, fn: str, revision: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            getattr(command, fn)(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> list[str]:
    """Bring semsearch's schema up to ``revision``; at the head, every collection's generated objects too.

    Returns the collections whose functions and triggers were made again from this version's
    code (:func:`regenerate`).

    Example::

        upgrade(db.url)
    """
    _run(url, "upgrade", revision)
    if revision not in ("head", head()):
        return []  # an older schema than this code's: its generated objects are the older code's business
    with psycopg.connect(url, autocommit=True) as conn:
        return regenerate(conn)


def downgrade(url: str, revision: str = "base") -> None:
    """Take semsearch's schema down to ``revision`` ("base" drops every collection)."""
    _run(url, "downgrade", revision)


def regenerate(conn: psycopg.Connection[Any]) -> list[str]:
    """Bring every collection's generated objects to this version's code; the names of those remade.

    Run by :func:`upgrade` after the migrations (as the schema's owner); see :mod:`semsearch.generated`.
    """
    with conn.transaction():
        conn.execute(generated.VERSION_FUNCTION)
        for stmt in planner.function_statements():
            conn.execute(stmt)
    remade = []
    rows = conn.cursor(row_factory=dict_row).execute(catalog.SELECT_ALL).fetchall()
    for row in rows:
        if row["statements_version"] == statements.STATEMENTS_VERSION:
            continue
        info = CollectionInfo.from_row({k: v for k, v in row.items() if k != "statements_version"})
        names = bm25.Names(info.layout.table_name)
        with ddl_lock(conn, info.name), conn.transaction():
            found = conn.execute("SELECT to_regclass(%s)", [f"semsearch.{names.postings}"]).fetchone()
            for stmt in generated.regenerate_statements(
                info, has_statistics=found is not None and found[0] is not None
            ):
                conn.execute(stmt)
        remade.append(info.name)
    return remade
