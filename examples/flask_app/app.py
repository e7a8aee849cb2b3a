"""A search page over Python standard library docstrings kept as a Flask-SQLAlchemy model.

``Article`` is an ordinary Flask-SQLAlchemy model registered with
:mod:`semsearch.sqlalchemy`: every committed insert, update and delete is indexed
after its commit, and a search returns ``Article`` instances. Run it (the embedded
Postgres and the local model need no setup)::

    flask --app examples/flask_app/app.py run

On its first search it creates the table and loads a small corpus into it if it is
empty. See README.md beside this file.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, redirect, render_template, request, url_for
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.wrappers import Response

from semsearch import CollectionInfo
from semsearch.demo import stdlib_corpus
from semsearch.errors import SemsearchError
from semsearch.flask import SemSearch
from semsearch.server import resolve_url
from semsearch.sqlalchemy import engine_url, register, registration_for
from semsearch.sqlalchemy import search as semantic_search

MODES = ("vector", "text", "hybrid")
#: what a hit's score is in each mode (semsearch.Hit documents the same)
SCORE_MEANING = {
    "vector": "cosine similarity of the full vectors",
    "text": "BM25 over the collection's statistics",
    "hybrid": "fused: BM25 and cosine, by the collection's fusion (below)",
}
#: how hybrid search fuses its lists until tune_hybrid stores another way (README, "Text and hybrid")
DEFAULT_FUSION = {"fusion": "blend", "vector_weight": 0.3, "text_weight": 0.7}
FUSION_MEANING = {"blend": "a weighted blend of scores scaled to [0, 1]", "rrf": "weighted reciprocal rank"}


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
semsearch = SemSearch()


class Article(db.Model):  # type: ignore[name-defined,misc]
    """A docstring (or anything a user adds on the page): what the page searches."""

    # a name of its own: the README's examples make an "articles" table in the same default database
    __tablename__ = "flask_example_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    module: Mapped[str] = mapped_column(String(100), default="")


# kept in the collection "flask_example_articles" (named after the table) of the app's semsearch
# database, after each commit;
# halfvec, as in `semsearch demo`: measured best recall and latency on this corpus
register(
    Article,
    text=("title", "body"),
    metadata=("module",),
    db=lambda: semsearch.db,
    model="local",
    dims=256,
    compression="halfvec",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The example app; ``config`` overrides ``SEMSEARCH_*``, ``SQLALCHEMY_*`` and ``SEARCH_*`` settings.

    The model's table lives in semsearch's database unless ``SQLALCHEMY_DATABASE_URI`` says otherwise.

    Example::

        app = create_app({"SEMSEARCH_DATABASE_URL": "postgresql://localhost/app", "SEARCH_CORPUS_ROWS": 300})
    """
    app = Flask(__name__)
    # small enough to load in a few seconds on the first search, big enough to be worth searching
    app.config.update(SEARCH_CORPUS_ROWS=1000)
    app.config.update(config or {})
    if "SQLALCHEMY_DATABASE_URI" not in app.config:
        url, _ = resolve_url(app.config.get("SEMSEARCH_DATABASE_URL"))
        app.config["SQLALCHEMY_DATABASE_URI"] = engine_url(url).render_as_string(hide_password=False)
    semsearch.init_app(app)
    db.init_app(app)
    ready = threading.Event()
    loading = threading.Lock()

    def ensure_corpus() -> None:
        """The table and its corpus, made on first use (once, even with concurrent requests)."""
        if not ready.is_set():
            with loading:
                if not ready.is_set():
                    _load_corpus(app.config["SEARCH_CORPUS_ROWS"])
                    ready.set()

    @app.get("/")
    def search() -> tuple[str, int]:
        query = request.args.get("q", "").strip()
        mode = request.args.get("mode", "hybrid")
        k_text = request.args.get("k", "10")
        exact = request.args.get("exact") == "on"
        page: dict[str, Any] = {"query": query, "mode": mode, "k": k_text, "exact": exact, "modes": MODES}
        page["score_meaning"] = SCORE_MEANING.get(mode, "")
        page["notice"] = request.args.get("notice", "")
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
            ensure_corpus()
            started = time.perf_counter()
            # the time a user waits: embedding the query, the search, and loading the articles (one query)
            articles = semantic_search(db.session, Article, query, k=k, mode=mode, exact=exact)
            page["took_ms"] = (time.perf_counter() - started) * 1000
            col = registration_for(Article).collection()
        except SemsearchError as exc:
            # library errors say what was expected and what arrived: good enough to show as is
            return render_template("search.html", error=str(exc), **page), 400
        page.update(result=articles, k=k, plan=describe_plan(col.info, mode=mode, k=k, exact=exact), rows=col.count())
        return render_template("search.html", **page), 200

    @app.post("/articles")
    def add_article() -> Response | tuple[str, int]:
        title, body = request.form.get("title", "").strip(), request.form.get("body", "").strip()
        if not title or "\x00" in title + body:
            page = {"query": "", "mode": "hybrid", "k": "10", "exact": False, "modes": MODES}
            return render_template("search.html", error="expected a title (and no NUL characters)", **page), 400
        ensure_corpus()
        article = Article(title=title, body=body, module="added on the page")
        db.session.add(article)
        db.session.commit()  # semsearch.sqlalchemy indexes it once this commit is done
        return redirect(url_for("search", q=title, notice=f"added article {article.id}"))

    @app.post("/articles/<int:article_id>/delete")
    def delete_article(article_id: int) -> Response:
        article = db.session.get(Article, article_id)
        if article is not None:
            db.session.delete(article)
            db.session.commit()  # and removes it from the collection after this one
        back = {k: request.form[k] for k in ("q", "mode", "k") if request.form.get(k)}
        return redirect(url_for("search", notice=f"deleted article {article_id}", **back))

    return app


def _load_corpus(rows: int) -> None:
    db.create_all()
    if not db.session.scalar(select(func.count()).select_from(Article)):
        records = stdlib_corpus(rows=rows)
        db.session.add_all(Article(title=r["key"], body=r["content"], module=r["metadata"]["module"]) for r in records)
        db.session.commit()  # indexed in one batch after the commit
    # load the model now, so that the first search's time is the search's and not the model's (~0.8 s)
    registration_for(Article).collection().embedder.embed(["warm up"])


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
        fusion = info.hybrid or DEFAULT_FUSION
        how = (
            f"{FUSION_MEANING[fusion['fusion']]} ({fusion['fusion']}: vector {fusion['vector_weight']:g}, "
            f"text {fusion['text_weight']:g})"
        )
        vector = f"hybrid: full-text top {wanted} + vector top {wanted} ({vector}), fused by {how}"
    plan["strategy"] = vector
    return plan


if __name__ == "__main__":
    create_app().run()
