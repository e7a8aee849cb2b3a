"""One database, two spellings: libpq URLs (semsearch, psycopg) and SQLAlchemy URLs (engines)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url


def engine_url(url: str) -> URL:
    """A SQLAlchemy URL (psycopg driver) for a libpq URL or ``key=value`` string, e.g. ``semsearch.connect().url``.

    Example::

        create_engine(engine_url(db.url))     # the app's tables beside semsearch's collections

    >>> engine_url("postgresql://app@db.internal:5433/app").render_as_string()
    'postgresql+psycopg://app@db.internal:5433/app'
    >>> engine_url("host=/tmp/pg dbname=app user=me").render_as_string()
    'postgresql+psycopg://me@/app?host=%2Ftmp%2Fpg'
    """
    params = conninfo_to_dict(url)
    user, password, host = params.pop("user", None), params.pop("password", None), params.pop("host", None)
    port, database = params.pop("port", None), params.pop("dbname", None)
    query = {k: str(v) for k, v in params.items()}
    if host is not None and (str(host).startswith("/") or "," in str(host)):
        query["host"] = str(host)  # a socket directory (or several hosts): libpq's own parameter
        host = None
    return URL.create(
        "postgresql+psycopg",
        username=None if user is None else str(user),
        password=None if password is None else str(password),
        host=None if host is None else str(host),
        port=None if port is None else int(port),
        database=None if database is None else str(database),
        query=query,
    )


def libpq_url(url: URL | str) -> str:
    """The libpq URL of a SQLAlchemy URL: its driver part (``+psycopg``) is SQLAlchemy's alone.

    >>> libpq_url("postgresql+psycopg://app:pw@db/app?host=%2Ftmp")
    'postgresql://app:pw@db/app?host=%2Ftmp'
    """
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
