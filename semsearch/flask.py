"""Flask integration: one connection pool per app, one pooled connection per request.

Configuration (read from ``app.config`` when the database is first used):

``SEMSEARCH_DATABASE_URL``
    Any Postgres with pgvector; ``None`` (the default) means what
    :func:`semsearch.connect` does: ``$SEMSEARCH_DATABASE_URL``, else the embedded server.
``SEMSEARCH_MAX_CONNECTIONS``
    Size of the app's pool (default 4). A request holds one connection from its
    first search until its app context ends, so give it at least as many
    connections as the server runs request threads.

Example::

    from flask import Flask
    from semsearch.flask import SemSearch

    semsearch = SemSearch()

    def create_app():
        app = Flask(__name__)
        app.config["SEMSEARCH_DATABASE_URL"] = "postgresql://app@db.internal/app"
        semsearch.init_app(app)

        @app.get("/search")
        def search():
            hits = semsearch.collection("docs").search(request.args["q"], k=5)
            return {"keys": hits.keys}

        return app

The ``flask semsearch`` command group runs the ``semsearch`` CLI against the
app's database: ``flask --app myapp semsearch db upgrade``, ``... semsearch list``;
``flask semsearch reindex`` repairs the collections of Flask-SQLAlchemy models
registered with :mod:`semsearch.sqlalchemy`.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
import psycopg
from psycopg_pool import ConnectionPool

try:
    from flask import Flask, current_app, g, has_app_context
    from flask.cli import with_appcontext
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("semsearch.flask needs Flask: pip install 'semsearch[flask]'") from exc

from semsearch import session_settings
from semsearch.cli import Group
from semsearch.cli import main as semsearch_cli
from semsearch.collection import Collection
from semsearch.db import Database, connect
from semsearch.replicas import Router

EXTENSION_KEY = "semsearch"
_G_CONNECTIONS = "_semsearch_connections"


class RequestDatabase(Database):
    """A :class:`Database` that lends each Flask app context one pooled connection.

    Inside an app context of its own app, :meth:`connection` borrows a connection
    on first use and keeps it for the rest of the context (every search of a
    request runs on it); the ``teardown_appcontext`` hook returns it to the pool.
    Elsewhere (a thread with no app context) each call borrows and returns one.

    Example::

        with app.test_request_context():
            with ext.db.connection() as conn:
                conn.execute("SELECT 1")
    """

    def __init__(self, url: str, pool: ConnectionPool, app: Flask, router: Router | None = None) -> None:
        super().__init__(url, pool, router)
        self.app = app

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if not has_app_context() or current_app._get_current_object() is not self.app:  # type: ignore[attr-defined]
            with super().connection() as conn:
                yield conn
            return
        # keyed by the database itself (not its id): g keeps it alive, so a reopened pool never finds its conn
        borrowed: dict[RequestDatabase, psycopg.Connection] = g.setdefault(_G_CONNECTIONS, {})
        if self not in borrowed:
            borrowed[self] = self.pool.getconn()
        conn = borrowed[self]
        if session_settings.lent(conn):
            conn.execute(session_settings.RESET)  # a search's time limit is not this use's
        yield conn


class _State:
    """What ``app.extensions["semsearch"]`` holds: the app's settings and its database once opened."""

    def __init__(self, ext: SemSearch, app: Flask) -> None:
        self.ext = ext
        self.app = app
        self.database: RequestDatabase | None = None
        self._lock = threading.Lock()

    def open(self) -> RequestDatabase:
        database = self.database
        if database is None:
            # checked again under the lock: concurrent first requests must not open two pools
            with self._lock:
                if self.database is None:
                    url = self.app.config["SEMSEARCH_DATABASE_URL"]
                    size = int(self.app.config["SEMSEARCH_MAX_CONNECTIONS"])
                    plain = connect(url, max_connections=size)
                    self.database = RequestDatabase(plain.url, plain.pool, self.app, plain.router)
                    atexit.register(self.close)
                database = self.database
        return database

    def close(self) -> None:
        with self._lock:
            if self.database is not None:
                self.database.close()
                self.database = None
                atexit.unregister(self.close)


class SemSearch:
    """The Flask extension: ``ext.db`` and ``ext.collection(name)`` for the current app.

    The app's :class:`Database` (and its pool) is opened on first use, kept in
    ``app.extensions["semsearch"].database``, and closed at process exit or by
    :meth:`close`.

    Example::

        semsearch = SemSearch(app)            # or SemSearch() + semsearch.init_app(app)
        with app.app_context():
            semsearch.collection("docs").search("rotate the logs", k=5)
    """

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension, its teardown hook and the ``flask semsearch`` commands on ``app``."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("expected an app without semsearch, got one already initialised")
        app.config.setdefault("SEMSEARCH_DATABASE_URL", None)
        app.config.setdefault("SEMSEARCH_MAX_CONNECTIONS", 4)
        app.extensions[EXTENSION_KEY] = _State(self, app)
        app.teardown_appcontext(_return_connections)
        app.cli.add_command(cli)

    def _state(self) -> _State:
        if has_app_context():
            app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        elif self.app is not None:
            app = self.app
        else:
            raise RuntimeError("expected an app context or SemSearch(app), got neither")
        state: _State | None = app.extensions.get(EXTENSION_KEY)
        if state is None:
            raise RuntimeError("expected an app set up with SemSearch.init_app(app), got one without")
        return state

    @property
    def db(self) -> RequestDatabase:
        """The current app's database, opened on first use.

        Example::

            semsearch.db.create_collection("docs", model="local", dims=256)
        """
        return self._state().open()

    def collection(self, name: str) -> Collection:
        """An existing collection of the current app's database.

        Example::

            semsearch.collection("docs").search("how do I rotate the logs?", mode="hybrid")
        """
        return self.db.collection(name)

    def close(self, app: Flask | None = None) -> None:
        """Close the pool of ``app`` (default: the current one); the next use opens a new one.

        Example::

            semsearch.close(app)
        """
        state = app.extensions[EXTENSION_KEY] if app is not None else self._state()
        state.close()


def _return_connections(exc: BaseException | None) -> None:
    """Give the connections this app context borrowed back to their pools."""
    borrowed: dict[RequestDatabase, psycopg.Connection] = g.pop(_G_CONNECTIONS, {})
    for database, conn in borrowed.items():
        # the pool rolls back or discards a connection left in a transaction or broken, and
        # closes it if the pool was closed meanwhile
        database.pool.putconn(conn)


@click.group("semsearch", cls=Group)
@with_appcontext
@click.pass_context
def cli(ctx: click.Context) -> None:
    """The semsearch commands, against this app's SEMSEARCH_DATABASE_URL.

    \b
    Example:
      flask --app myapp semsearch db upgrade
      flask --app myapp semsearch search docs "rotate the logs" -k 5
    """
    # semsearch.cli's commands read their URL from ctx.obj (its --url option)
    ctx.obj = current_app.config.get("SEMSEARCH_DATABASE_URL")


for _name, _command in semsearch_cli.commands.items():
    cli.add_command(_command, _name)


@cli.command("reindex")
@click.option("--model", "models", multiple=True, help="A registered class (name or module.Name); default: all.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True, help="Rows per batch.")
@click.option("--progress/--no-progress", default=False, help="Show progress bars.")
def reindex(models: tuple[str, ...], batch_size: int, progress: bool) -> None:
    """Make the collections of models registered with semsearch.sqlalchemy match their tables.

    Upserts every row (unchanged texts are not re-embedded), removes rows that are
    gone, embeds pending rows: repairs what no session event reported (Core or raw
    SQL writes, failed indexing). Uses the app's Flask-SQLAlchemy session.

    \b
    Example:
      flask --app myapp semsearch reindex
      flask --app myapp semsearch reindex --model Article --batch-size 1000
    """
    from semsearch.sqlalchemy import registrations
    from semsearch.sqlalchemy import reindex as reindex_model

    sqla = current_app.extensions.get("sqlalchemy")
    if sqla is None:
        raise click.UsageError("expected an app with Flask-SQLAlchemy (db.init_app(app)), got none")
    chosen = [r for r in registrations() if not models or {r.model.__name__, r.label} & set(models)]
    if not chosen:
        known = ", ".join(r.model.__name__ for r in registrations()) or "none"
        raise click.UsageError(f"expected a model registered with semsearch.sqlalchemy ({known}), got {models}")
    try:
        for reg in chosen:
            report = reindex_model(sqla.session, reg.model, batch_size=batch_size, progress=progress)
            a, backfilled = report.added, report.backfill.embedded if report.backfill is not None else 0
            click.echo(
                f"{reg.model.__name__} -> {report.collection}: {a.inserted} inserted, {a.updated} updated, "
                f"{a.unchanged} unchanged, {report.removed} removed; {a.embedded} embedded, {backfilled} backfilled"
                + (f" (passages of {a.documents} document(s))" if a.documents else "")
            )
    finally:
        sqla.session.remove()


__all__ = ["RequestDatabase", "SemSearch", "cli"]
