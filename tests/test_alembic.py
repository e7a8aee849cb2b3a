"""semsearch's alembic operations inside a user's own alembic project (written to tmp_path)."""

from __future__ import annotations

import io
import textwrap
import warnings
from pathlib import Path

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import semsearch.migrate
from semsearch import ddl, errors
from semsearch import statements as search_statements
from semsearch.alembic import (
    AlterCollectionOp,
    CreateCollectionOp,
    DropCollectionOp,
    include_name,
    include_object,
)
from semsearch.migrate import sqlalchemy_url

# a model label with everything a driver or SQLAlchemy might take for a parameter or escape
ODD_MODEL = "odd :label %s 100% ?x $1 \\:y"

ENV_PY = """
from alembic import context
import semsearch.alembic  # noqa: F401
from semsearch.alembic import include_name, include_object

if context.is_offline_mode():
    context.configure(url="postgresql+psycopg://", literal_binds=True, dialect_opts={"paramstyle": "named"})
else:
    context.configure(connection=context.config.attributes["connection"], target_metadata=None,
                      include_schemas=True, include_name=include_name, include_object=include_object,
                      transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
"""

MIGRATIONS = {
    "0001": (
        None,
        f"""
        op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text))
        op.create_collection("movies", model="text-embedding-3-small", dims=1536, compression="bit")
        op.create_collection("odd", model={ODD_MODEL!r}, dims=8, compression="none")
        """,
        """
        op.drop_collection("odd")
        op.drop_collection("movies")
        op.drop_table("notes")
        """,
    ),
    "0002": (
        "0001",
        """
        op.alter_collection("movies", compression="mrl:256", hnsw_m=12, old={"compression": "bit", "hnsw_m": 16})
        """,
        """
        from semsearch.alembic import AlterCollectionOp
        change = AlterCollectionOp("movies", compression="mrl:256", hnsw_m=12, old={"compression": "bit", "hnsw_m": 16})
        op.invoke(change.reverse())
        """,
    ),
    "0003": (
        "0002",
        'op.rebuild_collection_index("movies")',
        'op.rebuild_collection_index("movies", concurrently=False)',
    ),
}


class Base(DeclarativeBase):
    pass


class Note(Base):
    """The user's own model, in their own table next to semsearch's."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    body: Mapped[str | None] = mapped_column(sa.Text)


def _project(tmp_path: Path) -> Path:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV_PY)
    for rev, (down, up, back) in MIGRATIONS.items():
        body = (
            f"from alembic import op\nimport sqlalchemy as sa\n\nrevision = {rev!r}\ndown_revision = {down!r}\n\n"
            f"def upgrade():\n{textwrap.indent(textwrap.dedent(up).strip(), '    ')}\n\n"
            f"def downgrade():\n{textwrap.indent(textwrap.dedent(back).strip(), '    ')}\n"
        )
        (tmp_path / "versions" / f"{rev}.py").write_text(body)
    return tmp_path


@pytest.fixture
def engine(db_url):
    eng = sa.create_engine(sqlalchemy_url(db_url), poolclass=sa.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def statements(engine):
    """Every statement the engine runs, with whether the driver was in autocommit (outside a transaction)."""
    log: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, *args):
        log.append((statement, conn.connection.driver_connection.autocommit))

    sa.event.listen(engine, "before_cursor_execute", record)
    return log


@pytest.fixture
def migrate(tmp_path, engine):
    """``migrate("upgrade", "0002")`` runs the user's migrations the way alembic's env.py template does."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_project(tmp_path)))

    def run(fn: str, rev: str) -> None:
        with engine.connect() as conn:  # not begin(): alembic must own the transaction for autocommit_block()
            cfg.attributes["connection"] = conn
            getattr(command, fn)(cfg, rev)

    return run


def _ran(statements: list[tuple[str, bool]], start: str) -> list[bool]:
    """For each statement starting with ``start``: did it run outside a transaction?"""
    return [autocommit for stmt, autocommit in statements if stmt.startswith(start)]


def _index(db) -> tuple[str, int]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indexrelid::int FROM pg_index i "
            "WHERE i.indrelid = 'semsearch.col_movies'::regclass AND i.indisvalid "
            "AND i.indexrelid::regclass::text LIKE '%hnsw%'"
        ).fetchall()
    assert len(rows) == 1, rows  # no _hnsw_next left behind
    return rows[0]


def _searches_right(db, full) -> None:
    col = db.collection("movies")
    for q in full[:5]:
        assert col.search(vector=q, k=5).keys == col.search(vector=q, k=5, exact=True).keys


def test_create_alter_rebuild_and_back(migrate, db, movies, statements):
    titles, full, _ = movies
    migrate("upgrade", "0001")
    db.collection("movies").add(keys=titles, contents=titles, embeddings=full)
    assert "binary_quantize" in _index(db)[0]
    _searches_right(db, full)

    migrate("upgrade", "0002")
    definition, oid = _index(db)
    assert "l2_normalize(subvector(embedding, 1, 256))" in definition and "m='12'" in definition
    assert db.collection("movies").info.compression == "mrl:256"
    _searches_right(db, full)

    # the build ran outside any transaction, the swap inside one
    assert _ran(statements, 'CREATE INDEX CONCURRENTLY "col_movies_hnsw_next"') == [True]
    assert _ran(statements, 'ALTER INDEX "semsearch"."col_movies_hnsw_next" RENAME') == [False]

    migrate("upgrade", "0003")
    definition, rebuilt = _index(db)
    assert rebuilt != oid and "subvector(embedding, 1, 256)" in definition
    _searches_right(db, full)

    statements.clear()
    migrate("downgrade", "0002")  # a rebuild inside the transaction this time
    assert _index(db)[1] != rebuilt
    assert _ran(statements, 'CREATE INDEX "col_movies_hnsw_next"') == [False]
    assert _ran(statements, "CREATE INDEX CONCURRENTLY") == []
    migrate("downgrade", "0001")
    definition, _ = _index(db)
    assert "binary_quantize" in definition and "m='16'" in definition
    assert (db.collection("movies").info.compression, db.collection("movies").info.hnsw_m) == ("bit", 16)
    _searches_right(db, full)

    migrate("downgrade", "base")
    assert db.collections() == []
    with db.connection() as conn:
        assert conn.execute("SELECT to_regclass('semsearch.col_movies'), to_regclass('notes')").fetchone() == (
            None,
            None,
        )


def _assert_catalog_exact(db) -> None:
    """The odd label and the SQL functions' bodies (with their $n and jsonb ? operators) arrive byte for byte."""
    expected = ddl.make_info("odd", model=ODD_MODEL, dims=8, compression="none")
    assert db.collection("odd").info == expected
    with db.connection() as conn:
        stored = conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'col_odd_ann' AND pronamespace = 'semsearch'::regnamespace"
        ).fetchone()[0]
    made = search_statements.function_statements(expected.layout)[0].as_string(None)
    assert stored.replace("'", "''") in made
    col = db.collection("odd")
    col.add(keys=["a", "b"], contents=["a", "b"], embeddings=np.eye(8)[:2])
    assert col.search(vector=np.eye(8)[1], k=1, where={"x": 1}).keys == []
    assert col.search(vector=np.eye(8)[1], k=1).keys == ["b"]


def test_values_pass_through_unescaped(migrate, db):
    migrate("upgrade", "0001")
    _assert_catalog_exact(db)


def test_naive_text_would_take_a_label_for_a_bind_parameter():
    stmt = ddl.create_statements(ddl.make_info("odd", model=ODD_MODEL, dims=8))[-1].as_string(None)
    assert "label" in sa.text(stmt).compile(dialect=postgresql.dialect()).params


def test_offline_sql_runs_as_rendered(tmp_path, db_url, db):
    cfg = Config(output_buffer=(buf := io.StringIO()))
    cfg.set_main_option("script_location", str(_project(tmp_path)))
    command.upgrade(cfg, "0001", sql=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(buf.getvalue())  # no parameters: psycopg sends the script as it is
    _assert_catalog_exact(db)
    with pytest.raises(errors.ConfigurationError, match="offline --sql mode"):
        command.upgrade(cfg, "0001:0002", sql=True)


def test_autogenerate_sees_only_the_users_tables(migrate, engine):
    migrate("upgrade", "head")
    with engine.connect() as conn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            unfiltered = compare_metadata(
                MigrationContext.configure(conn, opts={"include_schemas": True}), Base.metadata
            )
        with warnings.catch_warnings():
            # SQLAlchemy reflects the pgvector columns and warns about their types (unless
            # pgvector.sqlalchemy was imported by then): include_object alone hides the diffs only
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            only_objects = compare_metadata(
                MigrationContext.configure(conn, opts={"include_schemas": True, "include_object": include_object}),
                Base.metadata,
            )
        # filterwarnings = error: with include_name the semsearch schema is not even reflected
        with_names = compare_metadata(
            MigrationContext.configure(
                conn, opts={"include_schemas": True, "include_name": include_name, "include_object": include_object}
            ),
            Base.metadata,
        )
    removed = {f"{d[1].schema}.{d[1].name}" for d in unfiltered if d[0] == "remove_table"}
    assert {"semsearch.collections", "semsearch.col_movies", "semsearch.alembic_version"} <= removed
    assert only_objects == [] and with_names == []


def test_reverses_and_errors(tmp_path, migrate, engine, db_url):
    assert CreateCollectionOp("m", model="label", dims=8).reverse().name == "m"
    recreate = DropCollectionOp("m", model="label", dims=8, compression="none").reverse()
    assert recreate.collection_info == ddl.make_info("m", model="label", dims=8, compression="none")
    back = AlterCollectionOp("m", compression="bit", old={"compression": "none", "oversample": 3}).reverse()
    assert (back.changes, back.old) == ({"compression": "none", "oversample": 3}, {"compression": "bit"})
    with pytest.raises(errors.ConfigurationError, match="expected some of compression"):
        AlterCollectionOp("movies", colour="red")
    with pytest.raises(errors.ConfigurationError, match="to reverse it"):
        DropCollectionOp("movies").reverse()
    with pytest.raises(errors.ConfigurationError, match="model="):
        DropCollectionOp("movies", dims=8)
    migrate("upgrade", "0001")
    cfg = Config()
    cfg.set_main_option("script_location", str(tmp_path))
    with pytest.raises(errors.ConfigurationError, match=r"engine\.connect\(\)"), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with engine.connect() as conn:
        op = Operations(MigrationContext.configure(conn))
        with pytest.raises(errors.CollectionExistsError):
            op.create_collection("movies", model="label", dims=8)
        with pytest.raises(errors.CollectionNotFoundError):
            op.alter_collection("nope", oversample=2)
        op.drop_collection("nope", missing_ok=True)
    semsearch.migrate.downgrade(db_url)
    with engine.connect() as conn, pytest.raises(errors.SchemaVersionError, match="semsearch db upgrade"):
        Operations(MigrationContext.configure(conn)).drop_collection("movies")


def test_the_0_1_0_module_name_still_works_and_says_where_it_moved():
    import importlib
    import sys

    sys.modules.pop("semsearch.alembic_ops", None)
    with pytest.warns(DeprecationWarning, match="semsearch.alembic_ops is now semsearch.alembic"):
        old = importlib.import_module("semsearch.alembic_ops")
    assert old.include_object is include_object and old.AlterCollectionOp is AlterCollectionOp
