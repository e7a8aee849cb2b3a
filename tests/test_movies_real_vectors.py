"""Real OpenAI text-embedding-3-small vectors through the database's compressed copies."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import sql

from semsearch.plans import Plan


def test_database_mrl256_equals_the_apis_own_256_dim_vectors(db, movies):
    titles, full, short = movies
    col = db.create_collection("movies", dims=1536, compression="mrl:256", model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    expr = col.layout.coarse_expression(sql.Identifier("embedding"))
    with db.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT key, ({})::vector FROM {} ORDER BY key").format(expr, col.layout.table)
        ).fetchall()
    got = {k: v.to_numpy().astype(np.float64) for k, v in rows}
    assert sorted(got) == titles
    for title, api in zip(titles, short, strict=False):
        mine = got[title]
        cos = float(mine @ api / (np.linalg.norm(mine) * np.linalg.norm(api)))
        assert cos > 0.999, (title, cos)


@pytest.mark.parametrize("compression", ["bit", "mrl:256"])
def test_two_stage_top5_equals_exact_top5_for_every_title(db, movies, compression):
    # with the default oversampling; measured on these titles, the exact top 5 sits
    # within the first 23 (bit) / 31 (mrl:256) candidates of the compressed ranking
    titles, full, _ = movies
    col = db.create_collection("movies", dims=1536, compression=compression, model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    for title, vec in zip(titles, full, strict=False):
        exact = col.search(vector=vec, k=5, exact=True)
        ann = col.search(vector=vec, k=5)
        assert ann.keys == exact.keys, title
        assert ann.keys[0] == title
        assert ann[0].score == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose([h.score for h in ann], [h.score for h in exact], atol=1e-9)


def test_scores_are_cosine_similarity_of_the_full_vectors(db, movies):
    titles, full, _ = movies
    col = db.create_collection("movies", dims=1536, compression="bit", model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    unit = full / np.linalg.norm(full, axis=1, keepdims=True)
    want = unit @ unit[0]
    got = col.search(vector=full[0], k=10)
    for hit in got:
        assert hit.score == pytest.approx(want[titles.index(hit.key)], abs=1e-5)


def test_plan_parse_matches_mrl_rule():
    assert str(Plan.parse("mrl:256", dims=1536)) == "mrl:256"


@pytest.mark.parametrize("compression", ["bit", "mrl:256"])
def test_without_oversampling_the_compressed_pass_alone_misses_rows(db, movies, compression):
    """The agreement above is earned by oversample + rescore, not by an easy data set."""
    titles, full, _ = movies
    col = db.create_collection("movies", dims=1536, compression=compression, model="text-embedding-3-small")
    col.add(keys=titles, contents=titles, embeddings=full)
    misses = sum(
        col.search(vector=v, k=5, oversample=1).keys != col.search(vector=v, k=5, exact=True).keys for v in full
    )
    assert misses >= 10
