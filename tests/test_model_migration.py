"""Changing the model/dims of a live collection: shadow build, comparison, atomic switch, rollback."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from semsearch import errors, model_migration
from semsearch.cli import main
from semsearch.demo import stdlib_corpus


@pytest.fixture
def docs(db):
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    col.add_many(stdlib_corpus(rows=600))
    return col


def test_64_to_256_dims_with_searches_and_writes_during_the_build(db, docs):
    before = docs.search("parse a date from a string", k=5).keys
    seen: list[int] = []
    stop = threading.Event()

    def searcher():
        # searches by name keep answering (from the old collection) throughout
        while not stop.is_set():
            seen.append(len(db.collection("docs").search("read a tar archive", k=3)))

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        # a write between the build and the switch is carried over by the switch
        original = model_migration._compare

        def compare_then_write(old, new, **kw):
            old.add(keys=["late"], contents=["a row written while the migration ran"])
            return original(old, new, **kw)

        model_migration._compare = compare_then_write
        report = model_migration.migrate_model(db, "docs", model="local", dims=256, sample=20, k=5)
    finally:
        model_migration._compare = original
        stop.set()
        thread.join()
    assert seen and all(n == 3 for n in seen)
    assert report.switched and (report.old_dims, report.new_dims) == (64, 256)
    assert 0 < report.overlap_at_k <= 1 and report.queries == 20
    live = db.collection("docs")
    assert live.dims == 256 and live.count() == 601 and live.pending() == 0
    assert live.search("a row written while the migration ran", k=1).keys == ["late"]
    assert db.collection("docs__prev").dims == 64
    model_migration.rollback(db, "docs")
    assert (
        db.collection("docs").dims == 64
        and db.collection("docs").search("parse a date from a string", k=5).keys == before
    )
    assert db.collection("docs__next").dims == 256


def test_cli_no_switch_then_switch_then_rollback(db, db_url, docs):
    runner = CliRunner()
    built = runner.invoke(main, ["--url", db_url, "migrate-model", "docs", "--dims", "128", "--no-switch", "--json"])
    assert built.exit_code == 0, built.output
    assert '"switched": false' in built.output and db.collection("docs").dims == 64
    switched = runner.invoke(main, ["--url", db_url, "migrate-model", "docs", "--dims", "128", "--json"])
    assert switched.exit_code == 0, switched.output
    assert db.collection("docs").dims == 128
    # a second migration is refused before any embedding while the first one's __prev is kept
    wrong = runner.invoke(main, ["--url", db_url, "migrate-model", "docs", "--dims", "256"])
    assert wrong.exit_code == 1 and "expected no 'docs__prev' left" in wrong.output
    assert [c.name for c in db.collections()] == ["docs", "docs__prev"]
    back = runner.invoke(main, ["--url", db_url, "migrate-model", "docs", "--rollback"])
    assert back.exit_code == 0 and db.collection("docs").dims == 64


def test_resume_refuses_a_shadow_for_another_model(db, docs):
    model_migration.migrate_model(db, "docs", dims=128, switch=False, sample=5)
    with pytest.raises(errors.ConfigurationError, match="expected 'docs__next' to be a migration to"):
        model_migration.migrate_model(db, "docs", dims=256, sample=5)


def test_a_text_the_new_model_refuses_stops_the_switch_and_is_listed(db):
    from semsearch.embeddings.openai import OpenAIEmbedder
    from tests.fake_openai import FakeOpenAI

    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    texts = [f"note {i} about rivers and lakes" for i in range(20)]
    col.add(keys=range(20), contents=texts)
    with FakeOpenAI() as server:
        server.refused[texts[7]] = "this text is refused"
        emb = OpenAIEmbedder(dims=256, base_url=server.base_url, api_key="k", max_retries=0)
        with pytest.raises(errors.EmbeddingError, match=r"got 1 refused \('7'; see 'docs__next'.quarantined\(\)\)"):
            model_migration.migrate_model(db, "docs", embedder=emb, sample=5)
        assert db.collection("docs").dims == 64  # still the old collection
        assert [k for k, _ in db.collection("docs__next").quarantined()] == ["7"]
        # the text is fixed in the shadow's source; the rerun resumes and switches
        server.refused.clear()
        col.add(keys=[7], contents=["note 7, rewritten"])
        report = model_migration.migrate_model(db, "docs", embedder=emb, sample=5)
    assert report.switched and db.collection("docs").dims == 256 and db.collection("docs").pending() == 0
