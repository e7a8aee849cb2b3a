"""Changing the model/dims of a live collection: shadow build, comparison, atomic switch, rollback."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from psycopg import sql

from semsearch import errors, model_switch
from semsearch.cli import main
from semsearch.demo import stdlib_corpus
from semsearch.embeddings import BatchedEmbedder
from semsearch.embeddings.local import LocalEmbedder


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
        original = model_switch._compare

        def compare_then_write(old, new, **kw):
            old.add(keys=["late"], contents=["a row written while the migration ran"])
            return original(old, new, **kw)

        model_switch._compare = compare_then_write
        report = model_switch.migrate_model(db, "docs", model="local", dims=256, sample=20, k=5)
    finally:
        model_switch._compare = original
        stop.set()
        thread.join()
    assert seen and all(n == 3 for n in seen)
    assert report.switched and (report.old_dims, report.new_dims) == (64, 256)
    assert 0 < report.overlap_at_k <= 1 and report.queries == 20
    live = db.collection("docs")
    assert live.dims == 256 and live.count() == 601 and live.pending() == 0
    assert live.search("a row written while the migration ran", k=1).keys == ["late"]
    assert db.collection("docs__prev").dims == 64
    model_switch.rollback(db, "docs")
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
    model_switch.migrate_model(db, "docs", dims=128, switch=False, sample=5)
    with pytest.raises(errors.ConfigurationError, match="expected 'docs__next' to be a migration to"):
        model_switch.migrate_model(db, "docs", dims=256, sample=5)


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
            model_switch.migrate_model(db, "docs", embedder=emb, sample=5)
        assert db.collection("docs").dims == 64  # still the old collection
        assert [k for k, _ in db.collection("docs__next").quarantined()] == ["7"]
        # the text is fixed in the shadow's source; the rerun resumes and switches
        server.refused.clear()
        col.add(keys=[7], contents=["note 7, rewritten"])
        report = model_switch.migrate_model(db, "docs", embedder=emb, sample=5)
    assert report.switched and db.collection("docs").dims == 256 and db.collection("docs").pending() == 0


def test_a_handle_opened_before_the_switch_writes_and_searches_the_live_collection(db, docs):
    """0.1.0: it kept writing and deleting in docs__prev, and searched the new table with the
    old model (with equal dims: overlap 0.0 with the right answer, no error)."""
    stale = db.collection("docs")
    stale.search("read a tar archive", k=3)  # its embedder is made: the old model
    model_switch.migrate_model(db, "docs", model="local", dims=128, sample=10, k=5)
    fresh = db.collection("docs")
    assert fresh.dims == 128
    got = stale.add(["late"], ["a row written through a handle opened before the switch"])
    assert got.inserted == 1
    prev = db.collection("docs__prev")
    assert fresh.count() == 601 and prev.count() == 600
    assert stale.delete(["late"]) == 1 and fresh.count() == 600
    # writes to the switched-out table are refused, whoever makes them
    with db.connection() as conn, pytest.raises(Exception, match="switched out by migrate-model"):
        conn.execute(sql.SQL("DELETE FROM {}").format(prev.layout.table))
    # stale text searches follow the switch (within a second: the handle re-reads its row)
    time.sleep(1.1)
    query = "parse a date from a string"
    assert stale.search(query, k=5).keys == fresh.search(query, k=5).keys
    assert (
        stale.search(query, k=5, where={"module": "datetime"}).keys
        == fresh.search(query, k=5, where={"module": "datetime"}).keys
    )
    model_switch.rollback(db, "docs")
    assert db.collection("docs").add(["after"], ["a row after the rollback"]).inserted == 1


def test_no_acknowledged_write_is_lost_across_the_switch(db, docs):
    """0.1.0 lost the write in flight at the switch (a fresh handle per write), 4 runs of 4."""
    acknowledged: list[str] = []
    stop = threading.Event()
    errors_seen: list[Exception] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            key = f"w{i}"
            try:
                db.collection("docs").add([key], [f"note number {i} about parsing dates"])
            except Exception as exc:
                errors_seen.append(exc)
                return
            acknowledged.append(key)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        model_switch.migrate_model(db, "docs", model="local", dims=128, sample=10, k=5)
        time.sleep(0.3)  # writes after the switch too
    finally:
        stop.set()
        thread.join()
    assert errors_seen == [] and len(acknowledged) > 5
    live = db.collection("docs")
    with db.connection() as conn:
        stored = {r[0] for r in conn.execute(sql.SQL("SELECT key FROM {}").format(live.layout.table))}
    assert set(acknowledged) <= stored and live.pending() == 0


class Labelled(BatchedEmbedder):
    """The real local model under a model name semsearch does not know, counting the texts it embeds."""

    def __init__(self, model: str, dims: int) -> None:
        self.inner = LocalEmbedder(dims)
        self.model, self.dims = model, dims
        self.seen = 0

    def embed_batch(self, texts):
        self.seen += len(texts)
        return self.inner.embed_batch(texts)


def counting_64() -> Labelled:
    """An --embedder factory: the collection's old model."""
    return Labelled("counting", 64)


def counting_v2_128() -> Labelled:
    """An --embedder factory: the new model."""
    return Labelled("counting-v2", 128)


def test_an_unrelated_collection_named_like_the_shadow_is_refused_and_kept(db, db_url):
    """0.1.0 resumed a user's own 'lm__next' as its shadow: its row 'alien' was deleted and the
    collection switched in under 'lm' (issue 21, item 4)."""
    lm = db.create_collection("lm", model="local", dims=64, compression="halfvec")
    lm.add(keys=["a", "b"], contents=["a note about rivers", "a note about lakes"])
    mine = db.create_collection("lm__next", model="local", dims=128, compression="halfvec")
    mine.add(keys=["alien"], contents=["a row of the user's own collection"])
    with pytest.raises(errors.CollectionExistsError, match=r"expected 'lm__next' to be the shadow migrate-model"):
        model_switch.migrate_model(db, "lm", dims=128, sample=2, k=2)
    wrong = CliRunner().invoke(main, ["--url", db_url, "migrate-model", "lm", "--dims", "128"])
    assert wrong.exit_code == 1 and "did not make" in wrong.output and "drop it" in wrong.output
    # nothing was changed: the user's rows and both names are as they were
    assert sorted(c.name for c in db.collections()) == ["lm", "lm__next"]
    assert db.collection("lm").dims == 64 and db.collection("lm").count() == 2
    with db.connection() as conn:
        keys = [r[0] for r in conn.execute(sql.SQL("SELECT key FROM {}").format(mine.layout.table))]
    assert keys == ["alien"]
    # its own shadow, interrupted and resumed after a rollback, is still taken up
    db.drop_collection("lm__next")
    model_switch.migrate_model(db, "lm", dims=128, switch=False, sample=2, k=2)
    assert model_switch.migrate_model(db, "lm", dims=128, sample=2, k=2).switched
    model_switch.rollback(db, "lm")
    db.drop_collection("lm__prev", missing_ok=True)
    assert model_switch.migrate_model(db, "lm", dims=128, sample=2, k=2).switched


def test_a_custom_old_model_is_compared_with_the_old_embedder_given(db, db_url):
    """0.1.0 embedded every row, then failed in the comparison: 'expected a built-in model ...,
    got model 'counting'' (issue 21, item 5)."""
    old = Labelled("counting", 64)
    col = db.create_collection("docs", embedder=old, compression="halfvec")
    col.add_many(stdlib_corpus(rows=200))
    new = Labelled("counting-v2", 128)
    # a wrong old embedder is refused before anything is embedded
    with pytest.raises(errors.ConfigurationError, match=r"expected an old embedder for counting/64, got other/64"):
        model_switch.migrate_model(db, "docs", embedder=new, old_embedder=Labelled("other", 64), sample=10, k=5)
    assert new.seen == 0 and [c.name for c in db.collections()] == ["docs"]
    report = model_switch.migrate_model(db, "docs", embedder=new, old_embedder=old, sample=10, k=5)
    assert report.switched and report.queries == 10 and 0 < report.overlap_at_k <= 1 and report.note is None
    assert new.seen == 200 + 10 and db.collection("docs").dims == 128  # the rows, then the sampled texts
    # the CLI takes it as --old-embedder module:factory
    model_switch.rollback(db, "docs")
    db.drop_collection("docs__next")
    args = ["--embedder", f"{__name__}:counting_v2_128", "--old-embedder", f"{__name__}:counting_64", "-k", "3"]
    got = CliRunner().invoke(main, ["--url", db_url, "migrate-model", "docs", *args, "--sample", "5", "--json"])
    assert got.exit_code == 0, got.output
    assert '"queries": 5' in got.output and '"note": null' in got.output


def test_a_custom_old_model_without_its_embedder_switches_and_says_the_comparison_was_skipped(db):
    col = db.create_collection("docs", embedder=Labelled("counting", 64), compression="halfvec")
    col.add_many(stdlib_corpus(rows=100))
    new = Labelled("counting-v2", 128)
    report = model_switch.migrate_model(db, "docs", embedder=new, sample=10, k=5)
    assert report.switched and new.seen == 100 and db.collection("docs").dims == 128
    assert report.queries == 0 and report.overlap_at_k is None and report.mean_top_score_shift is None
    assert report.note == (
        "comparison skipped: the old model 'counting' is not built in; "
        "pass old_embedder= (--old-embedder module:factory) to compare"
    )
    assert "comparison skipped" in str(report)


def test_rollback_refuses_an_unrelated_collection_named_like_the_one_switched_out(db):
    """0.1.0 swapped a user's own 'lm__prev' in under 'lm' and made 'lm' refuse every write."""
    lm = db.create_collection("lm", model="local", dims=64, compression="halfvec")
    lm.add(keys=["a"], contents=["a note about rivers"])
    db.create_collection("lm__prev", model="local", dims=64, compression="halfvec").add(["alien"], ["user's own"])
    with pytest.raises(errors.CollectionExistsError, match=r"expected 'lm__prev' to be the collection migrate-model"):
        model_switch.rollback(db, "lm")
    assert sorted(c.name for c in db.collections()) == ["lm", "lm__prev"]
    assert db.collection("lm").add(["b"], ["a note about lakes"]).inserted == 1
    assert db.collection("lm__prev").search("user's own", k=1).keys == ["alien"]


def test_model_migration_has_a_public_python_api(db):
    """Before: semsearch.model_switch was internal and the CLI the only public route."""
    import semsearch

    col = db.create_collection("pub", model="local", dims=128, compression="none")
    col.add(["a", "b", "c"], ["a cat on a mat", "a dog in the fog", "tax law"])
    report = semsearch.migrate_model(db, "pub", dims=64, sample=3, k=2)
    assert isinstance(report, semsearch.MigrationReport) and report.switched
    assert db.collection("pub").dims == 64
    semsearch.rollback_model(db, "pub")
    assert db.collection("pub").dims == 128
