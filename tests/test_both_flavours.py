"""One scenario suite, run against both flavours: semsearch.connect and semsearch.aio.connect.

Every test takes ``flavour`` (parametrized: sync, async): the database it opens is wrapped so
that each call is awaited when the flavour is async, and the test reads the same either way.
The bad-input test runs both in one test and asserts that they fail with the same class and
message.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

import semsearch
import semsearch.aio
from semsearch import errors, handle, plan_choice

DIMS = 16


class Words:
    """A deterministic embedder: each word hashed to a direction (shared words, close vectors)."""

    model = "words"
    dims = DIMS

    def embed(self, texts):
        out = np.zeros((len(texts), DIMS), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = hashlib.sha256(word.encode()).digest()
                out[i, h[0] % DIMS] += 1.0
                out[i, h[1] % DIMS] += 0.5
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


class Calls:
    """An object's methods, their results awaited on one event loop when they are awaitable (async flavour)."""

    def __init__(self, obj: Any, runner: asyncio.Runner | None) -> None:
        self._obj = obj
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            got = attr(*args, **kwargs)
            if inspect.isawaitable(got):
                assert self._runner is not None, f"{name} of the sync flavour returned an awaitable"
                got = self._runner.run(_awaited(got))
            if isinstance(got, (semsearch.Collection, semsearch.aio.AsyncCollection)):
                return Calls(got, self._runner)
            return got

        return call


async def _awaited(x: Any) -> Any:
    return await x


def _open(kind: str, url: str) -> tuple[Calls, Any]:
    if kind == "sync":
        db = semsearch.connect(url, upgrade=False)
        return Calls(db, None), db.close
    runner = asyncio.Runner()
    adb = runner.run(_awaited(semsearch.aio.connect(url, upgrade=False)))

    def close() -> None:
        runner.run(_awaited(adb.close()))
        runner.close()

    return Calls(adb, runner), close


@pytest.fixture(params=["sync", "async"])
def flavour(request, db_url) -> Iterator[Calls]:
    db, close = _open(request.param, db_url)
    try:
        yield db
    finally:
        close()


TEXTS = {
    "a": "cats purr on the warm sofa",
    "b": "dogs bark at the mail carrier",
    "c": "kittens and cats sleep all day",
    "d": "jet engines roar at the airport",
    "e": "the airport lounge serves coffee",
}


def _filled(db: Calls, name: str = "docs") -> Calls:
    col = db.create_collection(name, embedder=Words(), compression="halfvec")
    col.add(list(TEXTS), list(TEXTS.values()), metadata=[{"n": i, "animal": i < 3} for i in range(len(TEXTS))])
    return col


def test_create_add_get_count_delete(flavour):
    col = _filled(flavour)
    assert col.count() == 5
    assert col.count(where={"animal": True}) == 3
    assert [r.key for r in col.get(["c", "nope", "a"])] == ["c", "a"]
    again = col.add(["a", "f"], [TEXTS["a"], "a new row about cats"])  # a's metadata goes: updated, not re-embedded
    assert (again.inserted, again.updated, again.unchanged, again.reused, again.embedded) == (1, 1, 0, 1, 1)
    many = col.add_many({"key": f"m{i}", "content": f"row number {i} about dogs"} for i in range(30))
    assert many.inserted == 30
    assert col.count() == 36
    assert col.delete("f") == 1
    assert col.delete(where={"n": {"$gte": 3}}) == 2
    assert col.count() == 33
    assert [c.name for c in flavour.collections()] == ["docs"]
    assert flavour.collection("docs", embedder=Words()).count() == 33


def test_search_vector_text_hybrid_filtered_many_and_more_like(flavour):
    col = _filled(flavour)
    assert col.search("cats", k=2).keys[0] in {"a", "c"}
    assert col.search(vector=Words().embed(["jet engines roar"])[0], k=1).keys == ["d"]
    assert col.search("airport", mode="text", k=5).keys[:2] in (["d", "e"], ["e", "d"])
    assert set(col.search("airport coffee", mode="hybrid", k=2).keys) <= set(TEXTS)
    filtered = col.search("cats", k=5, where={"animal": False})
    assert set(filtered.keys) <= {"d", "e"} and filtered.keys
    exact = col.search("cats", k=5, exact=True, offset=1)
    assert len(exact.keys) == 4
    first, second = col.search_many(["cats purr", "jet engines"], k=1)
    assert (first.keys, second.keys) == (["a"], ["d"])
    near = col.more_like("a", k=2)
    assert "a" not in near.keys and len(near.keys) == 2
    assert col.more_like("a", k=4, exact=True).keys == col.search(vector=Words().embed([TEXTS["a"]])[0], k=5,
                                                                   exact=True).keys[1:]  # fmt: skip


def test_alter_explain_evaluate_tune_rebuild_doctor(flavour, monkeypatch):
    # a handle trusts its row for CATALOG_CHECK_SECONDS after a check: 0 makes the next search check it,
    # whatever the time the alter took (else the test depends on the machine's speed)
    monkeypatch.setattr(handle, "CATALOG_CHECK_SECONDS", 0.0)
    col = _filled(flavour)
    altered = flavour.alter_collection("docs", compression="none", oversample=3.0)
    assert (altered.info.compression, altered.info.oversample) == ("none", 3.0)
    assert col.search("cats", k=1).keys  # the old handle follows the altered definition
    assert col.info.compression == "none"
    explained = col.explain("cats", k=3, settings={"enable_seqscan": "off"})
    assert "docs" in explained.sql and explained.plan and explained.settings
    report = col.evaluate(sample=5, k=2, repeat=1)
    assert 0.0 <= report.recall <= 1.0
    tuned = col.tune(sample=5, k=2, target_recall=0.9)
    assert tuned.collection == "docs"
    assert col.info.oversample == tuned.oversample  # the handle follows what the tune stored
    assert col.rebuild_index() > 0
    assert col.doctor().healthy


def test_an_automatic_plan_follows_the_size_and_an_explicit_one_pins_it(flavour, monkeypatch):
    # bit from 20 rows of these 16 dims (the real table says 1,000,000): a load of 30 crosses it
    monkeypatch.setattr(plan_choice, "RULES", (plan_choice.Rule("test", 1, ((0, "halfvec"), (20, "bit"))),))
    col = flavour.create_collection("docs", embedder=Words())
    assert (col.info.compression, col.info.plan_mode) == ("halfvec", "auto")
    col.add_many({"key": f"m{i}", "content": f"row number {i} about dogs"} for i in range(30))
    assert (col.info.compression, col.info.plan_mode) == ("bit", "auto")
    assert col.info.plan_reason.startswith("bit: grew to 30 rows of 16 dims, past 20 (rule for test")
    assert col.search("dogs", k=3).keys
    pinned = flavour.alter_collection("docs", compression="halfvec")
    assert (pinned.info.compression, pinned.info.plan_mode) == ("halfvec", "pinned")
    col.add_many({"key": f"n{i}", "content": f"row number {i} about cats"} for i in range(10))
    assert flavour.collection("docs").info.compression == "halfvec"
    auto = flavour.alter_collection("docs", compression="auto")
    assert (auto.info.compression, auto.info.plan_mode) == ("bit", "auto")
    assert auto.info.plan_reason.startswith("bit: grew to 40 rows of 16 dims")


def test_grant_gives_a_role_the_collection(flavour, db):
    _filled(flavour)
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        flavour.grant(role, "docs")
        with db.connection() as conn:
            table = conn.execute("SELECT table_name FROM semsearch.collections WHERE name = 'docs'").fetchone()[0]
            granted = conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", [role, f"semsearch.{table}"]
            ).fetchone()[0]
        assert granted
    finally:
        with db.connection() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_defer_pending_backfill(flavour):
    col = flavour.create_collection("docs", embedder=Words())
    col.add(list(TEXTS), list(TEXTS.values()), defer=True)
    assert col.pending() == 5
    assert col.backfill().embedded == 5
    assert col.pending() == 0
    assert col.quarantined() == []
    assert col.search("cats purr", k=1).keys == ["a"]


def test_sync_table_and_the_drop_refusal(flavour, db):
    with db.connection() as conn:
        conn.execute("CREATE TABLE public.products (id int PRIMARY KEY, description text, price int)")
        conn.execute("INSERT INTO public.products VALUES (1, 'red running shoes', 50), (2, 'blue rain coat', 80)")
    col = flavour.sync_table(
        "products", collection="products", key="id", text="description", metadata=["price"], embedder=Words()
    )
    assert col.pending() == 2
    col.backfill()
    assert col.search("running shoes", k=1).keys == ["1"]
    assert [s.table for s in flavour.synced_tables()] == ["public.products"]
    with pytest.raises(errors.ConfigurationError, match="unsync_table"):
        flavour.drop_collection("products")
    flavour.unsync_table("products", drop_collection=True)
    assert flavour.collections() == []
    flavour.drop_collection("products", missing_ok=True)


def _bad_calls(db: Calls) -> list[tuple[str, Any]]:
    col = _filled(db)
    return [
        ("k=0", lambda: col.search("cats", k=0)),
        ("unknown mode", lambda: col.search("cats", mode="fuzzy")),
        ("vector of other dims", lambda: col.search(vector=[1.0, 0.0])),
        ("bad filter", lambda: col.search("cats", where={"n": {"$nope": 1}})),
        ("explain unknown fusion", lambda: col.explain("cats", mode="hybrid", fusion="max")),
        ("keys and contents differ", lambda: col.add(["x", "y"], ["only one"])),
        ("empty text", lambda: col.add(["x"], [""])),
        ("delete nothing", lambda: col.delete()),
        ("more_like unknown", lambda: col.more_like("nope")),
        ("search_many none", lambda: col.search_many()),
        ("record without content", lambda: col.add_many([{"key": "x"}])),
        ("unknown collection", lambda: db.collection("nope")),
        ("drop unknown", lambda: db.drop_collection("nope")),
        ("duplicate", lambda: db.create_collection("docs", embedder=Words())),
        ("bad name", lambda: db.create_collection("Bad Name!", embedder=Words())),
        ("bad compression", lambda: db.alter_collection("docs", compression="zip")),
        ("grant unknown", lambda: db.grant("nobody_at_all", "nope")),
        ("watch with dry_run", lambda: col.backfill(watch=True, dry_run=True)),
        ("tune bad recall", lambda: col.tune(target_recall=2.0)),
    ]


def _outcomes(db: Calls) -> dict[str, tuple[str, str]]:
    out = {}
    for what, call in _bad_calls(db):
        try:
            call()
        except (errors.SemsearchError, psycopg.Error) as exc:
            out[what] = (type(exc).__name__, str(exc))
        else:
            out[what] = ("no error", "")
    return out


def test_bad_input_fails_alike_in_both_flavours(db_url, db):
    seen = {}
    for kind in ("sync", "async"):
        flav, close = _open(kind, db_url)
        try:
            seen[kind] = _outcomes(flav)
            flav.drop_collection("docs")
        finally:
            close()
    assert seen["sync"] == seen["async"]
    assert all(cls != "no error" for cls, _ in seen["sync"].values()), seen["sync"]
    assert not any(cls.startswith(("Operational", "Programming", "psycopg")) for cls, _ in seen["sync"].values())
