"""The Flask extension, the example page (a Flask-SQLAlchemy model kept searchable by semsearch.sqlalchemy;
test client and a real headless Chromium) and `flask semsearch`."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

import semsearch
from semsearch.flask import SemSearch
from tests.examples import load_example, readme_python

ROWS = 500  # enough for a real top result, small enough to load in about a second
QUERY = "serialize an object to JSON"
SOURDOUGH = "Feed the rye starter twice a day with equal weights of flour and water; it doubles in six hours."
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: the example's table and collection: a name no README example uses, in the same default database
TABLE = "flask_example_articles"


def _example() -> ModuleType:
    return load_example("flask_app/app.py", "semsearch_flask_example")


@pytest.fixture
def example_app(db_url: str) -> Iterator[Flask]:
    example = _example()
    app = example.create_app({"SEMSEARCH_DATABASE_URL": db_url, "SEARCH_CORPUS_ROWS": ROWS, "TESTING": True})
    yield app
    # before the db_url fixture drops the database, which open connections would block
    example.semsearch.close(app)
    with app.app_context():
        example.db.session.remove()
        example.db.engine.dispose()


@pytest.fixture
def notes(db: semsearch.Database) -> str:
    col = db.create_collection("notes", model="local", dims=64, compression="halfvec")
    col.add(["cat", "dog", "tax"], ["cats purr and nap", "dogs bark at the mail", "file the tax return by april"])
    return "notes"


def _stats(app: Flask) -> dict[str, int]:
    return app.extensions["semsearch"].database.pool.get_stats()


def _keys(html: str) -> list[str]:
    """The titles of the articles a page lists, in its order."""
    return re.findall(r'<span class="key">([^<]*)</span>', html)


def _titles(app: Flask, query: str, **options: object) -> list[str]:
    from semsearch.sqlalchemy import search

    example = _example()
    with app.app_context():
        return [a.title for a in search(example.db.session, example.Article, query, **options)]  # type: ignore[arg-type]


# --- the extension -----------------------------------------------------------------


def test_extension_lends_one_connection_per_request_and_returns_it(db_url: str, notes: str) -> None:
    app = Flask("ext_test")
    app.config.update(SEMSEARCH_DATABASE_URL=db_url, SEMSEARCH_MAX_CONNECTIONS=2, TESTING=True)
    ext = SemSearch(app)
    seen: list[int] = []

    @app.get("/s")
    def search() -> dict[str, object]:
        col = ext.collection(notes)
        first = col.search("a cat purring", k=1)
        second = col.search("a barking dog", k=1)
        with ext.db.connection() as a, ext.db.connection() as b:
            seen.append(id(a))
            same = a is b
        stats = _stats(app)
        return {
            "keys": [first[0].key, second[0].key],
            "same": same,
            "held": stats["pool_size"] - stats["pool_available"],
        }

    @app.get("/boom")
    def boom() -> str:
        with ext.db.connection():
            raise RuntimeError("boom")

    assert app.extensions["semsearch"].database is None  # lazy: no pool before the first use
    client = app.test_client()
    # more requests than connections: each one must give its connection back
    for _ in range(5):
        got = client.get("/s").get_json()
        assert got["keys"] == ["cat", "dog"]
        assert got["same"] is True
        assert got["held"] == 1  # the request held exactly one connection for both searches
        stats = _stats(app)
        assert stats["pool_available"] == stats["pool_size"]
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/boom")
    stats = _stats(app)
    assert stats["pool_available"] == stats["pool_size"] <= 2

    # outside an app context SemSearch(app) still works, borrowing per call
    assert ext.collection(notes).count() == 3
    pool = ext.db.pool
    ext.close()
    assert app.extensions["semsearch"].database is None and pool.closed
    with app.app_context():
        assert ext.db.pool is not pool  # reopened on the next use
        assert ext.collection(notes).count() == 3
        ext.close()  # closed mid-context: the next use borrows from a new pool, not the closed one
        assert ext.collection(notes).count() == 3
    stats = _stats(app)
    assert stats["pool_available"] == stats["pool_size"]
    ext.close(app)


def test_extension_errors(db_url: str) -> None:
    ext = SemSearch()
    with pytest.raises(RuntimeError, match="expected an app context"):
        _ = ext.db
    app = Flask("twice")
    ext.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        ext.init_app(app)
    with Flask("other").app_context(), pytest.raises(RuntimeError, match=r"init_app\(app\)"):
        _ = ext.db


def test_import_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)  # what an environment without Flask looks like
    monkeypatch.delitem(sys.modules, "semsearch.flask")
    with pytest.raises(ImportError, match=r"pip install 'semsearch\[flask\]'"):
        importlib.import_module("semsearch.flask")


# --- the example page through the test client ------------------------------------


def test_page_modes_plan_timing_and_errors(example_app: Flask) -> None:
    client = example_app.test_client()
    empty = client.get("/")
    assert empty.status_code == 200
    assert 'id="q"' in empty.text and 'id="results"' not in empty.text and 'id="error"' not in empty.text
    assert example_app.extensions["semsearch"].database is None  # the form alone touches no database

    hybrid = client.get("/", query_string={"q": QUERY, "mode": "hybrid"})
    assert hybrid.status_code == 200
    with example_app.app_context():
        col = _example().semsearch.collection(TABLE)
        assert col.count() == ROWS  # loaded once, on the first search, and indexed after its commit
    expected = _titles(example_app, QUERY, k=10, mode="hybrid")
    assert _keys(hybrid.text) == expected
    assert expected[0] == "json.dumps"
    assert re.search(r'<span class="score"[^>]*>0\.\d{4}</span>', hybrid.text)
    assert re.search(r"10 of 10 results from 500 rows in \d+\.\d ms", hybrid.text)
    # untuned, hybrid search blends (the page said "reciprocal rank" while the hits were a blend)
    assert "fused by a weighted blend of scores scaled to [0, 1] (blend: vector 0.3, text 0.7)" in hybrid.text
    assert ">halfvec<" in hybrid.text

    strategies = {}
    for mode, exact in (("vector", ""), ("vector", "on"), ("text", "")):
        page = client.get("/", query_string={"q": QUERY, "mode": mode, "k": 5, "exact": exact})
        assert page.status_code == 200
        assert len(_keys(page.text)) == 5 and "json.dumps" in _keys(page.text)
        strategies[mode, exact] = re.search(r'id="plan-strategy">([^<]*)<', page.text).group(1)  # type: ignore[union-attr]
    assert strategies["vector", ""].startswith("two-stage: HNSW over the halfvec copy, 10 candidates")
    assert strategies["vector", "on"].startswith("exact")
    assert strategies["text", ""].startswith("full-text")

    for args, message in (
        ({"q": "x", "k": "abc"}, "expected k as a whole number, got &#39;abc&#39;"),
        ({"q": "x", "k": "0"}, "expected k between 1 and 10000"),
        ({"q": "x", "mode": "fuzzy"}, "expected mode &#39;vector&#39;, &#39;text&#39; or &#39;hybrid&#39;"),
        ({"q": "x\x00y", "mode": "text"}, "expected a query without NUL characters"),
    ):
        bad = client.get("/", query_string=args)
        assert bad.status_code == 400, args
        assert message in bad.text and 'id="results"' not in bad.text
    stats = _stats(example_app)
    assert stats["pool_available"] == stats["pool_size"]  # every request gave its connection back


# --- flask semsearch ... ------------------------------------------------------------


def test_the_page_answers_after_the_readme_sqlalchemy_example_ran_in_the_same_database(
    example_app: Flask, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # a newcomer's order: the README first, then the example, both on the default database;
    # the page answered 500 ("column articles.module does not exist") when both used "articles"
    import semsearch.sqlalchemy as ss

    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    before = set(ss.registrations())
    ns: dict[str, Any] = {}
    try:
        exec(
            compile(readme_python("### SQLAlchemy (and Flask-SQLAlchemy)"), "README.md", "exec", dont_inherit=True), ns
        )
    finally:
        for reg in set(ss.registrations()) - before:
            ss.unregister(reg.model)
        if "db" in ns:
            ns["db"].close()
        if "engine" in ns:
            ns["engine"].dispose()
    assert "Brewing green tea" in capsys.readouterr().out
    page = example_app.test_client().get("/", query_string={"q": QUERY, "mode": "vector"})
    assert page.status_code == 200, page.text
    assert _keys(page.text)[0] == "json.dumps"
    with semsearch.connect(db_url) as other:
        assert other.collection("articles").count() == 2  # the README's rows, untouched


def test_flask_semsearch_cli_uses_the_app_database(example_app: Flask) -> None:
    runner = example_app.test_cli_runner()
    empty = runner.invoke(args=["semsearch", "list"])
    assert empty.exit_code == 0 and "no collections" in empty.output
    assert example_app.test_client().get("/", query_string={"q": QUERY}).status_code == 200
    listed = runner.invoke(args=["semsearch", "list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"{TABLE}\s+wordllama-l2-supercat\s+256\s+halfvec\s+{ROWS}", listed.output)
    assert runner.invoke(args=["semsearch", "db", "current"]).output.strip().endswith("(head)")
    found = runner.invoke(args=["semsearch", "search", TABLE, QUERY, "-k", "1"])
    assert found.exit_code == 0 and re.search(r"^1 +0\.\d{4} +\d+ ", found.output, re.M)  # keys are article ids
    missing = runner.invoke(args=["semsearch", "search", "nosuch", "x"])
    assert missing.exit_code == 1 and "unknown 'nosuch'" in missing.output

    # writes that send no session events (raw SQL here): `flask semsearch reindex` repairs them
    from sqlalchemy import text

    example = _example()
    with example_app.app_context():
        session = example.db.session
        first, second = session.scalars(text("SELECT id FROM flask_example_articles ORDER BY id LIMIT 2")).all()
        title = session.scalar(text("SELECT title FROM flask_example_articles WHERE id = :i"), {"i": second})
        session.execute(text("DELETE FROM flask_example_articles WHERE id = :i"), {"i": first})
        session.execute(
            text("UPDATE flask_example_articles SET body = 'a pickled cucumber' WHERE id = :i"), {"i": second}
        )
        session.commit()
    repaired = runner.invoke(args=["semsearch", "reindex", "--batch-size", "200"])
    assert repaired.exit_code == 0, repaired.output
    assert f"Article -> {TABLE}: 0 inserted, 1 updated, {ROWS - 2} unchanged, 1 removed; 1 embedded" in repaired.output
    assert _titles(example_app, "pickled cucumber", k=1, mode="text") == [title]
    unknown = runner.invoke(args=["semsearch", "reindex", "--model", "Nope"])
    assert unknown.exit_code == 2 and "registered with semsearch.sqlalchemy (Article" in unknown.output


# --- adding and deleting articles on the page --------------------------------------------


def test_articles_added_and_deleted_on_the_page_are_searched_after_their_commit(example_app: Flask) -> None:
    client = example_app.test_client()
    added = client.post("/articles", data={"title": "Sourdough starter feeding", "body": SOURDOUGH})
    assert added.status_code == 302
    page = client.get(added.headers["Location"])
    assert re.search(r"added article \d+", page.text)
    assert _keys(page.text)[0] == "Sourdough starter feeding"
    assert _titles(example_app, "how often do I feed my bread starter?", k=1) == ["Sourdough starter feeding"]
    article_id = re.search(r'<li class="hit" data-id="(\d+)"', page.text).group(1)  # type: ignore[union-attr]

    gone = client.post(f"/articles/{article_id}/delete", data={"q": "sourdough", "mode": "text"})
    assert gone.status_code == 302
    after = client.get(gone.headers["Location"])
    assert f"deleted article {article_id}" in after.text and "Sourdough starter feeding" not in after.text
    assert "Sourdough starter feeding" not in _titles(example_app, "how often do I feed my bread starter?", k=5)

    bad = client.post("/articles", data={"title": "  ", "body": "no title"})
    assert bad.status_code == 400 and "expected a title" in bad.text


# --- a real browser ----------------------------------------------------------------


@pytest.fixture
def live_url(example_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, example_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_search_page_in_headless_chromium(live_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    assert Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file(), "apt-get install chromium chromium-driver"
    # the driver is Debian's: selenium-manager must never go looking for one online
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # the tests run as root in CI
        "--disable-gpu",
        # no network but loopback here: these keep Chromium from calling home at start
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1100,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(live_url + "/")
        assert driver.find_elements(By.ID, "results") == []
        box = driver.find_element(By.ID, "q")
        box.send_keys(QUERY)
        Select(driver.find_element(By.ID, "mode")).select_by_value("hybrid")
        driver.find_element(By.ID, "go").click()
        # the first search also loads the corpus, so allow it a while
        WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "results")))

        assert "mode=hybrid" in driver.current_url
        hits = driver.find_elements(By.CSS_SELECTOR, "#results .hit")
        assert len(hits) == 10
        assert hits[0].find_element(By.CLASS_NAME, "key").text == "json.dumps"
        assert "Serialize" in hits[0].find_element(By.CLASS_NAME, "content").text
        assert re.fullmatch(
            r"[01]\.\d{4}", hits[0].find_element(By.CLASS_NAME, "score").text
        )  # blend: 1 = top of both lists
        assert re.search(r"in \d+\.\d ms", driver.find_element(By.ID, "timing").text)
        assert driver.find_element(By.ID, "plan-compression").text == "halfvec"
        assert "weighted blend" in driver.find_element(By.ID, "plan-strategy").text
        assert driver.find_element(By.ID, "q").get_attribute("value") == QUERY

        shot = tmp_path / "search.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

        # add an article through the page: committed, indexed after the commit, found by a search
        driver.find_element(By.CSS_SELECTOR, "#add summary").click()
        driver.find_element(By.ID, "add-title").send_keys("Sourdough starter feeding")
        driver.find_element(By.ID, "add-body").send_keys(SOURDOUGH)
        driver.find_element(By.ID, "add-go").click()
        WebDriverWait(driver, 10).until(expected_conditions.presence_of_element_located((By.ID, "notice")))
        assert re.fullmatch(r"added article \d+", driver.find_element(By.ID, "notice").text)
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys("how often do I feed my bread starter?")
        Select(driver.find_element(By.ID, "mode")).select_by_value("vector")
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 10).until(expected_conditions.url_contains("mode=vector"))
        first = driver.find_elements(By.CSS_SELECTOR, "#results .hit")[0]
        assert first.find_element(By.CLASS_NAME, "key").text == "Sourdough starter feeding"
        assert "rye starter" in first.find_element(By.CLASS_NAME, "content").text

        # delete it from the results: the same search no longer finds it
        first.find_element(By.CSS_SELECTOR, "form.delete button").click()
        WebDriverWait(driver, 10).until(expected_conditions.text_to_be_present_in_element((By.ID, "notice"), "deleted"))
        assert "mode=vector" in driver.current_url
        titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .key")]
        assert len(titles) == 10 and "Sourdough starter feeding" not in titles
    finally:
        driver.quit()
