"""Automatic plans against the real Postgres: a collection's plan follows its size, online; a pinned one stays.

The thresholds are lowered with ``monkeypatch`` on :data:`semsearch.plan_choice.RULES` (the table
the rule reads), so that a few hundred rows cross them; the database is the real one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from semsearch import autoplan, handle, plan_choice, tune
from semsearch.plan_choice import Rule

DIMS = 1536
#: switch to bit from 1,000 rows (down again below 500)
LOW = (Rule(">= 1024 dims (test)", 1024, ((0, "halfvec"), (1000, "bit"))),)


def vectors(n: int, seed: int) -> np.ndarray:
    """Unit vectors of 1,536 dims made from 8 latent ones: like real embeddings, they have near
    neighbours to find (i.i.d. gaussian vectors of 1,536 dims are all about equally far apart)."""
    basis = np.random.default_rng(42).standard_normal((8, DIMS))
    v = np.random.default_rng(seed).standard_normal((n, 8)) @ basis
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def records(prefix: str, vecs: np.ndarray) -> list[dict]:
    return [{"key": f"{prefix}{i}", "content": f"row {prefix}{i}", "embedding": v} for i, v in enumerate(vecs)]


def index_def(db, col) -> str:
    with db.connection() as conn:
        return conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [col.layout.table_name + "_hnsw"]
        ).fetchone()[0]


@pytest.fixture
def low(monkeypatch):
    monkeypatch.setattr(plan_choice, "RULES", LOW)
    # handles re-read the catalog at every search: they meet the new plan at once
    monkeypatch.setattr(handle, "CATALOG_CHECK_SECONDS", 0.0)


def test_a_new_collection_without_compression_is_automatic_with_a_reason_and_an_explicit_one_is_pinned(db):
    auto = db.create_collection("auto", dims=DIMS, model="label")
    assert (auto.info.compression, auto.info.plan_mode) == ("bit", "auto")
    assert auto.info.plan_reason.startswith("bit: 0 rows of 1536 dims (rule for >= 1024 dims: bit at every size)")
    assert auto.info.plan_reason.endswith(" UTC)")
    pinned = db.create_collection("pinned", dims=DIMS, model="label", compression="halfvec")
    assert (pinned.info.compression, pinned.info.plan_mode) == ("halfvec", "pinned")
    assert pinned.info.plan_reason.startswith("halfvec: pinned by compression= at creation")
    small = db.create_collection("small", dims=256, model="label", compression="auto")
    assert (small.info.compression, small.info.plan_mode) == ("halfvec", "auto")
    with db.connection() as conn:
        rows = conn.execute("SELECT name, plan_mode, plan_reason IS NOT NULL FROM semsearch.stats ORDER BY name")
        assert rows.fetchall() == [("auto", "auto", True), ("pinned", "pinned", True), ("small", "auto", True)]


def test_growing_past_the_threshold_changes_the_plan_online_while_a_searcher_and_a_writer_run(db, low, caplog):
    caplog.set_level(logging.INFO, logger="semsearch.autoplan")
    col = db.create_collection("grow", dims=DIMS, model="label")
    col.add_many(records("a", vectors(600, 1)))  # an empty collection: a bulk load, 600 rows stay halfvec
    assert (col.info.compression, col.info.plan_mode) == ("halfvec", "auto")
    queries = vectors(40, 7)
    errors: list[BaseException] = []
    searched: list[str] = []  # the plan each search ran with
    written = 0
    stop = threading.Event()

    def searcher() -> None:
        reader = db.collection("grow")
        while not stop.is_set():
            try:
                for q in queries[:5]:
                    assert len(reader.search(vector=q, k=10).keys) == 10
                    searched.append(reader.info.compression)
            except BaseException as exc:  # every failure counts
                errors.append(exc)
                return

    def writer() -> None:
        nonlocal written
        other = db.collection("grow")
        extra = vectors(400, 3)
        for i, v in enumerate(extra):
            if stop.is_set():
                return
            try:
                other.add(keys=[f"w{i}"], contents=[f"written meanwhile {i}"], embeddings=v[None, :])
                written += 1
            except BaseException as exc:
                errors.append(exc)
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=searcher), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        # not empty: an incremental load, after which the rule is asked: 1,400+ rows reach bit's 1,000
        result = col.add_many(records("b", vectors(800, 2)))
        time.sleep(0.5)  # searches and writes go on with the new plan
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert written > 0 and "halfvec" in searched and "bit" in searched
    info = db.collection("grow").info
    assert (info.compression, info.plan_mode) == ("bit", "auto")
    assert info.plan_reason.startswith("bit: grew to ") and "past 1,000" in info.plan_reason
    assert "was halfvec" in info.plan_reason
    assert [r.getMessage() for r in caplog.records if r.name == "semsearch.autoplan"] == [
        f"grow changes plan: {info.plan_reason}"
    ]
    assert "binary_quantize" in index_def(db, col)
    # autotune measured the new plan (its tuned values were the old plan's)
    assert result.tuned is not None and info.tuned_rows is not None and info.tuned_rows >= 1400
    # recall@10 of the new plan against exact search, on 40 queries of the same distribution
    found = [set(col.search(vector=q, k=10).keys) & set(col.search(vector=q, k=10, exact=True).keys) for q in queries]
    recall = np.mean([len(f) / 10 for f in found])
    print(f"recall@10 {recall:.3f}, oversample {info.oversample:g}, {written} rows written, {len(searched)} searches")
    assert recall >= 0.95


def test_a_collection_between_half_the_threshold_and_it_keeps_its_plan_and_below_half_goes_down(db, low):
    col = db.create_collection("shrink", dims=DIMS, model="label", autotune=False)
    col.add_many(records("a", vectors(1200, 1)))  # a bulk load builds bit's index once, at its size
    assert col.info.compression == "bit" and "binary_quantize" in index_def(db, col)
    assert col.info.plan_reason.startswith("bit: grew to 1,200 rows of 1536 dims")
    col.delete([f"a{i}" for i in range(600)])
    col.add_many(records("b", vectors(1, 2)))
    assert col.info.compression == "bit"  # 601 rows: above half of 1,000
    col.delete([f"a{i}" for i in range(600, 1000)])
    col.add_many(records("c", vectors(1, 3)))
    assert col.info.compression == "halfvec" and "halfvec" in index_def(db, col)
    assert col.info.plan_reason.startswith("halfvec: shrank to 202 rows of 1536 dims, below 500")


def test_a_pinned_collection_never_changes_its_plan(db, low):
    col = db.create_collection("pinned", dims=DIMS, model="label", compression="halfvec", autotune=False)
    reason = col.info.plan_reason
    col.add_many(records("a", vectors(600, 1)))
    col.add_many(records("b", vectors(800, 2)))
    info = db.collection("pinned").info
    assert (info.compression, info.plan_mode, info.plan_reason) == ("halfvec", "pinned", reason)


def test_alter_to_auto_takes_the_plan_the_size_asks_for_and_an_explicit_plan_pins_it(db, low):
    col = db.create_collection("alt", dims=DIMS, model="label", compression="halfvec", autotune=False)
    col.add_many(records("a", vectors(1100, 1)))
    col = db.alter_collection("alt", compression="auto")
    assert (col.info.compression, col.info.plan_mode) == ("bit", "auto")
    assert col.info.plan_reason.startswith("bit: grew to 1,100 rows") and "binary_quantize" in index_def(db, col)
    col = db.alter_collection("alt", compression="bit")  # the same plan, pinned: nothing to build
    assert (col.info.compression, col.info.plan_mode) == ("bit", "pinned")
    assert col.info.plan_reason.startswith("bit: pinned by alter_collection(compression=)")
    col = db.alter_collection("alt", compression="auto")
    assert (col.info.compression, col.info.plan_mode) == ("bit", "auto")
    assert col.info.plan_reason.startswith("bit: 1,100 rows of 1536 dims (rule for >= 1024 dims (test): bit from")


def test_semsearch_info_prints_the_mode_and_the_reason(run):
    run("create", "notes", "--model", "label", "--dims", 8)
    out = run("info", "notes").stdout
    assert "compression halfvec (auto)" in out and "rows: 0" in out
    assert "plan: halfvec, automatic (follows the collection's size)" in out
    assert "reason: halfvec: 0 rows of 8 dims (rule for < 1024 dims: halfvec below 1,000,000 rows)" in out
    run("alter", "notes", "--compression", "bit")
    out = run("info", "notes").stdout
    assert "plan: bit, pinned" in out and "reason: bit: pinned by alter_collection(compression=)" in out


def test_a_writer_not_owning_the_table_loads_and_leaves_the_new_plan_to_the_owner(db, db_url, monkeypatch, caplog):
    monkeypatch.setattr(plan_choice, "RULES", (Rule("test", 1, ((0, "halfvec"), (20, "bit"))),))
    col = db.create_collection("a", dims=8, model="label", autotune=False)
    col.add_many(records("o", np.eye(8, dtype=np.float32)[:5]))
    role = f"ss_w_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    db.grant(role, "a", write=True)
    try:
        caplog.set_level(logging.WARNING, logger="semsearch.autoplan")
        with semsearch.connect(make_conninfo(db_url, user=role)) as as_writer:
            vecs = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
            assert as_writer.collection("a").add_many(records("w", vecs)).inserted == 30
        assert db.collection("a").info.compression == "halfvec"
        assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "semsearch.autoplan"] == [
            "a needs a new plan, left to its table's owner"
        ]
        col.add_many(records("p", vecs[:1]))  # the owner's next load changes it
        assert db.collection("a").info.compression == "bit"
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def counts_run(monkeypatch, table: str) -> list[str]:
    """The counts of ``table`` (``SELECT count(...``) run from now on (every sync cursor's ``execute`` is watched)."""
    seen: list[str] = []
    execute = psycopg.Cursor.execute

    def watched(self, query, *args, **kwargs):
        text = query.as_string(self.connection) if isinstance(query, sql.Composable) else str(query)
        if text.startswith("SELECT count(") and table in text:
            seen.append(text)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", watched)
    return seen


def test_an_automatic_add_many_counts_its_rows_once(db, monkeypatch):
    """The plan rule and autotune ask the same count: one scan of the table, not one each (issue 22)."""
    col = db.create_collection("counted", dims=DIMS, model="label")
    assert (col.info.plan_mode, col.info.autotune) == ("auto", True)
    seen = counts_run(monkeypatch, col.layout.table_name)
    col.add_many(records("a", vectors(50, 1)))  # empty: a bulk load, the plan followed before its index build
    assert len(seen) == 1, seen
    seen.clear()
    col.add_many(records("b", vectors(50, 2)))  # a plain load
    assert len(seen) == 1, seen
    seen.clear()
    col.add_many(records("c", vectors(5, 3)), autotune=False)  # neither asks
    assert seen == []


def test_the_one_count_of_a_collection_with_passages_tells_rows_and_documents_apart(db, monkeypatch):
    """The plan rule asks the table's rows (passages one by one), autotune what count() says: one scan, both."""
    col = db.create_collection("docs", dims=64, model="local", passages=lambda text: text.split("\n\n"))
    seen = counts_run(monkeypatch, col.layout.table_name)
    col.add_many({"key": f"d{i}", "content": f"first part {i}\n\nsecond part {i}\n\nthird {i}"} for i in range(4))
    assert len(seen) == 1, seen
    size = autoplan.Size()
    assert (size.rows(db, col.info), size.documents(db, col.info)) == (12, 4)
    assert col.count() == 4


def test_an_add_many_that_autotunes_still_counts_once(db, monkeypatch):
    """autotune's tune() records the rows it tuned at: the count the load already made, not a new scan."""
    col = db.create_collection("tuned_once", dims=DIMS, model="label")
    seen = counts_run(monkeypatch, col.layout.table_name)
    got = col.add_many(records("t", vectors(tune.AUTOTUNE_MIN_ROWS, 4)))
    assert got.tuned is not None and got.tuned.rows == tune.AUTOTUNE_MIN_ROWS
    assert len(seen) == 1, seen
