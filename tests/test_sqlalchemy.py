"""semsearch.sqlalchemy: a mapped class kept searchable through session events, on a real Postgres."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import sql as psql
from sqlalchemy import Engine, ForeignKey, String, cast, create_engine, delete, event, insert, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import semsearch
from semsearch import Splitter
from semsearch import sqlalchemy as ss
from semsearch.embeddings.local import LocalEmbedder
from semsearch.errors import ConfigurationError


class Base(DeclarativeBase):
    pass


class Article(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(default="")
    lang: Mapped[str] = mapped_column(String(5), default="en")
    account: Mapped[str | None] = mapped_column(default=None)
    views: Mapped[int] = mapped_column(default=0)  # not indexed


class Manual(Base):
    __tablename__ = "manuals"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(default="")


class Pair(Base):
    __tablename__ = "pairs"
    a: Mapped[int] = mapped_column(primary_key=True)
    b: Mapped[int] = mapped_column(ForeignKey("articles.id"), primary_key=True)


class Counting:
    """The local model (64 dims), counting the texts it is asked to embed; ``down`` makes it raise."""

    model, dims = "wordllama-l2-supercat", 64

    def __init__(self) -> None:
        self.inner = LocalEmbedder(dims=64)
        self.texts: list[str] = []
        self.down = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.down:
            raise ConnectionError("embedding service unreachable")
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(ss.engine_url(db_url))
    Base.metadata.create_all(eng)
    yield eng
    ss.close()  # semsearch's pools to this database, before db_url drops it
    eng.dispose()


@pytest.fixture
def embedder(engine: Engine, caplog: pytest.LogCaptureFixture) -> Iterator[Counting]:
    """Article registered with a counting embedder; fails the test if indexing logged a warning it did not expect."""
    counting = Counting()
    ss.register(Article, text=("title", "body"), metadata=("lang",), tenant="account", embedder=counting)
    caplog.set_level(logging.WARNING, logger="semsearch.sqlalchemy")
    try:
        yield counting
    finally:
        ss.unregister(Article)
    warnings = [r.getMessage() for r in caplog.records if r.name == "semsearch.sqlalchemy"]
    assert not warnings, warnings


def collection(engine: Engine) -> semsearch.Collection:
    return ss.registration_for(Article).collection(engine)


def _add(session: Session, *titles: str, **fields: Any) -> list[Article]:
    rows = [Article(title=t, **fields) for t in titles]
    session.add_all(rows)
    return rows


# --- sync on commit ----------------------------------------------------------------


def test_committed_rows_are_searchable_rolled_back_ones_never(engine: Engine, embedder: Counting) -> None:
    with Session(engine) as session:
        (tea,) = _add(session, "Brewing green tea")
        session.flush()
        assert collection(engine).count() == 0  # nothing is written inside the app's transaction
        session.commit()
        assert collection(engine).search("a cup of tea", k=1).keys == [str(tea.id)]

        _add(session, "Rolled back row")
        session.flush()
        session.rollback()
        (bike,) = _add(session, "Fixing a flat tire")
        with session.begin_nested():
            _add(session, "Inner savepoint, rolled back")
            session.flush()
            session.get_nested_transaction().rollback()  # type: ignore[union-attr]
        session.commit()
        keys = collection(engine).search("anything", k=10).keys
        assert sorted(keys) == sorted([str(tea.id), str(bike.id)])


def test_updates_reembed_only_indexed_changes_and_deletes_remove(engine: Engine, embedder: Counting) -> None:
    with Session(engine) as session:
        rows = _add(session, "Brewing green tea", "Sourdough starter", "Fixing a flat tire", body="notes")
        session.commit()
        assert len(embedder.texts) == 3  # one batch on commit

        embedder.texts.clear()
        rows[0].views = 41  # not indexed: nothing to do
        session.commit()
        rows[0].lang = "es"  # metadata: rewritten, not re-embedded (same text)
        session.commit()
        assert embedder.texts == []
        assert collection(engine).search("tea", k=3, where={"lang": "es"}).keys == [str(rows[0].id)]
        embedder.texts.clear()  # the query's embedding

        rows[1].body = "Feed the rye starter every morning"
        session.commit()
        assert embedder.texts == ["Sourdough starter\n\nFeed the rye starter every morning"]
        hit = collection(engine).search("rye starter", k=1, mode="text")[0]
        assert hit.key == str(rows[1].id)

        session.delete(rows[2])
        session.commit()
        assert collection(engine).count() == 2

        rows[0].title = ""
        rows[0].body = ""  # empty text: not indexed any more
        session.commit()
        assert collection(engine).search("x", k=5).keys == [str(rows[1].id)]


def test_indexing_failures_never_break_the_commit_and_backfill_repairs(
    engine: Engine, embedder: Counting, caplog: pytest.LogCaptureFixture
) -> None:
    col = collection(engine)
    embedder.down = True
    with Session(engine) as session:
        (tea,) = _add(session, "Brewing green tea")
        session.commit()  # the embedder raised in after_commit: the commit stands
        assert session.scalar(select(Article.title).where(Article.id == tea.id)) == "Brewing green tea"
    assert col.pending() == 1 and col.count() == 1
    assert "could not embed 1 row(s) of articles now; stored pending" in caplog.text
    assert "embedding service unreachable" in caplog.text
    embedder.down = False
    assert col.backfill().embedded == 1
    assert col.pending() == 0 and col.search("hot drink", k=1).keys == [str(tea.id)]

    # semsearch's database failing: logged, the app's commit kept, reindex repairs it
    caplog.clear()
    reg = ss.registration_for(Article)
    closed = semsearch.connect(col.db.url)
    closed.close()
    reg.db = closed
    with Session(engine) as session:
        (bike,) = _add(session, "Fixing a flat tire")
        session.commit()
        assert "could not index 1" in caplog.text and "reindex(session, Article) repairs it" in caplog.text
        reg.db = None
        report = ss.reindex(session, Article)
    assert (report.added.inserted, report.added.unchanged, report.removed) == (1, 1, 0)
    assert col.search("bicycle repair", k=1).keys == [str(bike.id)]
    caplog.clear()


def test_bulk_orm_statements_are_followed_and_reindex_repairs_core_writes(engine: Engine, embedder: Counting) -> None:
    col = collection(engine)
    with Session(engine) as session:
        rows = _add(session, "Brewing green tea", "Sourdough starter", "Fixing a flat tire", "Growing tomatoes")
        session.commit()
        ids = [r.id for r in rows]
        session.execute(update(Article).where(Article.id == ids[0]).values(body="Oolong and sencha"))
        session.execute(delete(Article).where(Article.title.like("Sourdough%")))
        session.commit()
        assert col.search("oolong", k=1, mode="text").keys == [str(ids[0])]
        assert sorted(col.search("x", k=10).keys) == sorted(map(str, [ids[0], ids[2], ids[3]]))
        session.execute(update(Article), [{"id": ids[2], "title": "Patching an inner tube"}])  # bulk by pk
        session.commit()
        assert col.search("inner tube", k=1, mode="text").keys == [str(ids[2])]
        seen = _statements(engine)
        session.execute(update(Article).values(views=Article.views + 1))  # not indexed: nothing noted, read or written
        session.execute(update(Article), [{"id": ids[2], "views": 7}])
        session.commit()
        assert [s.split()[0] for s in seen] == ["UPDATE", "UPDATE"]  # no read before, no read-back after
        session.execute(delete(Article).where(Article.id == ids[3]))
        session.rollback()  # a rolled-back bulk delete changes nothing
        assert col.count() == 3
        session.query(Article).filter(Article.id == ids[2]).delete()  # the legacy Query API: the same statement
        session.commit()
        assert sorted(col.search("x", k=10).keys) == sorted(map(str, [ids[0], ids[3]]))
        session.execute(delete(Article))
        session.commit()
        assert col.count() == 0

        # Core and raw SQL send no ORM events: reindex repairs
        session.execute(insert(Article.__table__), [{"title": f"Note {i}", "body": f"text {i}"} for i in range(5)])
        session.commit()
        assert col.count() == 0
        report = ss.reindex(session, Article, batch_size=2)
        assert (report.added.inserted, report.removed) == (5, 0) and col.count() == 5
        first = session.scalars(select(Article.id).order_by(Article.id)).first()
        with engine.begin() as conn:
            conn.execute(text("UPDATE articles SET body = 'changed behind its back' WHERE id = :i"), {"i": first})
            conn.execute(text("DELETE FROM articles WHERE id > :i"), {"i": first + 2})
        embedder.texts.clear()
        report = ss.reindex(session, Article)
        a = report.added
        assert (a.inserted, a.updated, a.unchanged, report.removed) == (0, 1, 2, 2)
        assert embedder.texts == ["Note 0\n\nchanged behind its back"]  # only the changed text is embedded
        assert sorted(col.search("x", k=10).keys) == [str(first + i) for i in range(3)]


def test_a_session_joined_to_an_outer_transaction_is_indexed_from_it(engine: Engine, embedder: Counting) -> None:
    # the test-suite pattern: the session commits a savepoint of a transaction the test rolls back
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
            (tea,) = _add(session, "Brewing green tea")
            session.commit()  # read back through the same connection: the row is there
            assert collection(engine).search("tea", k=1).keys == [str(tea.id)]
        outer.rollback()  # semsearch's write was its own transaction: the key stays, reindex removes it
    with Session(engine) as session:
        assert ss.reindex(session, Article).removed == 1 and collection(engine).count() == 0


# --- searching ---------------------------------------------------------------------


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_search_returns_instances_in_score_order_in_one_query(engine: Engine, embedder: Counting) -> None:
    with Session(engine) as session:
        _add(session, "Brewing green tea", "How to steep black tea", "Sourdough starter", "Fixing a flat tire")
        _add(session, "Té verde caliente", "Pan de masa madre", lang="es", account="acme")
        session.commit()
        session.expunge_all()
        seen = _statements(engine)
        found = ss.search(session, Article, "how do I make tea?", k=3)
        assert [len(seen)] == [1]  # the instances come in one query (the search itself runs on semsearch's pool)
        assert found[0].title in ("Brewing green tea", "How to steep black tea")
        scores = [a.semsearch_score for a in found]
        assert len(found) == 3 and scores == sorted(scores, reverse=True)
        assert [str(a.id) for a in found] == collection(engine).search("how do I make tea?", k=3).keys

        spanish = ss.search(session, Article, "bebida caliente", k=5, where={"lang": "es"})
        assert {a.lang for a in spanish} == {"es"} and len(spanish) == 2
        assert [a.title for a in ss.search(session, Article, "bread", k=5, tenant="acme", mode="text")] == []
        assert ss.search(session, Article, "masa madre", k=1, tenant="acme", mode="hybrid")[0].title == (
            "Pan de masa madre"
        )
        # a row deleted behind semsearch's back is skipped, the order kept
        session.execute(text("DELETE FROM articles WHERE id = :i"), {"i": found[0].id})
        rest = ss.search(session, Article, "how do I make tea?", k=3)
        assert [a.id for a in rest] == [a.id for a in found[1:]]


def test_search_function_joins_hits_to_the_table_in_one_statement(engine: Engine, embedder: Counting) -> None:
    with Session(engine) as session:
        _add(session, "Brewing green tea", "Sourdough starter", "Fixing a flat tire")
        _add(session, "Té verde caliente", lang="es", account="acme")
        session.commit()
        q = LocalEmbedder(dims=64).embed(["a cup of tea"])[0]
        hits = ss.search_function("articles", q, 3)
        stmt = (
            select(Article, hits.c.score)
            .join(hits, hits.c.key == cast(Article.id, String))
            .order_by(hits.c.score.desc())
        )
        seen = _statements(engine)
        rows = session.execute(stmt).all()
        assert len(seen) == 1 and "semsearch.search(" in seen[0]
        expected = collection(engine).search(vector=q, k=3)
        assert [str(a.id) for a, _ in rows] == expected.keys
        assert [s for _, s in rows] == pytest.approx([h.score for h in expected])

        es = ss.search_function("articles", q, 3, where={"lang": {"$in": ["es"]}}, tenant="acme", exact=True)
        got = session.execute(select(Article.title, es.c.metadata).join(es, es.c.key == cast(Article.id, String)))
        assert got.all() == [("Té verde caliente", {"lang": "es"})]


# --- registration ------------------------------------------------------------------


# --- documents split into passages ---------------------------------------------------

PUMP = "\n\n".join([
    "The pump must be primed before first use. Fill the housing with water and close the valve.",
    "Cleaning the filter takes ten minutes. Remove the cover and rinse the mesh in warm water.",
    "Warranty claims need the receipt and the serial number printed under the base.",
])  # fmt: skip
HEATER = "The heater warms the tank to 60 degrees.\n\nDescale it every six months with citric acid."


def _passage_keys(col: semsearch.Collection) -> list[str]:
    with col.db.connection() as conn:
        return sorted(r[0] for r in conn.execute(psql.SQL("SELECT key FROM {}").format(col.layout.table)))


def test_a_class_registered_with_passages_is_searched_as_documents(engine: Engine, caplog: Any) -> None:
    counting = Counting()
    ss.register(Manual, text="body", embedder=counting, passages=Splitter(max_tokens=24, overlap=6))
    caplog.set_level(logging.WARNING, logger="semsearch.sqlalchemy")
    try:
        with Session(engine) as session:
            pump, heater = Manual(body=PUMP), Manual(body=HEATER)
            session.add_all([pump, heater])
            session.commit()
            col = ss.registration_for(Manual).collection(engine)
            keys = _passage_keys(col)  # each row's passages, keyed <pk>#<seq>
            assert col.count() == 2 and len(keys) == len(counting.texts) > 2
            assert {k.split("#")[0] for k in keys} == {str(pump.id), str(heater.id)}

            found = ss.search(session, Manual, "how do I clean the filter", k=2)
            assert found[0] is pump and len(found) == 2  # each instance once, not once per passage
            best = pump.semsearch_passage
            assert best.seq == 1 and PUMP[best.start : best.end] == best.text and "filter" in best.text
            assert pump.semsearch_score == best.score
            (hit,) = ss.search(session, Manual, "receipt", k=1, mode="text")
            assert hit is pump and "<b>receipt</b>" in hit.semsearch_snippet

            counting.texts.clear()
            pump.body = PUMP.replace("ten minutes", "five minutes")  # one paragraph changes
            session.commit()
            assert len(counting.texts) == 1 and "five minutes" in counting.texts[0]  # only its passage
            assert col.get([str(pump.id)])[0].content == pump.body

            session.delete(heater)
            session.commit()
            assert {k.split("#")[0] for k in _passage_keys(col)} == {str(pump.id)}  # its passages went

            # a row deleted behind the ORM's back: reindex removes the document, every passage of it
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM manuals"))
            report = ss.reindex(session, Manual)
            assert report.removed == 1 and _passage_keys(col) == [] and col.count() == 0
    finally:
        ss.unregister(Manual)
    assert not [r.getMessage() for r in caplog.records if r.name == "semsearch.sqlalchemy"]


def test_passages_need_a_collection_made_with_them(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="expected passages=True, a Splitter"):
        ss.register(Manual, text="body", passages="yes")
    ss.register(Manual, text="body", embedder=Counting())  # a collection of whole rows first
    try:
        ss.registration_for(Manual).collection(engine)
    finally:
        ss.unregister(Manual)
    ss.register(Manual, text="body", embedder=Counting(), passages=True)
    try:
        with pytest.raises(ConfigurationError, match="made without passages=: drop it"):
            ss.registration_for(Manual).collection(engine)
    finally:
        ss.unregister(Manual)


def test_register_refuses_what_it_cannot_index(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="expected a mapped class"):
        ss.register(Counting, text="model")
    with pytest.raises(ConfigurationError, match="one-column primary key, got 2"):
        ss.register(Pair, text="a")
    with pytest.raises(ConfigurationError, match="expected text to name attributes of Article, got 'nope'"):
        ss.register(Article, text=("title", "nope"))
    with pytest.raises(ConfigurationError, match="expected metadata as a function or a tuple"):
        ss.register(Article, text="title", metadata="lang")
    with pytest.raises(ConfigurationError, match="registered with semsearch"):
        ss.registration_for(Article)
    ss.register(Article, text=lambda a: a.title, collection="Docs")
    try:
        with pytest.raises(ConfigurationError, match="registered once"):
            ss.register(Article, text="title")
        assert ss.registration_for(Article(title="x")).collection_name == "docs"
    finally:
        ss.unregister(Article)


def test_the_readme_example_runs(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### SQLAlchemy (and Flask-SQLAlchemy)") :]
    code = section[section.index("```python\n") + 10 : section.index("\n```\n")]
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    before = set(ss.registrations())
    ns: dict[str, Any] = {}
    try:
        exec(compile(code, "README.md", "exec", dont_inherit=True), ns)  # the README example, as a user runs it
    finally:
        for reg in set(ss.registrations()) - before:
            ss.unregister(reg.model)
        if "db" in ns:
            ns["db"].close()
        if "engine" in ns:
            ns["engine"].dispose()
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d\.\d{3} Brewing green tea", lines[0])
    assert lines[2].startswith("[('Brewing green tea', 0.")  # the one English row, from the SQL join
