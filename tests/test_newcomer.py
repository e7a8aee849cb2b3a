"""What a newcomer tripped over: output that was wrong or misleading, one test per trap."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

import semsearch
import semsearch.aio
from semsearch.errors import DatabaseError, EmbeddingError, InvalidInputError
from semsearch.evaluate import evaluate
from semsearch.fusion import tune_hybrid
from tests.examples import readme_python


def _toy(db: semsearch.Database, name: str = "toy", **options: object) -> semsearch.Collection:
    col = db.create_collection(name, model="label", dims=4, compression="none", **options)
    col.add(["a", "b"], ["red apple", "green pear"], embeddings=np.eye(4)[:2])
    return col


def test_eval_refuses_sampled_rows_judged_by_qrels(db, run, tmp_path):
    # sampled rows' keys are no query ids: the README's own line printed nDCG@10 0.0016
    col = _toy(db)
    qrels = tmp_path / "qrels"
    qrels.write_text("1 a 1\n2 b 1\n")
    out = run("eval", "toy", "--sample", 2, "--qrels", qrels, ok=False)
    assert "expected --queries with --qrels" in out.output
    with pytest.raises(InvalidInputError, match="expected queries with qrels"):
        evaluate(col, sample=2, qrels={"1": {"a": 1.0}})


def test_tune_hybrid_compares_the_default_too(db):
    col = db.create_collection("h", model="local", dims=64, compression="none")
    docs = {"tea": "brewing green tea with water at 80 degrees", "bread": "baking sourdough bread at home",
            "cat": "a kitten purring on the sofa", "rates": "interest rates rise as markets fall"}  # fmt: skip
    col.add(list(docs), list(docs.values()))
    queries = ["how to make tea", "a sleeping cat", "bake bread"]
    qrels = {"1": {"tea": 1.0}, "2": {"cat": 1.0}, "3": {"bread": 1.0}}
    result = tune_hybrid(col, queries, qrels, fusions=("rrf",), text_shares=(0.5,))
    assert result.default in result.tried  # the setting searches use untuned is one of the candidates
    assert (result.default.fusion, result.default.vector_weight, result.default.text_weight) == ("blend", 0.3, 0.7)
    assert result.best.ndcg_at_10 >= result.default.ndcg_at_10


def test_a_short_answer_says_when_rows_wait_for_backfill(db, run, tmp_path):
    col = db.create_collection("later", model="label", dims=4, compression="none")
    col.add(["a", "b", "c"], ["one", "two", "three"], defer=True)
    q = tmp_path / "q.json"
    q.write_text(json.dumps([1, 0, 0, 0]))
    out = run("search", "later", "--vector-file", q, "-k", 10)
    assert "only 0 of 10 requested rows exist; 3 more wait for an embedding: run `semsearch backfill later`" in (
        out.stderr
    )
    _toy(db)
    complete = run("search", "toy", "--vector-file", q, "-k", 5)
    assert complete.stderr == "only 2 of 5 requested rows exist\n"  # no pending rows, no hint


def test_delete_from_an_empty_file_deletes_nothing_and_says_so(db, run, tmp_path):
    _toy(db)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    out = run("delete", "toy", "--from-file", empty)
    assert out.stdout == f"deleted 0 of 0 key(s) from toy ({empty} holds no keys)\n"
    assert "expected KEYs or --from-file" in run("delete", "toy", ok=False).output
    assert db.collection("toy").count() == 2


def test_ingest_without_a_tenant_names_the_file_and_line(db, run, tmp_path):
    db.create_collection("tickets", model="label", dims=4, compression="none", tenant_required=True)
    src = tmp_path / "tickets.jsonl"
    src.write_text(
        json.dumps({"key": "t1", "content": "printer jam", "embedding": [1, 0, 0, 0], "tenant": "acme"})
        + "\n"
        + json.dumps({"key": "t2", "content": "no tenant", "embedding": [0, 1, 0, 0]})
        + "\n"
    )
    out = run("ingest", "tickets", src, ok=False)
    assert f"{src}:2: expected a tenant (field 'tenant') on every row of collection 'tickets'" in out.output
    assert "position" not in out.output
    assert db.collection("tickets").count() == 0


def test_writes_after_close_raise_database_error_as_searches_do(db_url):
    db = semsearch.connect(db_url)
    col = _toy(db)
    db.close()
    for call in (
        lambda: col.add(["c"], ["blue plum"], embeddings=np.eye(4)[2:3]),
        lambda: col.delete("a"),
        lambda: col.search(vector=np.eye(4)[0]),
    ):
        with pytest.raises(DatabaseError, match="expected an open database, got it closed"):
            call()

    async def main() -> None:
        adb = await semsearch.aio.connect(db_url)
        acol = await adb.collection("toy")
        await adb.close()
        with pytest.raises(DatabaseError, match="expected an open database, got it closed"):
            await acol.add(["c"], ["blue plum"], embeddings=np.eye(4)[2:3])

    asyncio.run(main())


def test_settings_carry_no_float32_noise(db):
    # hybrid scores keep theirs (0.30000001192092896) until hybrid_search() stops fusing with
    # float4 weights: a change of the SQL function, left to the schema migration
    tuned = db.create_collection("tuned", model="label", dims=16, compression="bit", autotune=False)
    rng = np.random.default_rng(0)
    tuned.add([str(i) for i in range(300)], [f"row {i}" for i in range(300)], embeddings=rng.normal(size=(300, 16)))
    # at most 17 candidates (7 x 2.5): the search tries 17, oversample 17/7 in float4 (the bisection
    # from 7 otherwise visits multiples of 7 only, whose oversample is a whole number)
    result = tuned.tune(sample=20, target_recall=0.9, k=7, max_oversample=2.5)
    assert any(p.candidates % 7 for p in result.tried)
    for value in [result.oversample, *(p.oversample for p in result.tried)]:
        assert repr(value) == str(np.float32(value)), value  # 2.4285715, not 2.4285714626312256
    assert repr(tuned.info.oversample) == str(np.float32(tuned.info.oversample))


def test_explain_abbreviates_the_query_vector(db):
    col = db.create_collection("wide", model="label", dims=64, compression="halfvec")
    rng = np.random.default_rng(1)
    col.add([str(i) for i in range(20)], [f"row {i}" for i in range(20)], embeddings=rng.normal(size=(20, 64)))
    shown = str(col.explain(vector=rng.normal(size=64), k=3))
    assert "64 values" in shown
    assert max(len(line) for line in shown.splitlines()) < 400, shown


def test_a_module_in_the_current_directory_is_not_imported_and_the_error_says_why(db, run, tmp_path, monkeypatch):
    _toy(db)
    (tmp_path / "myemb.py").write_text("def make():\n    raise AssertionError('never imported')\n")
    monkeypatch.chdir(tmp_path)
    out = run("search", "toy", "apple", "--embedder", "myemb:make", ok=False)
    assert "PYTHONPATH=." in out.output


def test_the_readme_async_example_leaves_the_users_collections_alone(db, db_url, monkeypatch, capsys):
    # it began with drop_collection("notes"): a user's own "notes" was gone
    mine = db.create_collection("notes", model="label", dims=4, compression="none")
    mine.add(["n1"], ["my own note"], embeddings=np.eye(4)[:1])
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    code = compile(readme_python("### Async (FastAPI)"), "README.md", "exec", dont_inherit=True)
    for _ in range(2):  # and it runs again, on what its first run made
        ns: dict[str, Any] = {}
        exec(code, ns)
        assert capsys.readouterr().out == "['cat', 'dog']\n1\n"
    assert db.collection("notes").search(vector=np.eye(4)[0], k=1).keys == ["n1"]


def test_the_readme_shows_how_rows_get_their_tenant(db_url, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    ns: dict[str, Any] = {}
    try:
        exec(compile(readme_python("### Tenants"), "README.md", "exec", dont_inherit=True), ns)
    finally:
        if "db" in ns:
            ns["db"].close()
    assert capsys.readouterr().out == "['t1', 't2']\n"


class _Picky:
    """A custom embedder that refuses one text as the README says: EmbeddingError with status 400."""

    model, dims = "picky", 4

    def embed(self, texts):
        if "forbidden" in texts:
            raise EmbeddingError("the provider refused a text", status=400)
        return np.array([[1.0, len(t), 0, 0] for t in texts])


def test_a_custom_embedder_refuses_a_text_into_quarantine(db):
    col = db.create_collection("picky", embedder=_Picky(), compression="none")
    col.add(["a", "b", "c"], ["fine", "forbidden", "also fine"], defer=True)
    done = col.backfill(batch_size=3)
    assert (done.embedded, done.quarantined) == (2, 1)
    assert col.quarantined() == [("b", "the provider refused a text")]
