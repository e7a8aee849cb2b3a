"""An existing table searched in place: triggers turn every writer's rows into pending work."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from semsearch import errors
from semsearch.embeddings.local import LocalEmbedder
from semsearch.model_switch import migrate_model

PRODUCTS = """
CREATE TABLE public.products (
    id integer PRIMARY KEY,
    name text,
    description text,
    price numeric,
    in_stock boolean,
    shop text,
    sku text UNIQUE
)
"""
ROWS = [
    (1, "kettle", "an electric kettle that boils water fast", 30, True, "a"),
    (2, "tent", "a two person tent for camping in the mountains", 120, True, "a"),
    (3, "novel", "a detective novel set in victorian london", 9.5, False, "b"),
]


def _products(db, rows=ROWS) -> None:
    with db.connection() as conn:
        conn.execute(PRODUCTS)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO products (id, name, description, price, in_stock, shop) VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )


def _stored(db, col) -> dict[str, tuple]:
    """key -> (content, metadata, tenant, embedded?) as the collection holds it."""
    with db.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT key, content, metadata, tenant, embedding IS NOT NULL FROM {}").format(col.layout.table)
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _readme_sql() -> list[str]:
    """The README's statements that join hits back to the products table."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```sql\n(.*?)```", readme, re.S) if "p.id::text = s.key" in b)
    return [stmt.strip() for stmt in block.split(";") if stmt.strip()]


def _sync(db, **kw):
    args = {"collection": "products", "key": "id", "text": "description", "metadata": ["price", "in_stock"],
            "tenant": "shop", "model": "local", "dims": 64, "compression": "halfvec"} | kw  # fmt: skip
    return db.sync_table("products", **args)


def test_every_write_to_the_table_reaches_the_collection_as_pending_work(db):
    _products(db)
    col = _sync(db)
    assert col.pending() == 3
    assert _stored(db, col)["2"] == (ROWS[1][2], {"price": 120, "in_stock": True}, "a", False)
    assert col.backfill().embedded == 3
    assert col.search("boiling water", k=1).keys == ["1"]
    with db.connection() as conn:
        # raw SQL: an insert, a COPY, an update of a column that is not synced (nothing to do)
        conn.execute("INSERT INTO products VALUES (4, 'map', 'a paper map of the alps', 12, true, 'b')")
        with conn.cursor().copy("COPY products (id, description, price, shop) FROM STDIN") as copy:
            copy.write_row((5, "a hiking backpack with many pockets", 80, "a"))
            copy.write_row((6, None, 5, "a"))  # no text: not searchable, not in the collection
        conn.execute("UPDATE products SET name = upper(name), sku = 'x' || id")
        assert col.pending() == 2 and set(_stored(db, col)) == {"1", "2", "3", "4", "5"}
        assert all(v[3] for k, v in _stored(db, col).items() if k in "123")  # untouched: vectors kept
        # metadata change: written, text unchanged so the vector stays; a text change goes pending
        conn.execute("UPDATE products SET price = 25 WHERE id = 1")
        conn.execute("UPDATE products SET description = 'a tent for four people' WHERE id = 2")
        assert _stored(db, col)["1"] == (ROWS[0][2], {"price": 25, "in_stock": True}, "a", True)
        assert _stored(db, col)["2"][3] is False
        # a key moves; a text set to NULL leaves; a row that gets a text arrives; deletes delete
        conn.execute("UPDATE products SET id = 30 WHERE id = 3")
        conn.execute("UPDATE products SET description = NULL WHERE id = 4")
        conn.execute("UPDATE products SET description = 'a cheap pencil' WHERE id = 6")
        conn.execute("DELETE FROM products WHERE id = 5")
        assert set(_stored(db, col)) == {"1", "2", "30", "6"}
        col.backfill()
        assert col.search("a book about a murder in england", k=1).keys == ["30"]
        assert col.search("kettle", k=5, where={"price": {"$gte": 20, "$lt": 26}}, tenant="a").keys == ["1"]
        # the README's statements join the hits back to the table: the same rows as the Python search
        vector_sql, text_sql = _readme_sql()
        q = LocalEmbedder(64).embed(["a cheap pencil"])[0]
        joined = conn.execute(vector_sql.replace(":q", "%(q)s::vector"), {"q": q.tolist()}).fetchall()
        assert [str(r[0]) for r in joined] == col.search(vector=q, k=10, where={"in_stock": True}).keys
        assert joined and all(r[0] in (1, 2) for r in joined)  # the rows in stock
        joined = conn.execute(text_sql).fetchall()
        assert [str(r[0]) for r in joined] == col.search("camping tent", k=10, mode="text").keys == ["2"]
        conn.execute("TRUNCATE products")
        assert _stored(db, col) == {}


def test_sync_reuses_a_compatible_collection_and_unsync_removes_the_triggers(db):
    _products(db)
    col = _sync(db)
    col.backfill()
    assert [(s.collection, s.table, s.key, s.metadata, s.tenant) for s in db.synced_tables()] == [
        ("products", "public.products", "id", ("price", "in_stock"), "shop")
    ]
    with pytest.raises(errors.ConfigurationError, match="expected dims=64 for existing collection 'products'"):
        _sync(db, dims=128)
    with pytest.raises(errors.ConfigurationError, match="unsync_table"):
        db.drop_collection("products")
    # a re-sync (here: other metadata) mirrors the table again; unchanged texts keep their vectors
    col = _sync(db, metadata=["price"], tenant=None, model=None, dims=None, compression=None)
    assert col.pending() == 0 and _stored(db, col)["1"] == (ROWS[0][2], {"price": 30}, None, True)
    assert [s.metadata for s in db.synced_tables()] == [("price",)]
    db.unsync_table("products")
    assert db.synced_tables() == []
    with db.connection() as conn:
        conn.execute("INSERT INTO products (id, description) VALUES (7, 'not synced any more')")
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'products'::regclass "
                            "AND NOT tgisinternal").fetchone()[0] == 0  # fmt: skip
    assert "7" not in _stored(db, col)
    _sync(db)
    db.unsync_table("public.products", drop_collection=True)
    assert db.collections() == [] and db.synced_tables() == []


def test_bad_sync_arguments_are_refused_before_anything_is_written(db):
    _products(db)
    bad = [
        ({"key": ["id", "sku"]}, "composite keys are not supported"),
        ({"key": "name"}, "expected key column 'name' unique on its own"),
        ({"text": "nope"}, "got unknown 'nope'"),
        ({"metadata": "price"}, "expected metadata= as a list of column names"),
        ({"metadata": None}, "expected metadata= as a list of column names"),
        ({"dims": 100}, "expected local embedder dims"),
        ({"model": None}, "expected model="),
    ]
    for args, message in bad:
        with pytest.raises(errors.ConfigurationError, match=message):
            _sync(db, **args)
    with pytest.raises(errors.ConfigurationError, match="expected an existing table, got 'nope'"):
        db.sync_table("nope", collection="products", key="id", text="description", model="local")
    assert db.collections() == [] and db.synced_tables() == []
    _sync(db, key="sku")  # a UNIQUE column other than the primary key is a key too
    with pytest.raises(errors.ConfigurationError, match="synced to collection 'products'"):
        _sync(db, collection="other")


@pytest.fixture
def app_role(db):
    """A role that may write the products table and owns a schema of its own; no rights on semsearch's tables."""
    name = f"app_writer_{os.getpid()}"
    ident = sql.Identifier(name)
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL("CREATE ROLE {}").format(ident))
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(ident, ident))
    yield name
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(ident))
        conn.execute(sql.SQL("DROP ROLE {}").format(ident))


def _as(conn, role, stmt, params=None):
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        return conn.execute(stmt, params)


def test_a_writer_without_rights_on_semsearch_is_synced_and_cannot_abuse_the_triggers(db, app_role):
    """The trigger functions are SECURITY DEFINER (owned here by a superuser): writes sync, nothing else runs."""
    _products(db)
    col = _sync(db)
    role = sql.Identifier(app_role)
    with db.connection() as conn:
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON products TO {}").format(role))
        _as(conn, app_role, "INSERT INTO products (id, description, price, shop) VALUES (9, 'a red umbrella', 7, 'a')")
        _as(conn, app_role, "UPDATE products SET description = 'a blue umbrella' WHERE id = 9")
        _as(conn, app_role, "DELETE FROM products WHERE id = 1")
        assert _stored(db, col)["9"] == ("a blue umbrella", {"price": 7, "in_stock": None}, "a", False)
        assert "1" not in _stored(db, col)
        # the collection's table itself stays out of reach
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as(conn, app_role, sql.SQL("INSERT INTO {} (key, content) VALUES ('x', 'y')").format(col.layout.table))
        # even with USAGE on the schema, the functions cannot be attached to a table of its own
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA semsearch TO {}").format(role))
        _as(conn, app_role, sql.SQL("CREATE TABLE {}.evil (LIKE public.products)").format(role))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
            _as(conn, app_role, sql.SQL(
                "CREATE TRIGGER t AFTER INSERT ON {}.evil REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION semsearch.sync_products_ins()").format(role))  # fmt: skip
        # functions and an operator in its own schema, first on its search_path, that would make it a
        # superuser if the definer ran them: the fixed search_path leaves them alone
        escalate = sql.SQL("ALTER ROLE {} SUPERUSER").format(role).as_string(conn)
        for fn in ("jsonb_build_object(text, numeric, text, boolean)", "textne(text, text)", "upper(text)"):
            name, _, args = fn.partition("(")
            _as(conn, app_role, sql.SQL(
                "CREATE FUNCTION {}.{}({} RETURNS {} LANGUAGE plpgsql AS $$BEGIN EXECUTE {}; RETURN NULL; END$$"
            ).format(role, sql.Identifier(name), sql.SQL(args),
                     sql.SQL("jsonb" if name == "jsonb_build_object" else "boolean" if name == "textne" else "text"),
                     sql.Literal(escalate)))  # fmt: skip
        _as(
            conn,
            app_role,
            sql.SQL("CREATE OPERATOR {}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {}.textne)").format(role, role),
        )
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(role))
            conn.execute(sql.SQL("SET LOCAL search_path = {}, pg_catalog, public").format(role))
            conn.execute("INSERT INTO products (id, description, price, shop) VALUES (10, 'a green hat', 3, 'b')")
            conn.execute("UPDATE products SET price = 4 WHERE id = 10")
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role]).fetchone()[0] is False
        assert _stored(db, col)["10"] == ("a green hat", {"price": 4, "in_stock": None}, "b", False)
        _as(conn, app_role, "TRUNCATE products")
        assert _stored(db, col) == {}


def test_column_types_the_definer_does_not_trust_are_refused_and_type_changes_stop_writes(db, app_role):
    _products(db)
    role = sql.Identifier(app_role)
    with db.connection() as conn:
        # a type its owner (not a superuser, not the syncing role) could give a cast to text or json
        conn.execute("CREATE TYPE public.mood AS ENUM ('calm', 'angry')")
        conn.execute(sql.SQL("ALTER TYPE public.mood OWNER TO {}").format(role))
        conn.execute("ALTER TABLE products ADD COLUMN mood public.mood")
    with pytest.raises(errors.ConfigurationError, match="expected column 'mood' of a type owned by a superuser"):
        _sync(db, metadata=["mood"])
    assert db.collections() == []
    _sync(db)
    with db.connection() as conn:
        conn.execute("ALTER TABLE products ALTER COLUMN price TYPE public.mood USING NULL")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="run sync_table"):
            conn.execute("INSERT INTO products (id, description) VALUES (11, 'a lamp')")
        conn.execute("ALTER TABLE products ALTER COLUMN price TYPE numeric USING 1")
        conn.execute("INSERT INTO products (id, description) VALUES (11, 'a lamp')")
    assert "11" in _stored(db, db.collection("products"))


def test_a_synced_collection_is_not_migrated_to_another_model_under_its_triggers(db):
    _products(db)
    _sync(db)
    with pytest.raises(errors.ConfigurationError, match="unsync_table, migrate, then sync_table again"):
        migrate_model(db, "products", dims=128)
    assert [c.name for c in db.collections()] == ["products"]


def test_several_text_columns_are_joined_with_their_names_and_kept_current(db):
    """A product's searchable text is its name and its description: either one changing re-pends the row."""
    _products(db, rows=[*ROWS, (4, None, "a folding chair", 15, True, "a"), (5, None, None, 1, True, "a")])
    col = _sync(db, text=["name", "description"])
    stored = _stored(db, col)
    assert stored["1"][0] == "name: kettle\ndescription: an electric kettle that boils water fast"
    assert stored["4"][0] == "description: a folding chair"  # a NULL column is skipped
    assert "5" not in stored  # every text column NULL: not in the collection, as a NULL text is
    assert [s.text for s in db.synced_tables()] == [("name", "description")]
    assert col.backfill().embedded == 4 and col.pending() == 0
    assert col.search("tent", k=1, mode="text").keys == ["2"]
    with db.connection() as conn:
        conn.execute("UPDATE products SET name = 'big tent' WHERE id = 2")  # either column re-pends the row
        conn.execute("UPDATE products SET description = 'a spy novel' WHERE id = 3")
        conn.execute("UPDATE products SET price = 10 WHERE id = 1")  # not a text column: the vector stays
        conn.execute("UPDATE products SET name = 'lamp' WHERE id = 5")  # arrives with its first text
        conn.execute("UPDATE products SET description = NULL, name = 'chair' WHERE id = 4")
        conn.execute("INSERT INTO products (id, name) VALUES (6, 'pencil')")
    stored = _stored(db, col)
    assert stored["2"] == ("name: big tent\ndescription: a two person tent for camping in the mountains",
                           {"price": 120, "in_stock": True}, "a", False)  # fmt: skip
    assert stored["3"][0] == "name: novel\ndescription: a spy novel" and stored["3"][3] is False
    assert stored["1"][3] is True and stored["1"][1]["price"] == 10
    assert (stored["5"][0], stored["4"][0], stored["6"][0]) == ("name: lamp", "name: chair", "name: pencil")
    assert col.pending() == 5
    col.backfill()
    assert col.search("lamp", k=1, mode="text").keys == ["5"]
    # a re-sync with one text column stores that column alone, as before
    col = _sync(db, text=["description"])
    assert _stored(db, col)["1"][0] == ROWS[0][2] and "6" not in _stored(db, col)
    assert [s.text for s in db.synced_tables()] == ["description"]


def test_several_text_columns_are_checked_before_anything_is_written(db):
    _products(db)
    bad = [
        ({"text": []}, "expected text= as a column name or a list of them"),
        ({"text": ["name", "name"]}, "expected distinct text columns"),
        ({"text": ["name", ""]}, "expected text= as a column name or a list of them"),
        ({"text": ["name", "nope"]}, "got unknown 'nope'"),
        ({"text": [f"c{i}" for i in range(51)]}, "expected at most 50 distinct text columns"),
    ]
    for args, message in bad:
        with pytest.raises(errors.ConfigurationError, match=message):
            _sync(db, **args)
    assert db.collections() == [] and db.synced_tables() == []


def test_passages_false_or_none_is_the_whole_row_sync(db):
    # documents split into passages are tests/test_sync_documents.py's (issue 20, item 4)
    _products(db)
    col = _sync(db, collection="whole", passages=False)
    assert col.pending() == 3 and col.info.passages is None
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM semsearch.pending_documents").fetchone()[0] == 0
