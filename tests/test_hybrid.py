"""Hybrid search: BM25 and vector lists fused in SQL; the default beats both parts on Cranfield,
tune_hybrid stores a better one for Python and SQL searches alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import errors
from semsearch.cli import main
from semsearch.evaluate import ndcg
from semsearch.readers import CRANFIELD_GRADES, read_qrels
from tests.conftest import DATA


@pytest.fixture(scope="module")
def qrels():
    return read_qrels(DATA / "cranfield" / "cranqrel", grades=CRANFIELD_GRADES)


def _mean_ndcg(col, queries, qrels, vectors, **search):
    scores = []
    for i, (text, v) in enumerate(zip(queries, vectors, strict=True)):
        gains = qrels.get(str(i + 1), {})
        if any(g > 0 for g in gains.values()):
            if search.get("mode") == "vector":
                keys = col.search(vector=v, k=10).keys
            else:
                keys = col.search(text, vector=v if search.get("mode") == "hybrid" else None, k=10, **search).keys
            scores.append(ndcg(keys, gains, 10))
    return float(np.mean(scores))


def test_default_hybrid_beats_both_parts_and_tuned_beats_default(db, db_url, cranfield, qrels, tmp_path):
    docs, queries = cranfield
    col = db.create_collection("cran", model="local", dims=256, compression="bit")
    col.add_many({"key": k, "content": v} for k, v in docs.items())
    vectors = col.embedder.embed(queries)
    text = _mean_ndcg(col, queries, qrels, vectors, mode="text")
    vector = _mean_ndcg(col, queries, qrels, vectors, mode="vector")
    default = _mean_ndcg(col, queries, qrels, vectors, mode="hybrid")
    rrf = _mean_ndcg(col, queries, qrels, vectors, mode="hybrid", fusion="rrf")
    assert default >= max(text, vector) and default > rrf - 0.01

    q = tmp_path / "queries.txt"
    q.write_text("\n".join(queries) + "\n")
    out = CliRunner().invoke(
        main,
        ["--url", db_url, "tune", "cran", "--hybrid", "--queries", str(q),
         "--qrels", str(DATA / "cranfield" / "cranqrel"), "--cranfield-grades", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["best"]["ndcg_at_10"] >= result["default"]["ndcg_at_10"] >= max(text, vector) - 1e-9
    assert result["default"]["ndcg_at_10"] == pytest.approx(default)
    col = db.collection("cran")
    assert col.info.hybrid is not None and col.info.hybrid["fusion"] == result["best"]["fusion"]
    tuned = _mean_ndcg(col, queries, qrels, vectors, mode="hybrid")
    assert tuned == pytest.approx(result["best"]["ndcg_at_10"])
    # SQL's hybrid_search() uses the stored setting too
    with db.connection() as conn:
        sql_keys = [
            r[0]
            for r in conn.execute(
                "SELECT key FROM semsearch.hybrid_search('cran', %s, %s, 10)", [queries[0], vectors[0]]
            )
        ]
    assert sql_keys == col.search(queries[0], vector=vectors[0], k=10, mode="hybrid").keys


def test_fusion_arguments_are_checked(db):
    col = db.create_collection("h", dims=4, model="label", compression="none")
    col.add(["a", "b"], ["red apple", "green pear"], embeddings=np.eye(4)[:2])
    assert col.search("apple", vector=np.eye(4)[1], k=2, mode="hybrid", fusion="rrf", text_weight=5).keys[0] == "a"
    assert col.search("apple", vector=np.eye(4)[1], k=2, mode="hybrid", fusion="blend", text_weight=0).keys[0] == "b"
    for bad in ({"fusion": "max"}, {"vector_weight": -1}, {"text_weight": True}):
        with pytest.raises(errors.InvalidInputError):
            col.search("apple", vector=np.eye(4)[0], mode="hybrid", **bad)
    with pytest.raises(errors.InvalidInputError, match="mode='hybrid'"):
        col.search("apple", mode="text", fusion="rrf")
    with db.connection() as conn, pytest.raises(Exception, match="expected fusion 'rrf' or 'blend'"):
        conn.execute("SELECT * FROM semsearch.hybrid_search('h', 'apple', '[1,0,0,0]', 2, fusion => 'max')")


def test_hybrid_scores_carry_no_float32_noise(db):
    """The default weights 0.3/0.7 were reals: a blend score read 0.30000001192092896."""
    col = db.create_collection("toy", model="label", dims=4, compression="none")
    col.add(["a", "b"], ["red apple", "green pear"], embeddings=np.eye(4)[:2])
    assert [h.score for h in col.search("apple", vector=np.eye(4)[1], k=2, mode="hybrid").hits] == [0.7, 0.3]
