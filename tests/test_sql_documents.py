"""The SQL functions on a collection with passages: documents by default, passages on request (schema 0013)."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.test_passages import by_paragraph

BIG = "\n\n".join(f"cats purr and cats nap, cat note {i}" for i in range(50))
Q = "cats purr and cats nap"


@pytest.fixture
def docs(db):
    """One document whose 50 passages match 'cats' best, and 14 others (tenants a/b, a kind each)."""
    col = db.create_collection("sqldocs", model="local", dims=64, passages=by_paragraph)
    others = [f"A long note {i} about dogs, birds and gardens.\n\nIt mentions a cat only once." for i in range(14)]
    col.add(
        keys=["big", *[f"d{i}" for i in range(14)]],
        contents=[BIG, *others],
        metadata=[{"kind": "big"}, *[{"kind": "even" if i % 2 == 0 else "odd"} for i in range(14)]],
        tenant=["a", *["a" if i < 10 else "b" for i in range(14)]],
    )
    return col


def _calls(q):
    """Each mode's SQL call (its arguments after the collection) and parameters."""
    return {
        "vector": ("semsearch.search('sqldocs', %s::vector, {})", [q]),
        "text": ("semsearch.text_search('sqldocs', %s, {})", [Q]),
        "hybrid": ("semsearch.hybrid_search('sqldocs', %s, %s::vector, {})", [Q, q]),
    }


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_search_text_and_hybrid_return_k_distinct_documents_as_python_does(db, docs, mode):
    q = docs.embedder.embed([Q])[0]
    call, params = _calls(q)[mode]
    with db.connection() as conn:
        rows = conn.execute(f"SELECT key, content, score, metadata FROM {call.format('10')}", params).fetchall()
    keys = [r[0] for r in rows]
    # 50 passages of 'big' come first: the candidates widened past 40 to find 10 documents
    assert len(keys) == 10 and len(set(keys)) == 10 and keys[0] == "big" and not any("#" in k for k in keys)
    py = docs.search(Q, k=10, mode=mode)
    assert [(r[0], pytest.approx(r[2])) for r in rows] == [(h.key, h.score) for h in py]
    # a document's row is its best passage's: text, score and place (metadata -> 'semsearch:passage')
    _, content, _, metadata = rows[0]
    place = metadata["semsearch:passage"]
    assert place["doc"] == "big" and BIG[place["start"] : place["end"]] == content and metadata["kind"] == "big"
    assert content == py[0].content and place["seq"] == py[0].passages[0].seq


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_passages_on_request_and_refused_on_a_collection_without_them(db, docs, mode):
    q = docs.embedder.embed([Q])[0]
    call, params = _calls(q)[mode]
    with db.connection() as conn:
        rows = conn.execute(f"SELECT key, score FROM {call.format('10, passages => true')}", params).fetchall()
        assert len(rows) == 10 and all(r[0].startswith("big#") for r in rows)
        py = docs.search(Q, k=10, mode=mode, passages=True)
        assert [pytest.approx(r[1], rel=1e-4) for r in rows] == [h.score for h in py]
        db.create_collection("sqlplain", model="local", dims=64).add(["p1"], ["cats purr"])
        plain = call.replace("sqldocs", "sqlplain")
        assert conn.execute(f"SELECT key FROM {plain.format('3')}", params).fetchall() == [("p1",)]  # rows, unchanged
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected a collection with passages"):
            conn.execute(f"SELECT key FROM {plain.format('3, passages => true')}", params)


def test_filters_and_tenants_keep_documents_distinct(db, docs):
    q = docs.embedder.embed([Q])[0]
    with db.connection() as conn:
        b = conn.execute("SELECT key FROM semsearch.text_search('sqldocs', 'cat', 10, tenant => 'b')").fetchall()
        assert sorted(r[0] for r in b) == ["d10", "d11", "d12", "d13"]  # only 4 documents are b's
        odd = conn.execute(
            "SELECT key, metadata FROM semsearch.search('sqldocs', %s::vector, 3, filter => '{\"kind\": \"odd\"}')", [q]
        ).fetchall()
        assert len(odd) == 3 and all(m["kind"] == "odd" for _, m in odd) and len({k for k, _ in odd}) == 3
        # a tenant no row has, in a collection with tenants: nothing found, nothing wrong
        none = conn.execute("SELECT * FROM semsearch.search('sqldocs', %s::vector, tenant => 'zz')", [q]).fetchall()
        assert none == []


def test_more_like_a_document_from_sql_is_pythons(db, docs):
    with db.connection() as conn:
        rows = conn.execute("SELECT key, score FROM semsearch.more_like('sqldocs', 'big', 10)").fetchall()
        py = docs.more_like("big", k=10)
        assert [(r[0], pytest.approx(r[1])) for r in rows] == [(h.key, h.score) for h in py]
        assert len({r[0] for r in rows}) == 10 and "big" not in {r[0] for r in rows}
        near = conn.execute("SELECT key FROM semsearch.more_like('sqldocs', 'big', 5, passages => true)").fetchall()
        assert len(near) == 5 and all("#" in r[0] and not r[0].startswith("big#") for r in near)
        b = conn.execute("SELECT key FROM semsearch.more_like('sqldocs', 'd10', 10, tenant => 'b')").fetchall()
        assert sorted(r[0] for r in b) == ["d11", "d12", "d13"]
        for key in ("nope", "big#0"):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected a key stored"):
                conn.execute("SELECT * FROM semsearch.more_like('sqldocs', %s)", [key])


@pytest.mark.parametrize("passages", [False, True])
def test_a_tenant_in_a_collection_without_tenants_is_an_error_from_sql_too(db, passages):
    col = db.create_collection("notenants", model="local", dims=64, passages=by_paragraph if passages else None)
    col.add(["n1", "n2"], ["cats purr on the mat", "dogs bark at the door"])
    q = col.embedder.embed(["cats"])[0]
    calls = [
        ("SELECT * FROM semsearch.search('notenants', %s::vector, 5, tenant => 'acme')", [q]),
        ("SELECT * FROM semsearch.text_search('notenants', 'cats', 5, tenant => 'acme')", []),
        ("SELECT * FROM semsearch.hybrid_search('notenants', 'cats', %s::vector, 5, tenant => 'acme')", [q]),
    ]
    with db.connection() as conn:
        for stmt, params in calls:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="expected rows with tenants to search"):
                conn.execute(stmt, params)
        assert len(conn.execute("SELECT * FROM semsearch.text_search('notenants', 'cats', 5)").fetchall()) == 1


def test_a_documents_hybrid_search_fuses_lists_of_the_passages_it_fetches(db, docs):
    """k=10 documents: 40 passages fused from lists of 40 each (4x the documents), not of 160 (4x the passages)."""
    q = docs.embedder.embed([Q])[0]
    with db.connection() as conn:
        said: list[str] = []
        conn.add_notice_handler(lambda d: said.append(d.message_primary or ""))
        conn.execute("SET client_min_messages = debug1")
        conn.execute("SELECT * FROM semsearch.hybrid_search('sqldocs', %s, %s::vector, 10)", [Q, q]).fetchall()
        conn.execute("SET client_min_messages = notice")
    lists = [json.loads(m.removeprefix("semsearch plan "))["k"] for m in said if m.startswith("semsearch plan")]
    # the first round's two lists (40 each), then the widened round's (160 each): 'big' fills the first 40
    assert lists[:2] == [40, 40] and set(lists[2:]) <= {160}
