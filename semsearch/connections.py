"""A database's connections: the pool to one Postgres, its read replicas and the server's liveness.

:class:`~semsearch.Database` is built on it (the collections in the database are its part);
helpers take the narrow face of it, :class:`semsearch.faces.Connections`.

Example::

    with semsearch.connect() as db:
        with db.connection() as conn:
            conn.execute("SELECT 1")
        db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from semsearch import server, session_settings
from semsearch.config import FROM_ENV, FromEnv, check_search_timeout
from semsearch.replicas import ReplicaStatus, Router
from semsearch.server import Liveness, redact

T = TypeVar("T")


class DatabaseConnections:
    """The connections of a :class:`~semsearch.Database`: pooled, on replicas for reads, revived after a break.

    Example::

        with db.connection() as conn:
            conn.execute("SELECT count(*) FROM semsearch.collections")
    """

    def __init__(
        self,
        url: str,
        pool: ConnectionPool,
        router: Router | None = None,
        live: Liveness | None = None,
        *,
        search_timeout: float | FromEnv | None = FROM_ENV,
    ) -> None:
        self._url = url
        self.pool = pool
        #: seconds one search statement may run (None: no limit), see :func:`connect`
        self.search_timeout = check_search_timeout(search_timeout)
        #: where searches run: read replicas in turn, or this pool (see :mod:`semsearch.replicas`)
        self.router = router if router is not None else Router(())
        #: whether a connection broke, and how to start the embedded server again (when ``url`` is its):
        #: ``db.liveness.revive(db.pool)`` raises DatabaseError at once while the server does not answer
        self.liveness = live if live is not None else Liveness(url, None)

    @property
    def url(self) -> str:
        """The connection URL (also of the embedded server, for psql and friends)."""
        return self._url

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection with pgvector's types registered (after one broke, see :attr:`liveness`)."""
        if self.pool.closed:
            raise server.closed()  # not the pool's PoolClosed: a user sees semsearch's errors only
        if self.liveness.lost:
            self.liveness.revive(self.pool)
        with self.pool.connection() as conn, self.liveness.watch(conn):
            if session_settings.lent(conn):
                conn.execute(session_settings.RESET)  # a search's time limit is not this use's
            try:
                yield conn
            except psycopg.errors.InsufficientPrivilege as exc:
                raise server.denied(exc) from exc

    def read(self, fn: Callable[[psycopg.Connection], T], *, fresh: bool = False) -> T:
        """``fn(conn)`` on the next read replica, or on the primary (``fresh``, none configured, none answering).

        ``fn`` must only read (after a replica fails it runs again on the primary).

        Example::

            db.read(lambda conn: conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        """
        return self.router.read(fn, primary=self.connection, fresh=fresh)

    def pinned(self, *, fresh: bool = False) -> AbstractContextManager[None]:
        """Every :meth:`read` of this thread inside the block on one server (see :meth:`Router.pinned`).

        Example::

            with db.pinned():
                col.evaluate(sample=100)      # exact and approximate answers from the same replica
        """
        return self.router.pinned(fresh=fresh)

    def revive(self) -> None:
        """After a connection broke: the server answers (the embedded one started again), else DatabaseError at once.

        Then the pool's dead connections are replaced (see :attr:`liveness`).

        Example::

            db.revive()
        """
        self.liveness.revive(self.pool)

    @property
    def replicas(self) -> tuple[ReplicaStatus, ...]:
        """The read replicas and what the router knows of them (up, reads answered, failures)."""
        return self.router.replicas

    def close(self) -> None:
        self.router.close()
        self.pool.close()

    def __repr__(self) -> str:
        return f"<Database {redact(self._url)}>"
