"""A search page over the Python standard library's docstrings, with semsearch's Flask extension.

Run it (the embedded Postgres and the local model need no setup)::

    flask --app examples/flask_app/app.py run

On its first search it creates the collection and loads a small corpus into it
if it is empty. See README.md beside this file.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template, request

from semsearch import Collection, CollectionInfo
from semsearch.demo import stdlib_corpus
from semsearch.errors import CollectionNotFoundError, SemsearchError
from semsearch.flask import SemSearch

MODES = ("vector", "text", "hybrid")
#: what a hit's score is in each mode (semsearch.Hit documents the same)
SCORE_MEANING = {
    "vector": "cosine similarity of the full vectors",
    "text": "BM25 over the collection's statistics",
    "hybrid": "fused: BM25 and cosine, each scaled to [0, 1], weighted",
}

semsearch = SemSearch()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The example app; ``config`` overrides ``SEMSEARCH_*`` and ``SEARCH_*`` settings.

    Example::

        app = create_app({"SEMSEARCH_DATABASE_URL": "postgresql://localhost/app", "SEARCH_CORPUS_ROWS": 300})
    """
    app = Flask(__name__)
    app.config.update(
        SEARCH_COLLECTION="stdlib_example",
        # small enough to load in a few seconds on the first search, big enough to be worth searching
        SEARCH_CORPUS_ROWS=1000,
    )
    app.config.update(config or {})
    semsearch.init_app(app)
    ready = threading.Event()
    loading = threading.Lock()

    def docs() -> Collection:
        """The collection, created and filled on first use (once, even with concurrent requests)."""
        if not ready.is_set():
            with loading:
                if not ready.is_set():
                    _ensure_corpus(app.config["SEARCH_COLLECTION"], app.config["SEARCH_CORPUS_ROWS"])
                    ready.set()
        return semsearch.collection(app.config["SEARCH_COLLECTION"])

    @app.get("/")
    def search() -> tuple[str, int]:
        query = request.args.get("q", "").strip()
        mode = request.args.get("mode", "hybrid")
        k_text = request.args.get("k", "10")
        exact = request.args.get("exact") == "on"
        page: dict[str, Any] = {"query": query, "mode": mode, "k": k_text, "exact": exact, "modes": MODES}
        page["score_meaning"] = SCORE_MEANING.get(mode, "")
        if not query:
            return render_template("search.html", **page), 200
        try:
            k = int(k_text)
        except ValueError:
            return render_template("search.html", error=f"expected k as a whole number, got {k_text!r}", **page), 400
        if "\x00" in query:
            # Postgres text cannot hold NUL; a hand-edited URL (%00) should get an answer, not a 500
            return render_template("search.html", error="expected a query without NUL characters", **page), 400
        try:
            col = docs()
            started = time.perf_counter()
            # the time a user waits: embedding the query and the one SQL round trip
            result = col.search(query, k=k, mode=mode, exact=exact)
            page["took_ms"] = (time.perf_counter() - started) * 1000
        except SemsearchError as exc:
            # library errors say what was expected and what arrived: good enough to show as is
            return render_template("search.html", error=str(exc), **page), 400
        page.update(result=result, plan=describe_plan(col.info, mode=mode, k=k, exact=exact), rows=col.count())
        return render_template("search.html", **page), 200

    return app


def _ensure_corpus(name: str, rows: int) -> None:
    try:
        col = semsearch.collection(name)
    except CollectionNotFoundError:
        # halfvec, as in `semsearch demo`: measured best recall and latency on this corpus
        col = semsearch.db.create_collection(name, model="local", dims=256, compression="halfvec")
    if col.count() == 0:
        col.add_many(stdlib_corpus(rows=rows))
    # load the model now, so that the first search's time is the search's and not the model's (~0.8 s)
    col.embedder.embed(["warm up"])


def describe_plan(info: CollectionInfo, *, mode: str, k: int, exact: bool) -> dict[str, str]:
    """How semsearch answers a search of ``info``'s collection, for people.

    Example::

        describe_plan(col.info, mode="vector", k=10, exact=False)["strategy"]
        # 'two-stage: HNSW over the halfvec copy, 20 candidates, exact rescore on the full vectors'
    """
    plan = {"compression": info.compression, "oversample": f"{info.oversample:g}"}
    if mode == "text":
        plan["strategy"] = "full-text: Postgres text search ranking, no vectors"
        return plan
    # hybrid_search asks each side for max(4k, 40) rows before fusing them
    wanted = k if mode == "vector" else max(4 * k, 40)
    if exact and mode == "vector":
        vector = "exact: every full vector compared"
    elif info.compression == "none":
        vector = f"one-stage: HNSW on the full vectors, {wanted} rows"
    else:
        candidates = math.ceil(wanted * info.oversample)
        vector = (
            f"two-stage: HNSW over the {info.compression} copy, {candidates} candidates, "
            "exact rescore on the full vectors"
        )
    if mode == "hybrid":
        vector = f"hybrid: full-text top {wanted} + vector top {wanted} ({vector}), fused by reciprocal rank"
    plan["strategy"] = vector
    return plan


if __name__ == "__main__":
    create_app().run()
