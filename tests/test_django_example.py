"""semsearch.django through the example project (examples/django_project), on a fresh database per test.

``django.setup()`` is process-global, so the example's settings are loaded once per
session; each test then points the ``default`` database (which semsearch uses via
``SEMSEARCH["DATABASE"]``) at its own fresh database and runs the example's migrations.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import django
import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.test import Client, override_settings
from psycopg.conninfo import conninfo_to_dict

from semsearch import collection_settings, ddl, migrate
from semsearch.embeddings.local import LocalEmbedder
from semsearch.errors import ConfigurationError

EXAMPLE = Path(__file__).parents[1] / "examples" / "django_project"
# a model label with everything a driver or Django might take for a placeholder
ODD_MODEL = "odd %s 100% label %(x)s"
EMBED_CALLS: list[int] = []


@pytest.fixture(scope="session")
def example_settings(server_url: str) -> Any:
    """Load the example project's settings once (django.setup() cannot be undone or repeated)."""
    from django.conf import settings

    if not settings.configured:
        sys.path.insert(0, str(EXAMPLE))
        with pytest.MonkeyPatch.context() as mp:
            # the settings read the server from the environment; tests then switch databases per test
            mp.setenv("DJANGO_SETTINGS_MODULE", "searchsite.settings")
            mp.setenv("SEMSEARCH_TEST_DATABASE_URL", server_url)
            django.setup()
    return settings


@pytest.fixture
def site(example_settings: Any, db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """The example on a fresh database, migrated; fails the test if indexing logged an error."""
    from semsearch.django import client

    params = {k: str(v) for k, v in conninfo_to_dict(db_url).items()}
    connections.close_all()
    client.close()
    entry = connections["default"].settings_dict  # the very dict of settings.DATABASES["default"]
    entry.update(
        NAME=params.pop("dbname"),
        USER=params.pop("user", ""),
        PASSWORD=params.pop("password", ""),
        HOST=params.pop("host", ""),
        PORT=params.pop("port", ""),
        OPTIONS=params,
    )
    call_command("migrate", verbosity=0)
    caplog.set_level(logging.WARNING, logger="semsearch.django")
    try:
        yield db_url
    finally:
        # before db_url drops the database, which open connections would block
        connections.close_all()
        client.close()
    errors = [r.getMessage() for r in caplog.records if r.name == "semsearch.django"]
    assert not errors, errors


def counting_embedder() -> Any:
    """An EMBEDDER factory (``SEMSEARCH["EMBEDDER"]`` dotted path): the local model, counting calls."""

    class Counting:
        model, dims = "wordllama-l2-supercat", 256

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            EMBED_CALLS.append(len(texts))
            return LocalEmbedder(dims=256).embed(texts)

    return Counting()


def _semsearch(**changes: Any) -> Any:
    from django.conf import settings

    return override_settings(SEMSEARCH={**settings.SEMSEARCH, **changes})


def _load_articles() -> None:
    call_command("loaddata", "articles", verbosity=0)


# --- sync on commit ----------------------------------------------------------------


def test_rows_are_indexed_only_when_their_transaction_commits(site: str) -> None:
    from articles.models import Article

    col = Article.semsearch.collection()
    with transaction.atomic():
        tea = Article.objects.create(title="Brewing green tea", body="Let the water cool to 80 degrees.")
        assert col.count() == 0  # nothing is written inside the user's transaction
    assert Article.semsearch.hits("green tea", k=1).keys == [str(tea.pk)]

    with pytest.raises(RuntimeError), transaction.atomic():
        Article.objects.create(title="Rolled back", body="This row never commits.")
        raise RuntimeError
    with transaction.atomic():
        bike = Article.objects.create(title="Fixing a flat tire", body="Patch the inner tube.")
        try:
            with transaction.atomic():  # a savepoint rolled back inside a committed transaction
                Article.objects.create(title="Inner rollback", body="Gone with its savepoint.")
                raise RuntimeError
        except RuntimeError:
            pass
    assert sorted(Article.semsearch.hits("anything", k=10).keys) == sorted([str(tea.pk), str(bike.pk)])


def test_updates_and_deletes_follow_the_row_and_a_transaction_embeds_once(site: str) -> None:
    from articles.models import Article

    with _semsearch(EMBEDDER="tests.test_django_example.counting_embedder"):
        col = Article.semsearch.collection()
        article = Article.objects.create(title="Brewing green tea", body="Cool the water first.")
        article.title, article.body = "Fixing a flat bicycle tire", "Find the puncture and patch the tube."
        article.save()
        hit = col.search("repair a bike puncture", k=1)[0]
        assert (hit.key, hit.content) == (
            str(article.pk),
            "Fixing a flat bicycle tire\n\nFind the puncture and patch the tube.",
        )
        article.delete()
        assert col.count() == 0

        EMBED_CALLS.clear()
        with transaction.atomic():
            made = [Article.objects.create(title=f"Note {i}", body=f"Body number {i}") for i in range(5)]
            made[0].body = "An edited body"
            made[0].save()
            made[1].delete()
        assert len(EMBED_CALLS) == 1  # one batch for the whole transaction
        assert col.count() == 4
        assert col.search("edited", k=1, mode="text")[0].key == str(made[0].pk)


def test_saves_through_a_proxy_model_are_indexed(site: str) -> None:
    from articles.models import Article

    from semsearch.django import registration_for, sync

    class Featured(Article):  # defined after setup: ready() connects the proxies that exist by then
        class Meta:
            proxy = True
            app_label = "articles"

    sync.connect_signals(registration_for(Article))
    featured = Featured.objects.create(title="Growing tomatoes", body="Six hours of sun.")
    assert Article.semsearch.hits("tomato plants", k=1).keys == [str(featured.pk)]
    assert registration_for(Featured) is registration_for(Article)
    featured.delete()
    assert Article.semsearch.collection().count() == 0


# --- searching ---------------------------------------------------------------------


def test_semantic_search_returns_instances_in_score_order(site: str) -> None:
    from articles.models import Article

    from semsearch.django import semantic_search

    _load_articles()  # one transaction: indexed in one batch on commit
    found = semantic_search(Article, "how do I make tea?", k=5)
    assert found[0].title == "Brewing green tea"
    scores = [a.semsearch_score for a in found]
    assert len(found) == 5 and scores == sorted(scores, reverse=True) and all(isinstance(s, float) for s in scores)
    assert [a.pk for a in Article.semsearch.search("how do I make tea?", k=5)] == [a.pk for a in found]

    spanish = semantic_search("articles.Article", "bebida caliente", k=3, where={"lang": "es"})
    assert len(spanish) == 3 and {a.lang for a in spanish} == {"es"}
    # a queryset filters the hits after the search: fewer than k may come back (where= filters inside it)
    english = semantic_search(Article.objects.filter(lang="en"), "café de olla con canela", k=3)
    assert len(english) < 3 and {a.lang for a in english} <= {"en"}
    assert semantic_search(Article, "sourdough", k=1, mode="hybrid")[0].title == "Sourdough starter basics"

    # a row deleted behind semsearch's back (no signal) is skipped, the order kept
    with connection.cursor() as cur:
        cur.execute("DELETE FROM articles_article WHERE id = %s", [found[0].pk])
    again = semantic_search(Article, "how do I make tea?", k=5)
    assert [a.pk for a in again] == [a.pk for a in found[1:]]


# --- documents split into passages ---------------------------------------------------

PUMP = "\n\n".join([
    "The pump must be primed before first use. Fill the housing with water and close the valve.",
    "Cleaning the filter takes ten minutes. Remove the cover and rinse the mesh in warm water.",
    "Warranty claims need the receipt and the serial number printed under the base.",
])  # fmt: skip
HEATER = "The heater warms the tank to 60 degrees.\n\nDescale it every six months with citric acid."


@functools.cache
def _manual_model() -> tuple[Any, Any]:
    """A model of the example's app whose long ``body`` is split into passages (defined once per process)."""
    from django.db import models

    from semsearch import Splitter
    from semsearch.django import register, registration_for

    class Manual(models.Model):
        body = models.TextField()

        class Meta:
            app_label = "articles"

    register(Manual, fields=("body",), passages=Splitter(max_tokens=24, overlap=6))
    return Manual, registration_for(Manual)


@pytest.fixture
def manuals(site: str) -> Iterator[Any]:
    """Manual registered, its table and its collection made (CreateCollection with passages=, as a migration would)."""
    from semsearch import Splitter
    from semsearch.django import registration
    from semsearch.django.operations import CreateCollection

    model, reg = _manual_model()
    registration.keep(reg)
    create = CreateCollection(
        "articles_manual", model="local", dims=256, compression="halfvec", passages=Splitter(max_tokens=24, overlap=6)
    )
    with connection.schema_editor() as editor:
        editor.create_model(model)
        create.database_forwards("articles", editor, None, None)
    try:
        yield model
    finally:
        registration._registry.pop(model, None)  # other tests' commands index every registered model


def _passage_keys(col: Any) -> list[str]:
    from psycopg import sql

    with col.db.connection() as conn:
        return sorted(r[0] for r in conn.execute(sql.SQL("SELECT key FROM {}").format(col.layout.table)))


def test_a_model_registered_with_passages_is_searched_as_documents(manuals: Any) -> None:
    with _semsearch(EMBEDDER="tests.test_django_example.counting_embedder"):
        EMBED_CALLS.clear()
        with transaction.atomic():
            pump, heater = manuals.objects.create(body=PUMP), manuals.objects.create(body=HEATER)
        col = manuals.semsearch.collection()
        keys = _passage_keys(col)  # each row's passages, keyed <pk>#<seq>
        assert col.count() == 2 and len(keys) == sum(EMBED_CALLS) > 2
        assert {k.split("#")[0] for k in keys} == {str(pump.pk), str(heater.pk)}

        found = manuals.semsearch.search("how do I clean the filter", k=2)
        assert [m.pk for m in found] == [pump.pk, heater.pk]  # each instance once, not once per passage
        best = found[0].semsearch_passage
        assert best.seq == 1 and PUMP[best.start : best.end] == best.text and "filter" in best.text
        (hit,) = manuals.semsearch.search("receipt", k=1, mode="text")
        assert hit.pk == pump.pk and "<b>receipt</b>" in hit.semsearch_snippet

        out = StringIO()
        call_command("semsearch_search", "articles.Manual", "clean the filter", "-k", "1", "--json", stdout=out)
        assert json.loads(out.getvalue())["passage"] == {
            "seq": 1,
            "start": best.start,
            "end": best.end,
            "text": best.text,
        }
        out = StringIO()
        call_command("semsearch_search", "articles.Manual", "clean the filter", "-k", "1", stdout=out)
        assert f"[{best.start}:{best.end}] Cleaning the filter" in out.getvalue()

        EMBED_CALLS.clear()
        pump.body = PUMP.replace("ten minutes", "five minutes")  # one paragraph changes
        pump.save()
        assert EMBED_CALLS == [1]  # only its passage is embedded again
        assert col.get([str(pump.pk)])[0].content == pump.body

        heater.delete()
        assert {k.split("#")[0] for k in _passage_keys(col)} == {str(pump.pk)}  # its passages went
        with connection.cursor() as cur:  # no signal: reindex removes the document, every passage of it
            cur.execute("DELETE FROM articles_manual")
        assert manuals.semsearch.reindex().removed == 1 and _passage_keys(col) == []

        col.db.drop_collection("articles_manual")  # made again, with the registration's splitter, when missing
        manuals.objects.bulk_create([manuals(body=HEATER)])  # no signal: semsearch_index adds it
        out = StringIO()
        call_command("semsearch_index", "--model", "articles.Manual", stdout=out, verbosity=0)
        assert "2 inserted" in out.getvalue() and "(passages of 1 document(s))" in out.getvalue()
        made = manuals.semsearch.collection()
        assert made.info.passages == {"splitter": "default", "max_tokens": 24, "overlap": 6} and made.count() == 1


def test_passages_need_a_collection_made_with_them(site: str) -> None:
    from articles.models import Article

    from semsearch.django import register, registration

    manual, _ = _manual_model()
    registration._registry.pop(manual, None)
    with pytest.raises(ConfigurationError, match="expected passages=True, a Splitter"):
        register(manual, fields=("body",), passages="yes")
    assert not registration.is_registered(manual)  # refused before anything was kept
    reg = registration.registration_for(Article)
    registration.keep(dataclasses.replace(reg, passages=True))  # articles_article was made by 0002 without
    try:
        with pytest.raises(ConfigurationError, match="made without passages=: drop it"):
            registration.registration_for(Article).collection()
    finally:
        registration.keep(reg)


def test_search_view_returns_the_expected_top_result(site: str) -> None:
    _load_articles()
    browser = Client()
    got = browser.get("/search/", {"q": "my bike has a puncture", "format": "json"})
    assert got.status_code == 200
    results = got.json()["results"]
    assert results[0]["title"] == "Fixing a flat bicycle tire"
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    page = browser.get("/search/", {"q": "my bike has a puncture"}).content.decode()
    assert page.index("Fixing a flat bicycle tire") < page.index("Brewing green tea")
    assert browser.get("/search/", {"q": "tea", "mode": "telepathy", "format": "json"}).status_code == 400


def test_the_example_is_safe_to_copy(site: str, example_settings: Any) -> None:
    """0.1.0's example shipped DEBUG=True: a %00 in a query showed Django's technical 500 page."""
    assert example_settings.DEBUG is False and "insecure" not in example_settings.SECRET_KEY
    _load_articles()
    got = Client().get("/search/?q=%00")
    body = got.content.decode()
    assert got.status_code == 400 and "nul" in body
    assert "Traceback" not in body and "SECRET_KEY" not in body and "settings" not in body.lower()


# --- commands ----------------------------------------------------------------------


def test_deferred_sync_stores_pending_rows_that_backfill_embeds(site: str) -> None:
    from articles.models import Article

    with _semsearch(SYNC="deferred"):
        col = Article.semsearch.collection()
        tea = Article.objects.create(title="Brewing green tea", body="Cool the water to 80 degrees.")
        Article.objects.create(title="Sourdough", body="Feed the starter daily.")
        assert col.pending() == 2
        assert col.search("tea", k=1, mode="text").keys == [str(tea.pk)]  # stored, not yet embedded
        out = StringIO()
        call_command("semsearch_backfill", "--dry-run", stdout=out)
        assert "2 pending" in out.getvalue() and col.pending() == 2
        call_command("semsearch_backfill", "--batch-size", "1", stdout=out, verbosity=0)
        assert "embedded 2 in 2 batches" in out.getvalue()
        assert col.pending() == 0
        assert col.search("a hot drink made from leaves", k=1).keys == [str(tea.pk)]


def test_index_command_creates_and_repairs_the_collection(site: str, db_url: str) -> None:
    from articles.models import Article

    from semsearch.django import client

    client.database().drop_collection("articles_article")
    rows = Article.objects.bulk_create(  # bulk_create sends no signals: the collection misses them
        [Article(title=f"Article {i}", body=f"Text about topic {i}") for i in range(5)]
    )
    out = StringIO()
    call_command("semsearch_index", "--model", "articles.Article", "--batch-size", "2", stdout=out, verbosity=0)
    assert "5 inserted" in out.getvalue()
    col = Article.semsearch.collection()
    assert col.count() == 5 and col.info.compression == "halfvec"

    Article.objects.filter(pk=rows[0].pk).update(body="Changed by update()")  # no signal either
    with connection.cursor() as cur:
        cur.execute("DELETE FROM articles_article WHERE id = %s", [rows[1].pk])
    out = StringIO()
    call_command("semsearch_index", stdout=out, verbosity=0)
    assert "0 inserted, 1 updated, 3 unchanged, 1 removed; 1 embedded" in out.getvalue()
    assert col.search("Changed by update", k=1, mode="text").keys == [str(rows[0].pk)]

    with pytest.raises(CommandError, match="registered"):
        call_command("semsearch_index", "--model", "articles.Nope", verbosity=0)


def test_search_eval_and_tune_commands(site: str) -> None:
    _load_articles()
    out = StringIO()
    call_command("semsearch_search", "articles.Article", "brewing tea", "-k", "3", "--json", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["rank"] for r in lines] == [1, 2, 3] and lines[0]["object"] == "Brewing green tea"
    out = StringIO()
    call_command("semsearch_eval", "articles.Article", "--sample", "5", "-k", "3", "--json", stdout=out)
    assert json.loads(out.getvalue())["recall"] == 1.0
    out = StringIO()
    call_command(
        "semsearch_tune", "articles.Article", "--sample", "5", "-k", "3", "--target", "0.9", "--json", stdout=out
    )
    assert json.loads(out.getvalue())["reached"] is True
    with pytest.raises(CommandError, match="JSON object"):
        call_command("semsearch_search", "articles.Article", "tea", "--where", "[1]")


def test_migrate_installs_semsearch_schema_and_upgrade_command(site: str, db_url: str) -> None:
    call_command("migrate", "articles", "zero", verbosity=0)
    migrate.downgrade(db_url, "base")  # as a database that never had semsearch
    call_command("migrate", verbosity=0)  # pre_migrate installs it before CreateCollection runs
    from articles.models import Article

    assert Article.semsearch.collection().count() == 0
    migrate.downgrade(db_url, "base")
    out = StringIO()
    call_command("semsearch_upgrade", stdout=out)
    assert f"semsearch schema at {migrate.head()}" in out.getvalue()


# --- migration operations ----------------------------------------------------------


def test_create_collection_migration_applies_and_reverses(site: str) -> None:
    from semsearch.django import client

    db = client.database()
    assert [c.name for c in db.collections()] == ["articles_article"]
    call_command("migrate", "articles", "0001", verbosity=0)
    assert db.collections() == []
    out = StringIO()
    call_command("sqlmigrate", "articles", "0002", stdout=out)
    assert 'CREATE TABLE "semsearch"."col_articles_article"' in out.getvalue()
    call_command("migrate", "articles", verbosity=0)
    info = db.collection("articles_article").info
    assert (info.model, info.dims, info.compression) == (collection_settings.LOCAL_MODEL, 256, "halfvec")


def test_percent_in_statements_needs_params_none(site: str) -> None:
    from django.db.migrations.state import ProjectState

    from semsearch.django import client
    from semsearch.django.operations import CreateCollection

    op = CreateCollection("odd", model=ODD_MODEL, dims=8, compression="none")
    insert = ddl.create_statements(op.info)[-1].as_string(None)
    assert ODD_MODEL in insert
    # why operations pass params=None: with schema_editor.execute()'s default params=(), Django's
    # postgresql editor merges parameters into the text client-side (psycopg's mogrify), which reads
    # every % as a placeholder; migrate and sqlmigrate (collect_sql) alike. params=None passes it as is.
    for collect_sql in (False, True):
        with (
            connection.schema_editor(collect_sql=collect_sql) as editor,
            pytest.raises(psycopg.ProgrammingError, match="placeholder"),
        ):
            editor.execute(insert)
    with connection.schema_editor(collect_sql=True) as editor:
        op.database_forwards("articles", editor, ProjectState(), ProjectState())
    assert any(ODD_MODEL in s for s in editor.collected_sql)
    with connection.schema_editor() as editor:
        op.database_forwards("articles", editor, ProjectState(), ProjectState())
    assert client.database().collection("odd").info.model == ODD_MODEL
    with connection.schema_editor() as editor:
        op.database_backwards("articles", editor, ProjectState(), ProjectState())
    assert [c.name for c in client.database().collections()] == ["articles_article"]


def _setting(name: str) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting(%s)", [name])
        return str(cur.fetchone()[0])


def _index_valid(name: str) -> bool:
    with psycopg.connect(_url()) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", [name]
        ).fetchone()
    return bool(row and row[0])


def _url() -> str:
    from semsearch.django.conf import alias_url

    return alias_url("default")


def test_alter_collection_builds_in_the_transaction_or_concurrently(site: str) -> None:
    from articles.models import Article
    from django.db.migrations.state import ProjectState

    from semsearch.django.operations import AlterCollection

    _load_articles()
    state = ProjectState()
    op = AlterCollection("articles_article", compression="bit", old={"compression": "halfvec"})
    with pytest.raises(ConfigurationError, match="atomic = False"), connection.schema_editor() as editor:
        AlterCollection("articles_article", compression="bit", concurrently=True).database_forwards(
            "articles", editor, state, state
        )
    with connection.schema_editor() as editor:  # atomic: built inside the migration's transaction
        op.database_forwards("articles", editor, state, state)
    assert Article.semsearch.collection().info.compression == "bit"
    memory = _setting("maintenance_work_mem")
    with connection.schema_editor(atomic=False) as editor:  # atomic = False: CREATE INDEX CONCURRENTLY
        op.database_backwards("articles", editor, state, state)
    assert Article.semsearch.collection().info.compression == "halfvec"
    assert _setting("maintenance_work_mem") == memory  # the session is left as found
    assert _index_valid("col_articles_article_hnsw") and not _index_valid("col_articles_article_hnsw_next")
    assert Article.semsearch.search("how do I make tea?", k=1)[0].title == "Brewing green tea"


# --- configuration errors ----------------------------------------------------------


def test_settings_and_registration_errors_say_what_was_expected(site: str) -> None:
    from articles.models import Article
    from django.db import models
    from django.test.utils import isolate_apps

    from semsearch.django import register, registration_for
    from semsearch.django.conf import SemsearchSettings
    from semsearch.django.operations import CreateCollection

    cases = [
        ({"URL": "postgresql://x/y", "DATABASE": "default"}, "got both"),
        ({"SYNC": "later"}, "'immediate' or 'deferred'"),
        ({"FLAVOUR": 1}, "SEMSEARCH keys"),
        ({"DATABASE": "nope"}, "database alias"),
    ]
    for value, message in cases:
        with override_settings(SEMSEARCH=value), pytest.raises(ConfigurationError, match=message):
            SemsearchSettings.load().url()
    with _semsearch(EMBEDDER="tests.nowhere.factory"), pytest.raises(ConfigurationError, match="dotted path"):
        Article.semsearch.collection()
    with (
        override_settings(SEMSEARCH={"URL": _url()}),
        connection.schema_editor() as editor,
        pytest.raises(ConfigurationError, match=r"SEMSEARCH\['DATABASE'\]"),
    ):
        CreateCollection("other", model="local").database_forwards("articles", editor, None, None)

    with pytest.raises(ConfigurationError, match="twice"):
        register(Article, fields=("title",))
    with isolate_apps("articles"):

        class Draft(models.Model):
            title = models.CharField(max_length=10)

            class Meta:
                app_label = "articles"

        with pytest.raises(ConfigurationError, match=r"fields of articles\.Draft"):
            register(fields=("title", "summary"))(Draft)
        with pytest.raises(ConfigurationError, match="neither"):
            register(Draft)
        with pytest.raises(ConfigurationError, match="a function or an attribute"):
            register(Draft, text="summary")
    with pytest.raises(ConfigurationError, match="registered with semsearch"):
        registration_for("articles.Nope")
    assert registration_for(Article()).document(Article(title="T", body="B", lang="es")) == (
        "T\n\nB",
        {"lang": "es"},
        None,
    )
