"""Deferred embedding and resumable backfill: killed with -9 and restarted, every row is embedded once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from psycopg import sql

from semsearch import errors
from semsearch.embeddings.openai import OpenAIEmbedder
from tests.fake_openai import FakeOpenAI, expected_vector

MODEL = "text-embedding-3-small"


def _embedder(server: FakeOpenAI) -> OpenAIEmbedder:
    return OpenAIEmbedder(model=MODEL, dims=256, base_url=server.base_url, api_key="test-key", max_retries=0)


def _stored(db, col) -> dict[str, np.ndarray | None]:
    with db.connection() as conn:
        rows = conn.execute(sql.SQL("SELECT key, embedding::vector FROM {}").format(col.layout.table)).fetchall()
    return {k: (None if v is None else v.to_numpy()) for k, v in rows}


def test_deferred_rows_are_invisible_to_vector_search_until_backfilled(db):
    with FakeOpenAI() as server:
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        texts = [f"document number {i} about topic {i % 7}" for i in range(50)]
        col.add(keys=range(50), contents=texts, defer=True)
        assert server.requests == [] and col.pending() == 50
        assert len(col.search(vector=expected_vector(texts[0], MODEL, 256), k=5)) == 0
        assert len(col.search("topic", k=5, mode="text")) == 5
        estimate = col.backfill(dry_run=True)
        assert estimate.pending == 50 and estimate.est_tokens > 0
        assert estimate.est_cost_usd == pytest.approx(estimate.est_tokens * 0.02 / 1e6)
        assert server.requests == []
        done = col.backfill(batch_size=16)
        assert (done.embedded, done.batches, col.pending()) == (50, 4, 0)
        stored = _stored(db, col)
        for i, text in enumerate(texts):
            np.testing.assert_allclose(stored[str(i)], expected_vector(text, MODEL, 256), atol=1e-6)
        assert col.search(vector=expected_vector(texts[3], MODEL, 256), k=1).keys == ["3"]
        # unchanged text is not re-embedded; changed text goes pending again
        col.add(keys=[3, 4], contents=[texts[3], "a brand new text"], defer=True)
        assert col.pending() == 1
        assert _stored(db, col)["3"] is not None


def test_text_changed_during_embedding_stays_pending(db):
    with FakeOpenAI() as server:
        emb = _embedder(server)
        col = db.create_collection("d", embedder=emb, compression="halfvec")
        col.add(keys=["a", "b"], contents=["old text a", "old text b"], defer=True)
        inner = emb.embed_batch

        def embed_and_edit(texts):
            # another writer changes "a" while its old text is being embedded: it is not blocked
            with db.connection() as conn:
                conn.execute(sql.SQL("UPDATE {} SET content = 'new text a' WHERE key = 'a'").format(col.layout.table))
            return inner(texts)

        emb.embed_batch = embed_and_edit  # type: ignore[method-assign]
        col.backfill(batch_size=10)
        emb.embed_batch = inner  # type: ignore[method-assign]
        stored = _stored(db, col)
        assert stored["a"] is None and stored["b"] is not None and col.pending() == 1
        col.backfill()
        np.testing.assert_allclose(_stored(db, col)["a"], expected_vector("new text a", MODEL, 256), atol=1e-6)
        # a raw SQL edit of an embedded row makes it pending again (trigger), so no vector goes stale
        with db.connection() as conn:
            conn.execute(sql.SQL("UPDATE {} SET content = 'edited b' WHERE key = 'b'").format(col.layout.table))
        assert _stored(db, col)["b"] is None and col.pending() == 1


def test_a_second_backfill_of_the_same_collection_is_refused(db):
    with FakeOpenAI() as server:
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        col.add(keys=["a"], contents=["text"], defer=True)
        with db.connection() as other:
            other.execute("SELECT pg_advisory_lock(hashtext('semsearch.backfill'), hashtext('d'))")
            with pytest.raises(errors.BackfillRunningError, match="expected no other backfill of 'd' running"):
                col.backfill()
            other.execute("SELECT pg_advisory_unlock(hashtext('semsearch.backfill'), hashtext('d'))")
        assert col.backfill().embedded == 1


WORKER = textwrap.dedent(
    """
    import sys, semsearch
    from semsearch.embeddings.openai import OpenAIEmbedder
    url, base_url = sys.argv[1], sys.argv[2]
    emb = OpenAIEmbedder(model="text-embedding-3-small", dims=256, base_url=base_url, api_key="k", max_retries=0)
    with semsearch.connect(url) as db:
        print(db.collection("d", embedder=emb).backfill(batch_size=20), flush=True)
    """
)


def test_kill_9_mid_backfill_then_restart_embeds_every_row_exactly_once(db, db_url):
    n = 300
    texts = [f"row {i}: a text about subject {i % 13}" for i in range(n)]
    with FakeOpenAI(delay=0.25) as server:
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        col.add(keys=range(n), contents=texts, defer=True)
        proc = subprocess.Popen([sys.executable, "-c", WORKER, db_url, server.base_url], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        # let a few batches commit, then kill it while a request is in flight
        while len(server.requests) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        left = col.pending()
        assert 0 < left < n, left
        server.delay = 0
        rerun = subprocess.run(
            [sys.executable, "-c", WORKER, db_url, server.base_url], capture_output=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        sent = [t for r in server.requests for t in r.inputs]
    assert col.pending() == 0 and col.count() == n
    stored = _stored(db, col)
    assert sorted(stored, key=int) == [str(i) for i in range(n)]
    for i, text in enumerate(texts):
        np.testing.assert_allclose(stored[str(i)], expected_vector(text, MODEL, 256), atol=1e-6)
    # only the batch in flight at the kill was sent twice
    resent = [t for t in set(sent) if sent.count(t) > 1]
    assert len(resent) <= 20 and len(set(sent)) == n


def test_backfill_command_dry_run_then_real(db, db_url):
    from click.testing import CliRunner

    from semsearch.cli import main

    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    col.add(keys=["a", "b", "c"], contents=["red apples", "green pears", "yellow bananas"], defer=True)
    runner = CliRunner()
    dry = runner.invoke(main, ["--url", db_url, "backfill", "docs", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 pending rows" in dry.output and "estimated cost unknown" in dry.output
    assert col.pending() == 3
    real = runner.invoke(main, ["--url", db_url, "backfill", "docs", "--batch-size", "2"])
    assert real.exit_code == 0, real.output
    assert "embedded 3 rows in 2 batches" in real.output
    assert col.pending() == 0 and col.search("pears", k=1).keys == ["b"]


def test_add_many_can_defer_embedding(db):
    col = db.create_collection("docs", model="local", dims=64, compression="halfvec")
    got = col.add_many(({"key": i, "content": f"note {i} about gardens"} for i in range(30)), batch_size=8, defer=True)
    assert (got.inserted, got.embedded, col.pending()) == (30, 0, 30)
    assert col.backfill().embedded == 30 and col.pending() == 0


TOO_LONG = "This model's maximum context length is 8192 tokens, however you requested 9001 tokens."


def _quarantine_setup(db, server: FakeOpenAI, n: int = 40, bad: int = 17):
    texts = [f"note {i} about the weather" for i in range(n)]
    texts[bad] = "a text the provider refuses " * 3
    server.refused[texts[bad]] = TOO_LONG
    col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
    col.add(keys=range(n), contents=texts, defer=True)
    return col, texts


def test_a_refused_text_is_quarantined_and_every_other_row_embedded(db):
    with FakeOpenAI() as server:
        col, texts = _quarantine_setup(db, server)
        done = col.backfill(batch_size=16)
        assert (done.pending, done.embedded, done.quarantined, done.batches) == (40, 39, 1, 3)
        assert col.pending() == 0
        [(key, reason)] = col.quarantined()
        assert key == "17" and "status 400" in reason and TOO_LONG in reason
        stored = _stored(db, col)
        assert stored["17"] is None
        for i, text in enumerate(texts):
            if i != 17:
                np.testing.assert_allclose(stored[str(i)], expected_vector(text, MODEL, 256), atol=1e-6)
        # the batch holding it was split in halves down to the refused row: a few requests, not one per row
        assert len(server.requests) <= 3 + 2 * 4
        # later runs skip it: no request, nothing pending, a dry run estimates nothing
        sent = len(server.requests)
        again = col.backfill(batch_size=16)
        assert (again.pending, again.embedded, again.quarantined, again.batches) == (0, 0, 0, 0)
        assert col.backfill(dry_run=True).pending == 0 and len(server.requests) == sent
        # retried while the provider still refuses: it stays, with a fresh reason
        retry = col.backfill(retry_quarantined=True)
        assert (retry.pending, retry.embedded, retry.quarantined) == (1, 0, 1)
        assert [k for k, _ in col.quarantined()] == ["17"]
        # retried once the provider takes it: it leaves quarantine, embedded
        server.refused.clear()
        retry = col.backfill(retry_quarantined=True)
        assert (retry.pending, retry.embedded, retry.quarantined) == (1, 1, 0)
        assert col.quarantined() == [] and col.pending() == 0
        np.testing.assert_allclose(_stored(db, col)["17"], expected_vector(texts[17], MODEL, 256), atol=1e-6)
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM semsearch.quarantine").fetchone()[0] == 0


@pytest.mark.parametrize("how", ["add", "sql"])
def test_a_quarantined_row_whose_text_changes_leaves_quarantine(db, how):
    with FakeOpenAI() as server:
        col, _ = _quarantine_setup(db, server, n=5, bad=2)
        assert col.backfill().quarantined == 1 and col.pending() == 0
        if how == "add":
            col.add(keys=[2], contents=["a shorter text now"], defer=True)
        else:
            with db.connection() as conn:
                conn.execute(
                    sql.SQL("UPDATE {} SET content = 'a shorter text now' WHERE key = '2'").format(col.layout.table)
                )
        assert col.quarantined() == [] and col.pending() == 1
        assert col.backfill().embedded == 1
        np.testing.assert_allclose(_stored(db, col)["2"], expected_vector("a shorter text now", MODEL, 256), atol=1e-6)
        with db.connection() as conn:
            assert conn.execute("SELECT count(*) FROM semsearch.quarantine").fetchone()[0] == 0


def test_a_request_refused_whatever_the_text_quarantines_nothing(db):
    with FakeOpenAI() as server:
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        col.add(keys=range(6), contents=[f"text {i}" for i in range(6)], defer=True)
        server.fail_always(status=400)  # e.g. a model that does not exist: not the texts' fault
        with pytest.raises(errors.EmbeddingError, match="status 400"):
            col.backfill(batch_size=4)
        assert col.quarantined() == [] and col.pending() == 6
        server.fail_always(None)
        assert col.backfill().embedded == 6


def test_a_server_error_is_raised_not_quarantined(db):
    with FakeOpenAI() as server:
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        col.add(keys=range(3), contents=[f"text {i}" for i in range(3)], defer=True)
        server.fail_next(status=500)
        with pytest.raises(errors.EmbeddingError, match="status 500"):
            col.backfill()
        assert col.quarantined() == [] and col.pending() == 3


def test_a_dropped_and_recreated_collection_does_not_inherit_quarantine(db):
    with FakeOpenAI() as server:
        col, texts = _quarantine_setup(db, server, n=3, bad=1)
        assert col.backfill().quarantined == 1
        db.drop_collection("d")
        server.refused.clear()
        col = db.create_collection("d", embedder=_embedder(server), compression="halfvec")
        col.add(keys=range(3), contents=texts, defer=True)
        assert col.quarantined() == [] and col.pending() == 3
        assert col.backfill().embedded == 3


def test_backfill_command_prints_quarantined_rows_and_can_retry_them(db, db_url, monkeypatch):
    from click.testing import CliRunner

    from semsearch.cli import main

    with FakeOpenAI() as server:
        texts = ["red apples", "green pears", "a refused text"]
        server.refused["a refused text"] = TOO_LONG
        col = db.create_collection("docs", model=MODEL, dims=256, embedder=_embedder(server), compression="halfvec")
        col.add(keys=["a", "b", "c"], contents=texts, defer=True)
        # the command makes its own embedder from the model name; the sdk reads these
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        runner = CliRunner()
        real = runner.invoke(main, ["--url", db_url, "backfill", "docs"])
        assert real.exit_code == 0, real.output
        assert "embedded 2 rows in 1 batches" in real.output
        assert "1 row in quarantine" in real.output
        assert "c: " in real.output and TOO_LONG in real.output
        server.refused.clear()
        retry = runner.invoke(main, ["--url", db_url, "backfill", "docs", "--retry-quarantined"])
        assert retry.exit_code == 0, retry.output
        assert "embedded 1 rows" in retry.output and "quarantine" not in retry.output
    assert col.pending() == 0 and col.quarantined() == []
