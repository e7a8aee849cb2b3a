"""The search settings a pooled connection's session already carries: a warm search sends only its query.

An unfiltered vector search needs ``hnsw.ef_search`` and its time limit (``statement_timeout``).
Sent with every search they are a second statement in its pipeline, and at 9,000 rows that
statement cost about 0.44 ms of CPU per search, most of it the client's pipeline
(``bench/results/querypath/overhead_9k.md``). So a search on an idle pooled connection sets them
for the session instead, and they are remembered here, per connection. The next search on that
connection sends only the settings whose values differ, and usually it sends none: its statement
runs alone, with no pipeline.

Three rules keep the memory true:

- **Only on an idle connection.** Inside a transaction (a Flask request's borrowed connection in
  the user's transaction) a setting may be undone by a rollback. There, a search sends its settings
  each time, with the time limit local, as before.
- **Doubt after a failure.** A failed round trip's implicit transaction takes back what it set. The
  connection is then doubted: everything is sent again, and the time limit is reset when the
  connection is lent.
- **The time limit never outlives searches.** A connection lent for anything else (a write, a
  user's ``db.connection()``, a batch) first gets ``RESET statement_timeout`` (:func:`lent`, called
  by every checkout of the pools: the database's, the replicas', Flask's and the async one). Its
  ``hnsw.ef_search`` stays, as it always did, and the memory is cleared: that use may change it.

Example::

    with session_settings.searching():          # around the search's db.read(...) only
        rows = db.read(partial(searching.execute, p=plan))
    with db.connection() as conn:                # a write: gets RESET statement_timeout first
        conn.execute("INSERT ...")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import sql
from psycopg.pq import TransactionStatus

#: the time limit's setting, the one that must not outlive searches
TIMEOUT = "statement_timeout"
#: what a lent connection runs when its session carries a search's time limit (back to the session's default)
RESET = sql.SQL("RESET statement_timeout")
#: a value no setting has: a doubted setting is sent again
_DOUBT = "\x00"

#: per connection, what searches set for its session (and nothing for a connection no search used)
_carried: WeakKeyDictionary[Any, dict[str, str]] = WeakKeyDictionary()
#: inside :func:`searching`: a checkout is a search's, and keeps the settings its session carries
_searching: ContextVar[bool] = ContextVar("semsearch_searching", default=False)


@contextmanager
def searching() -> Iterator[None]:
    """Mark the checkouts inside the block as a search's (they keep the settings the session carries).

    Example::

        with searching():
            rows, found = db.read(partial(execute, p=plan))
    """
    token = _searching.set(True)
    try:
        yield
    finally:
        _searching.reset(token)


def wanted(settings: dict[str, str], timeout_ms: int | None) -> dict[str, str]:
    """The session settings a search runs with: its plan's and its time limit ('0': none).

    >>> wanted({"hnsw.ef_search": "60"}, 30000)
    {'hnsw.ef_search': '60', 'statement_timeout': '30000'}
    """
    return {**settings, TIMEOUT: "0" if timeout_ms is None else str(timeout_ms)}


def carried(conn: Any) -> dict[str, str] | None:
    """What ``conn``'s session carries for searches; None when it is in a transaction (nothing remembered there).

    The dict is the memory itself: :func:`missing` reads it, :func:`kept` and :func:`doubted` change it.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        return None
    memory = _carried.get(conn)
    if memory is None:
        memory = _carried[conn] = {}
    return memory


def missing(memory: dict[str, str], settings: dict[str, str]) -> dict[str, str]:
    """The ``settings`` the session does not carry yet (or carries with another value).

    >>> missing({"hnsw.ef_search": "60", "statement_timeout": "9"}, {"hnsw.ef_search": "80", "statement_timeout": "9"})
    {'hnsw.ef_search': '80'}
    """
    return {name: value for name, value in settings.items() if memory.get(name) != value}


def kept(conn: Any, settings: dict[str, str]) -> None:
    """The round trip that set ``settings`` for ``conn``'s session succeeded: remember them."""
    memory = _carried.get(conn)
    if memory is not None:
        memory.update(settings)


def doubted(conn: Any) -> None:
    """A round trip on ``conn`` failed: what it set was undone; send everything again, reset when lent."""
    memory = _carried.get(conn)
    if memory is not None:
        for name in memory:
            memory[name] = _DOUBT
        memory[TIMEOUT] = _DOUBT


def lent(conn: Any) -> bool:
    """A checkout of ``conn``: True when it is for anything but a search and its session carries a time limit.

    The caller then runs :data:`RESET` before lending it. Either way, lent for anything but a
    search, the memory is cleared: that use may change what the session carries.
    """
    if _searching.get():
        return False
    memory = _carried.pop(conn, None)
    return memory is not None and TIMEOUT in memory
