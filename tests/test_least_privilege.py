"""Per-collection rights, enforced by the database on the shared tables, with real LOGIN roles.

A writer of one collection (``db.grant(role, "a", write=True)``) may tune ``a`` and see ``a``'s
quarantine, and nothing of ``b``, however it connects (Python or raw SQL); what is stored in
the catalog is checked where it is stored and where it is read.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
import semsearch.aio
from semsearch import errors


@pytest.fixture
def roles(db: semsearch.Database) -> Iterator[dict[str, str]]:
    """LOGIN roles: ``w1`` writes collection a, ``r1`` reads it, ``stranger`` has no grant."""
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"ss_{kind}_{tag}" for kind in ("w1", "r1", "stranger")}
    with db.connection() as conn:
        for name in names.values():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA semsearch TO {}").format(sql.Identifier(names["stranger"])))
        conn.execute(
            sql.SQL("GRANT SELECT ON semsearch.collections, semsearch.alembic_version TO {}").format(
                sql.Identifier(names["stranger"])
            )
        )
    db.grant(names["w1"], "a", write=True)
    db.grant(names["r1"], "a")
    yield names
    with db.connection() as conn:
        for name in names.values():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def two(db: semsearch.Database, movies) -> tuple[semsearch.Collection, semsearch.Collection]:
    titles, _, short = movies
    a = db.create_collection("a", dims=256, model="label", compression="bit")
    b = db.create_collection("b", dims=256, model="label", compression="bit")
    a.add(titles, titles, embeddings=short)
    b.add(titles, titles, embeddings=short)
    return a, b


def _as(db_url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(db_url, user=role), autocommit=True)


def _catalog(db: semsearch.Database, name: str) -> tuple:
    with db.connection() as conn:
        return conn.execute(
            "SELECT oversample, ef_search, hybrid, tuning, tuned_rows FROM semsearch.collections WHERE name = %s",
            [name],
        ).fetchone()


@pytest.mark.parametrize(
    "attack",
    [
        "UPDATE semsearch.collections SET hybrid = '{\"fusion\": \"evil\"}' WHERE name = 'b'",
        "UPDATE semsearch.collections SET oversample = 1, ef_search = 1 WHERE name = 'b'",
        "UPDATE semsearch.collections SET oversample = 'NaN'",
        "UPDATE semsearch.collections SET tuning = '{\"x\": 1}', tuned_rows = 0",
    ],
)
def test_a_writer_of_one_collection_cannot_retune_another(db, db_url, two, roles, movies, attack):
    _, _, short = movies
    before = _catalog(db, "b")
    # 'NaN' is refused for a's row by the CHECK; b's row is never reached
    with _as(db_url, roles["w1"]) as conn, contextlib.suppress(psycopg.errors.CheckViolation):
        conn.execute(attack)
    assert _catalog(db, "b") == before
    hits = db.collection("b").search("x", vector=short[3], k=3, mode="hybrid").keys
    assert len(hits) == 3


def test_a_writer_tunes_its_own_collection_within_the_checks(db, db_url, two, roles):
    with _as(db_url, roles["w1"]) as conn:
        assert conn.execute("UPDATE semsearch.collections SET oversample = 3 WHERE name = 'a'").rowcount == 1
        for bad in (
            "UPDATE semsearch.collections SET oversample = 'NaN' WHERE name = 'a'",
            "UPDATE semsearch.collections SET oversample = 'Infinity' WHERE name = 'a'",
            "UPDATE semsearch.collections SET hybrid = '{\"fusion\": \"evil\"}' WHERE name = 'a'",
            'UPDATE semsearch.collections SET hybrid = \'{"fusion": "rrf", "vector_weight": "abc"}\' '
            "WHERE name = 'a'",
            "UPDATE semsearch.collections SET hybrid = '[1]' WHERE name = 'a'",
            "UPDATE semsearch.collections SET tuned_rows = -1 WHERE name = 'a'",
        ):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(bad)
        # columns that decide what a search runs stay the owner's (column grants)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE semsearch.collections SET compression = 'none' WHERE name = 'a'")
    assert _catalog(db, "a")[0] == 3


def test_roles_see_only_the_catalog_rows_they_were_granted(db, db_url, two, roles):
    for who in ("w1", "r1"):
        with _as(db_url, roles[who]) as conn:
            assert [r[0] for r in conn.execute("SELECT name FROM semsearch.collections ORDER BY 1")] == ["a"]
    with _as(db_url, roles["stranger"]) as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.collections").fetchone()[0] == 0
    # from Python the other collection does not exist for them
    with semsearch.connect(make_conninfo(db_url, user=roles["r1"])) as as_reader:
        assert [c.name for c in as_reader.collections()] == ["a"]
        with pytest.raises(errors.CollectionNotFoundError):
            as_reader.collection("b")


def test_the_quarantine_is_per_collection(db, db_url, two, roles):
    with db.connection() as conn:
        for table in ("col_a", "col_b"):
            conn.execute(
                "INSERT INTO semsearch.quarantine (table_name, key, content_hash, reason) "
                "VALUES (%s, 'k', '\\x00', 'refused: secret text of ' || %s)",
                [table, table],
            )
    with _as(db_url, roles["w1"]) as conn:
        assert [r[0] for r in conn.execute("SELECT table_name FROM semsearch.quarantine")] == ["col_a"]
        assert conn.execute("DELETE FROM semsearch.quarantine WHERE table_name = 'col_b'").rowcount == 0
        assert conn.execute("UPDATE semsearch.quarantine SET reason = 'x' WHERE table_name = 'col_b'").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO semsearch.quarantine (table_name, key, content_hash, reason) "
                "VALUES ('col_b', 'z', '\\x00', 'planted')"
            )
        assert conn.execute("DELETE FROM semsearch.quarantine WHERE table_name = 'col_a'").rowcount == 1
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.quarantine WHERE table_name = 'col_b'").fetchone()[0] == 1


def test_every_semsearch_function_pins_its_search_path(db, two):
    """Nothing on a caller's search_path (a schema named after the role) can shadow what they call."""
    db.create_collection("c", dims=8, model="label", compression="none")
    with db.connection() as conn:
        unpinned = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'semsearch'::regnamespace "
            "AND p.prokind = 'f' AND NOT EXISTS (SELECT FROM unnest(p.proconfig) s WHERE s LIKE 'search\\_path=%')"
        ).fetchall()
    assert unpinned == []


def test_a_schema_named_after_the_caller_shadows_nothing(db, db_url, two, roles, movies):
    """pgvector's operators are found in pgvector's schema, not in one the caller controls."""
    _, _, short = movies
    r1 = roles["r1"]
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(r1), sql.Identifier(r1)))
    with _as(db_url, r1) as conn:
        # the reader's own <=> for vectors: always 0, which would make every row score 1
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {s}.zero(vector, vector) RETURNS float8 LANGUAGE sql AS 'SELECT 0::float8'; "
                "CREATE OPERATOR {s}.<=> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = {s}.zero)"
            ).format(s=sql.Identifier(r1))
        )
        conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(r1)))
        q = "[" + ",".join(map(str, short[3])) + "]"
        scores = [r[0] for r in conn.execute("SELECT score FROM semsearch.search('a', %s::vector, 3)", [q])]
    assert scores[0] == pytest.approx(1.0, abs=1e-4) and scores[1] < 0.99


def test_catalog_values_are_checked_when_read(db, two):
    """A row written before 0006's checks (or by the catalog's owner by hand) is a clear error."""
    with db.connection() as conn:
        conn.execute("ALTER TABLE semsearch.collections DROP CONSTRAINT collections_oversample_range")
        conn.execute("UPDATE semsearch.collections SET oversample = 'NaN' WHERE name = 'b'")
    with pytest.raises(errors.ConfigurationError, match="expected collection 'b' to store oversample between"):
        db.collection("b")


def test_a_role_without_the_rights_gets_a_semsearch_error_that_says_what_to_do(db, db_url, two, roles, movies):
    """Before: a writer's drop_collection read the raw 'permission denied for table synced_tables'."""
    _, _, short = movies
    with semsearch.connect(make_conninfo(db_url, user=roles["w1"])) as as_writer:
        with pytest.raises(errors.PermissionDeniedError, match="permission denied") as got:
            as_writer.drop_collection("a")
        assert "create, alter and drop stay the owner's" in str(got.value)
        assert isinstance(got.value, errors.DatabaseError) and isinstance(got.value, PermissionError)
    with (
        semsearch.connect(make_conninfo(db_url, user=roles["r1"])) as as_reader,
        pytest.raises(errors.PermissionDeniedError, match="semsearch grant ROLE COLLECTION"),
    ):
        as_reader.collection("a").add(["nope"], ["nope"], embeddings=short[:1])
    assert db.collection("a").count() == 62


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_api_says_so_too(db, db_url, two, roles, movies, anyio_backend):
    _, _, short = movies
    async with await semsearch.aio.connect(make_conninfo(db_url, user=roles["r1"])) as as_reader:
        col = await as_reader.collection("a")
        with pytest.raises(errors.PermissionDeniedError, match="permission denied"):
            await col.add(["nope"], ["nope"], embeddings=short[:1])


@pytest.fixture
def local_a(db: semsearch.Database) -> semsearch.Collection:
    col = db.create_collection("a", model="local", dims=128, compression="none")
    col.add(["cat", "dog", "tax"], ["a cat on a warm mat", "a dog barks at night", "tax law for companies"])
    return col


def test_a_model_switch_keeps_the_readers_and_writers_of_the_collection(db, db_url, local_a, roles):
    """Before: the new table had no grants, so (with 0006's row-level security) the collection vanished for them."""
    semsearch.migrate_model(db, "a", dims=64, sample=3, k=2)
    assert db.collection("a").dims == 64
    with semsearch.connect(make_conninfo(db_url, user=roles["r1"])) as as_reader:
        assert as_reader.collection("a").search("a cat", k=1, mode="text").keys == ["cat"]
        assert as_reader.collection("a").search("a cat", k=1).keys == ["cat"]
    with semsearch.connect(make_conninfo(db_url, user=roles["w1"])) as as_writer:
        assert as_writer.collection("a").add(["owl"], ["an owl at night"]).inserted == 1
    with _as(db_url, roles["stranger"]) as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.collections").fetchone() == (0,)
