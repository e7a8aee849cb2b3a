"""The everyday calls (issue 19): get by key, count and delete by filter, pages, score thresholds,
many queries in one round trip, "more like this"; from Python, async, SQL and the CLI."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
import semsearch.aio
import semsearch.filters
from semsearch import Row, errors, statements
from tests.examples import readme_python
from tests.test_aio import round_trips, traced


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def loaded(db, movies):
    """62 movies (real 1536-dim vectors) in a bit-plan collection, with metadata and two tenants."""
    titles, full, _ = movies
    col = db.create_collection("m", dims=1536, model="label", compression="bit")
    col.add(
        titles,
        titles,
        embeddings=full,
        metadata=[{"i": i, "even": i % 2 == 0} for i in range(len(titles))],
        tenant=["a" if i % 3 else "b" for i in range(len(titles))],
    )
    return col


@pytest.fixture
def words(db):
    """Texts embedded by the local model, one of them pending (added with defer=True)."""
    col = db.create_collection("w", model="local", dims=64)
    col.add(["cat", "dog", "car"], ["cats purr on the sofa", "dogs bark at night", "cars need fuel"],
            metadata=[{"kind": "pet"}, {"kind": "pet"}, {"kind": "thing"}])  # fmt: skip
    col.add(["bus"], ["buses carry people"], metadata=[{"kind": "thing"}], defer=True)
    return col


# get


def test_get_returns_stored_rows_in_the_order_asked_and_leaves_out_unknown_keys(loaded, movies, words):
    titles = movies[0]
    got = loaded.get([titles[5], "no such key", titles[2], titles[5]])
    assert [r.key for r in got] == [titles[5], titles[2]]
    assert got[0] == Row(key=titles[5], content=titles[5], metadata={"i": 5, "even": False}, tenant="a", embedded=True)
    assert loaded.get(titles[0])[0].tenant == "b"
    assert loaded.get([titles[0], titles[1]], tenant="a") == loaded.get(titles[1])
    assert loaded.get([]) == []
    assert [(r.key, r.embedded) for r in words.get(["bus", "cat"])] == [("bus", False), ("cat", True)]
    with pytest.raises(errors.InvalidInputError, match="expected a non-empty str or int key"):
        loaded.get([""])
    with pytest.raises(errors.InvalidInputError, match="expected tenant as a non-empty str"):
        loaded.get(["x"], tenant="")


# count and delete by filter


def test_count_and_delete_by_filter_use_the_search_filter_language(loaded):
    assert loaded.count() == len(loaded) == 62
    assert loaded.count(where={"even": True}) == 31
    assert loaded.count(where={"i": {"$lt": 10}}, tenant="b") == 4  # i = 0, 3, 6, 9
    assert loaded.count(tenant="a") == 41
    assert loaded.count(where={"$or": [{"i": 1}, {"i": {"$gte": 60}}]}) == 3
    assert loaded.delete(where={"i": {"$gte": 50}}, tenant="a") == 8
    assert loaded.count() == 54 and loaded.count(where={"i": {"$gte": 50}}) == 4
    assert loaded.delete(tenant="b") == 21
    assert loaded.count(tenant="b") == 0


def test_delete_by_filter_refuses_an_empty_or_absent_filter_unless_all_rows(loaded, movies):
    for kwargs in ({}, {"where": {}}, {"where": None}):
        with pytest.raises(errors.InvalidInputError, match="expected keys, a non-empty where= or tenant="):
            loaded.delete(**kwargs)
    with pytest.raises(errors.InvalidInputError, match="expected keys or where="):
        loaded.delete([movies[0][0]], where={"even": True})
    with pytest.raises(errors.InvalidInputError, match="expected all_rows=True without"):
        loaded.delete(where={"even": True}, all_rows=True)
    with pytest.raises(errors.InvalidInputError, match=r"expected an operator"):
        loaded.delete(where={"i": {"$bogus": 1}})
    assert loaded.count() == 62  # nothing was deleted by a refused call
    assert loaded.delete(movies[0][0]) == 1  # by key: unchanged
    assert loaded.delete(all_rows=True) == 61
    assert loaded.count() == 0


# pages and score thresholds


@pytest.mark.parametrize(
    "spec",
    [
        {"vector": 3},
        {"vector": 3, "exact": True},
        {"vector": 3, "where": {"even": True}},
        {"vector": 3, "tenant": "a"},
        {"query": "text", "mode": "text"},
        {"query": "text", "mode": "hybrid", "vector": 3},
    ],
    ids=["two-stage", "exact", "filtered", "tenant", "text", "hybrid"],
)
def test_a_page_is_the_same_rows_as_the_longer_search_in_every_mode(loaded, movies, spec):
    titles, full, _ = movies
    spec = dict(spec)
    if "vector" in spec:
        spec["vector"] = full[spec["vector"]]
    if "query" in spec:
        spec["query"] = max(titles[3].split(), key=len)
    whole = loaded.search(**spec, k=20)
    for offset in (0, 5, 10):
        page = loaded.search(**spec, k=5, offset=offset)
        assert page.keys == whole.keys[offset : offset + 5]
        if spec.get("mode") != "hybrid":  # blend scales scores over candidate lists that grow with k + offset
            assert [h.score for h in page] == pytest.approx([h.score for h in whole][offset : offset + 5])
        assert page.k == 5
    if len(whole) < 20:  # the last page holds what is left
        last = loaded.search(**spec, k=10, offset=max(0, len(whole) - 3))
        assert last.keys == whole.keys[-3:] and not last.complete


def test_score_threshold_drops_weak_hits_and_says_the_page_is_incomplete(loaded, movies):
    full = movies[1]
    scores = [h.score for h in loaded.search(vector=full[3], k=10)]
    cut = (scores[3] + scores[4]) / 2
    got = loaded.search(vector=full[3], k=10, score_threshold=cut)
    assert [h.score for h in got] == pytest.approx(scores[:4])
    assert not got.complete and got.k == 10
    assert loaded.search(vector=full[3], k=4, score_threshold=cut).complete
    assert len(loaded.search(vector=full[3], k=10, offset=2, score_threshold=cut)) == 2


def test_offset_and_threshold_are_checked_before_any_round_trip(loaded, movies):
    q = movies[1][0]
    for kwargs, message in [
        ({"offset": -1}, "expected offset as an int >= 0"),
        ({"offset": 1.5}, "expected offset as an int >= 0"),
        ({"offset": True}, "expected offset as an int >= 0"),
        ({"k": 9999, "offset": 2}, r"expected k \+ offset at most 10000, got 9999 \+ 2"),
        ({"score_threshold": float("nan")}, "expected score_threshold as a finite number"),
        ({"score_threshold": "0.5"}, "expected score_threshold as a finite number"),
        ({"k": 0, "offset": 5}, "expected k between 1 and 10000, got 0"),
    ]:
        with pytest.raises(errors.InvalidInputError, match=message):
            loaded.search(vector=q, **kwargs)


# many queries in one round trip


def test_search_many_returns_each_querys_own_result_in_one_round_trip(db_url, loaded, movies, tmp_path):
    titles, full, _ = movies
    specs = [{}, {"exact": True}, {"where": {"even": True}}, {"tenant": "b", "offset": 2, "k": 3}]
    with semsearch.connect(db_url, max_connections=1) as one:
        col = one.collection("m")
        with one.connection() as conn:
            pg = conn.pgconn
        for spec in specs:
            expected = [col.search(vector=full[i], **spec) for i in (1, 8, 20, 33)]
            col.search_many(vectors=full[[1, 8, 20, 33]], **spec)  # prepared from the second call on
            with traced(pg, tmp_path / "many") as path:
                got = col.search_many(vectors=full[[1, 8, 20, 33]], **spec)
            assert [r.keys for r in got] == [r.keys for r in expected], spec
            assert [r.k for r in got] == [r.k for r in expected]
            assert round_trips(path) == 1, spec
    assert loaded.search_many(vectors=[full[0]], k=1)[0].keys == [titles[0]]


def test_search_many_embeds_the_texts_in_one_call_and_matches_search(words):
    calls = []
    embedder = words.embedder
    original = embedder.embed

    def counting(texts):
        calls.append(list(texts))
        return original(texts)

    embedder.embed = counting
    got = words.search_many(["kittens", "a car", "puppies"], k=2)
    assert calls == [["kittens", "a car", "puppies"]]
    assert [r.keys for r in got] == [words.search(q, k=2).keys for q in ("kittens", "a car", "puppies")]
    text = words.search_many(["dogs", "cars"], k=1, mode="text")
    assert [r.keys for r in text] == [["dog"], ["car"]]
    hybrid = words.search_many(["dogs", "cars"], k=2, mode="hybrid", where={"kind": "pet"})
    assert [r.keys for r in hybrid] == [words.search(q, k=2, mode="hybrid", where={"kind": "pet"}).keys
                                        for q in ("dogs", "cars")]  # fmt: skip


def test_search_many_checks_every_query_before_any_round_trip(words):
    q = np.ones(64)
    for args, kwargs, message in [
        ((), {}, "expected queries or vectors=, got neither"),
        (("cats",), {}, "expected queries as a list, got str"),
        ((["cats"],), {"vectors": [q]}, "expected queries or vectors= for mode='vector', got both"),
        ((["a", "b"],), {"mode": "hybrid", "vectors": [q]}, "expected one vector per query, got 1 for 2"),
        (([],), {}, "expected between 1 and 1000 queries, got 0"),
        ((["cats", " "],), {}, r"expected a non-empty query text, got ' ' \(query at position 1\)"),
        ((), {"vectors": np.ones(64)}, "expected vectors= as a 2-d array"),
        ((), {"vectors": [q, np.ones(3)]}, r"expected a query vector of 64 dims, got shape \(3,\)"),
        ((["cats"],), {"offset": -1}, "expected offset as an int >= 0"),
    ]:
        with pytest.raises(errors.InvalidInputError, match=message):
            words.search_many(*args, **kwargs)


# more like this


def test_more_like_searches_by_a_stored_rows_vector_without_the_row(loaded, movies, words):
    titles, full, _ = movies
    expected = [k for k in loaded.search(vector=full[7], k=6, exact=True).keys if k != titles[7]][:5]
    got = loaded.more_like(titles[7], k=5, exact=True)
    assert got.keys == expected and titles[7] not in got.keys and got.complete
    assert loaded.more_like(titles[7], k=5).keys == expected  # the two-stage plan finds the same here
    page = loaded.more_like(titles[7], k=3, offset=2, exact=True)
    assert page.keys == expected[2:5]
    filtered = loaded.more_like(titles[7], k=5, where={"even": True}, tenant="a")
    assert all(loaded.get(k)[0].metadata["even"] and loaded.get(k)[0].tenant == "a" for k in filtered.keys)
    with pytest.raises(errors.InvalidInputError, match="expected a key stored in collection 'm', got 'nope'"):
        loaded.more_like("nope")
    with pytest.raises(errors.InvalidInputError, match="expected a key stored in collection 'm'"):
        loaded.more_like(titles[0], tenant="a")  # titles[0] is tenant b's
    with pytest.raises(errors.InvalidInputError, match="expected an embedded row, got 'bus' waiting for an embed"):
        words.more_like("bus")
    assert words.more_like("cat", k=1).keys == ["dog"]


# async: the same answers


@pytest.mark.anyio
async def test_the_async_calls_answer_as_the_sync_ones(db_url, loaded, movies, tmp_path):
    titles, full, _ = movies
    async with await semsearch.aio.connect(db_url, max_connections=1) as adb:
        acol = await adb.collection("m")
        assert await acol.get([titles[4], "nope", titles[1]]) == loaded.get([titles[4], "nope", titles[1]])
        assert await acol.count(where={"even": True}, tenant="a") == loaded.count(where={"even": True}, tenant="a")
        page = await acol.search(vector=full[2], k=4, offset=3, score_threshold=0.1)
        assert page == loaded.search(vector=full[2], k=4, offset=3, score_threshold=0.1)
        spec = {"k": 3, "where": {"even": False}, "offset": 1}
        async with adb.connection() as aconn:
            pg = aconn.pgconn
        await acol.search_many(vectors=full[:5], **spec)
        with traced(pg, tmp_path / "amany") as path:
            many = await acol.search_many(vectors=full[:5], **spec)
        assert round_trips(path) == 1
        assert many == loaded.search_many(vectors=full[:5], **spec)
        assert await acol.more_like(titles[9], k=4) == loaded.more_like(titles[9], k=4)
        with pytest.raises(errors.InvalidInputError, match="expected a key stored in collection 'm', got 'nope'"):
            await acol.more_like("nope")
        with pytest.raises(errors.InvalidInputError, match="expected keys, a non-empty where="):
            await acol.delete(where={})
        with pytest.raises(errors.NotAwaitedError):
            acol.get("x").key  # noqa: B018
        assert await acol.delete(where={"i": {"$in": [1, 2, 3]}}) == 3
        assert await acol.delete(titles[10]) == 1
        assert loaded.count() == 58
        assert await acol.delete(all_rows=True) == 58


# SQL functions (schema 0007)


def _vec(v) -> str:
    return "[" + ",".join(map(str, v)) + "]"


def test_sql_get_count_and_more_like_answer_as_python(db, loaded, movies, words):
    titles, full, _ = movies
    with db.connection() as conn:
        got = conn.execute("SELECT * FROM semsearch.get('m', ARRAY[%s, 'nope', %s])", [titles[4], titles[1]])
        assert [Row(*r) for r in got] == loaded.get([titles[4], "nope", titles[1]])
        assert conn.execute("SELECT * FROM semsearch.get('w', ARRAY['bus'])").fetchall() == [
            ("bus", "buses carry people", {"kind": "thing"}, None, False)
        ]
        assert (
            conn.execute("SELECT count(*) FROM semsearch.get('m', ARRAY[%s], tenant => 'b')", [titles[1]]).fetchone()[0]
            == 0
        )
        count = "SELECT semsearch.count('m', filter => %s, filter_path => %s, filter_vars => %s, tenant => %s)"
        for where, tenant in [(None, None), ({"even": True}, None), ({"i": {"$lt": 10}}, "b"),
                              ({"$or": [{"i": 1}, {"i": {"$gte": 60}}]}, None)]:  # fmt: skip
            f = semsearch.filters.compile_filter(where)
            args = [json.dumps(f.contains) if f.contains else None, f.path, json.dumps(f.vars) if f.vars else None]
            assert conn.execute(count, [*args, tenant]).fetchone()[0] == loaded.count(where=where, tenant=tenant)
        even_a = ", filter => '{\"even\": true}', tenant => 'a'"
        for kwargs, sql_args in [({}, ""), ({"exact": True}, ", exact => true"),
                                 ({"tenant": "a", "where": {"even": True}}, even_a)]:  # fmt: skip
            rows = conn.execute(f"SELECT key, score FROM semsearch.more_like('m', %s, 5{sql_args})", [titles[7]])
            expected = loaded.more_like(titles[7], k=5, **kwargs)
            rows = rows.fetchall()
            assert [r[0] for r in rows] == expected.keys, kwargs
            assert [r[1] for r in rows] == pytest.approx([h.score for h in expected])
        # pages, thresholds and many queries are SQL's own clauses on search()'s rows (see the README)
        page = conn.execute(
            "SELECT key FROM semsearch.search('m', %s::vector, 10) WHERE score >= %s OFFSET 5",
            [_vec(full[3]), loaded.search(vector=full[3], k=10)[7].score],
        ).fetchall()
        assert [r[0] for r in page] == loaded.search(vector=full[3], k=5, offset=5).keys[:3]
        many = conn.execute(
            "SELECT q.i, h.key FROM unnest(%s::vector[]) WITH ORDINALITY q(v, i), "
            "LATERAL semsearch.search('m', q.v, 3) h",
            [[_vec(full[1]), _vec(full[2])]],
        ).fetchall()
        assert [[k for i, k in many if i == n] for n in (1, 2)] == [
            r.keys for r in loaded.search_many(vectors=full[1:3], k=3)
        ]


@pytest.mark.parametrize(
    "call, message",
    [
        ("SELECT * FROM semsearch.get('nope', ARRAY['a'])", "unknown collection 'nope'"),
        ("SELECT * FROM semsearch.get('m', NULL)", "expected keys as an array of at most 10000 keys, got null"),
        ("SELECT semsearch.count('m', filter => '[1]')", "expected filter as a json object, got array"),
        ("SELECT semsearch.count('m', filter => '{\"i\": {\"$lt\": 3}}')", "expected filter => as plain containment"),
        ("SELECT semsearch.count('m', filter_path => '$.i < $v')", "expected filter_vars to define every"),
        ("SELECT * FROM semsearch.more_like('m', 'nope')", "expected a key stored in collection 'm', got 'nope'"),
        ("SELECT * FROM semsearch.more_like('w', 'bus')", "expected an embedded row, got 'bus' waiting for an"),
        ("SELECT * FROM semsearch.more_like('m', 'x', 0)", "expected k between 1 and 10000, got 0"),
    ],
)
def test_sql_callers_bad_arguments_are_refused_with_a_clear_message(db, loaded, words, call, message):
    with db.connection() as conn, pytest.raises(psycopg.errors.Error, match=re.escape(message)) as caught:
        conn.execute(call)
    assert caught.value.sqlstate in ("22023", "42704")


def test_the_sql_count_filters_as_python_search_does():
    """semsearch.count() holds the condition of statements.spec_filter() (one filter language everywhere)."""
    text = (Path(__file__).parents[1] / "sql" / "0007_everyday_calls.sql").read_text()
    assert statements.spec_filter(sql.SQL("$1")).as_string(None) in text


@pytest.fixture
def reader(db, loaded, words):
    """A LOGIN role granted collection m (not w); dropped afterwards."""
    role = f"ss_reader_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    db.grant(role, "m")
    yield role
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_sql_calls_run_as_the_caller_so_grants_and_catalog_rls_apply(db_url, reader, movies):
    titles = movies[0]
    with psycopg.connect(make_conninfo(db_url, user=reader), autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM semsearch.get('m', ARRAY[%s])", [titles[0]])] == [titles[0]]
        assert conn.execute("SELECT semsearch.count('m')").fetchone()[0] == 62
        assert len(conn.execute("SELECT * FROM semsearch.more_like('m', %s, 3)", [titles[0]]).fetchall()) == 3
        for call in ("SELECT * FROM semsearch.get('w', ARRAY['cat'])", "SELECT semsearch.count('w')",
                     "SELECT * FROM semsearch.more_like('w', 'cat')"):  # fmt: skip
            with pytest.raises(psycopg.errors.UndefinedObject, match="unknown collection 'w'"):
                conn.execute(call)
        # a reader deletes nothing, by filter or otherwise
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM semsearch.col_m WHERE metadata @> '{\"even\": true}'")


def test_migration_0007_goes_down_and_up_again(db_url):
    from semsearch import migrate

    with psycopg.connect(db_url, autocommit=True) as conn:
        migrate.downgrade(db_url, "0006")
        assert (
            conn.execute("SELECT to_regprocedure('semsearch.count(text, jsonb, jsonpath, jsonb, text)')").fetchone()[0]
            is None
        )
        migrate.upgrade(db_url)
        assert (
            conn.execute("SELECT to_regprocedure('semsearch.count(text, jsonb, jsonpath, jsonb, text)')").fetchone()[0]
            is not None
        )


# the command line


def test_cli_get_count_delete_by_filter(run, loaded, movies, words):
    titles = movies[0]
    got = run("get", "m", titles[3], "nope", titles[1], "--json")
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    assert [Row(**r) for r in rows] == loaded.get([titles[3], titles[1]])
    assert "1 of 3 key(s) not stored in m" in got.stderr
    table = run("get", "w", "bus", "cat").stdout.splitlines()
    assert table[0].split() == ["key", "tenant", "embedded", "content"]
    assert table[1].split()[:2] == ["bus", "pending"] and table[2].split()[:2] == ["cat", "yes"]
    assert run("count", "m").stdout == "62\n"
    assert run("count", "m", "--where", '{"i": {"$lt": 10}}', "--tenant", "b").stdout == "4\n"
    assert "expected keys, a non-empty where= or tenant=" in run("delete", "m", "--where", "{}", ok=False).output
    assert "expected KEYs or --where/--tenant/--all, not both" in run("delete", "m", "k", "--all", ok=False).output
    assert run("delete", "m", "--where", '{"i": {"$gte": 50}}', "--tenant", "a").stdout == "deleted 8 row(s) from m\n"
    assert run("delete", "m", titles[0]).stdout == "deleted 1 of 1 key(s) from m\n"
    assert run("delete", "m", "--all").stdout == "deleted 53 row(s) from m\n"
    assert loaded.count() == 0


def test_cli_pages_batches_and_more_like(run, words, tmp_path):
    first = json.loads(run("search", "w", "pets", "-k", "1", "--json").stdout)
    second = json.loads(run("search", "w", "pets", "-k", "1", "--offset", "1", "--json").stdout)
    assert [first["key"], second["key"]] == words.search("pets", k=2).keys and second["rank"] == 2
    high = words.search("pets", k=2)[0].score
    out = run("search", "w", "pets", "-k", "2", "--min-score", high - 1e-6)
    assert len(out.stdout.splitlines()) == 2 and f"only 1 of 2 rows score at least {high - 1e-6}" in out.stderr
    queries = tmp_path / "q.txt"
    queries.write_text("kittens\n\nfuel for cars\n")
    got = [json.loads(line) for line in run("search", "w", "--batch", queries, "-k", "2", "--json").stdout.splitlines()]
    assert [[h["key"] for h in got if h["query"] == n] for n in (1, 2)] == [
        r.keys for r in words.search_many(["kittens", "fuel for cars"], k=2)
    ]
    assert "query 2:" in run("search", "w", "--batch", queries).stdout
    assert "expected --batch alone" in run("search", "w", "cats", "--batch", queries, ok=False).output
    like = [json.loads(line) for line in run("more-like", "w", "cat", "-k", "2", "--json").stdout.splitlines()]
    assert [h["key"] for h in like] == words.more_like("cat", k=2).keys
    assert "expected an embedded row, got 'bus'" in run("more-like", "w", "bus", ok=False).output


def test_the_readme_everyday_calls_example_runs_and_prints_what_it_says(db_url, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    text = readme_python("### Everyday calls")
    code = compile(text, "README.md", "exec", dont_inherit=True)
    for _ in range(2):  # and again, on what its first run made
        exec(code, {})
        printed = capsys.readouterr().out.splitlines()
        expected = [line.split("# ", 1)[1].split(":")[0].split(";")[0] for line in text.splitlines()
                    if line.startswith("print(")]  # fmt: skip
        assert printed == expected
