"""Read replicas: searches go to streaming standbys, everything else to the primary.

:func:`semsearch.connect` takes ``replicas=[url, ...]`` (or ``SEMSEARCH_REPLICA_URLS``)
and gives the :class:`~semsearch.Database` a :class:`Router`. Searches, ``explain``,
``evaluate`` and ``sweep`` run through :meth:`Router.read`: on the next replica in turn
(one small pool each), or on the primary when ``fresh=True``, when no replica is
configured, or when the chosen one does not answer (refused, timed out, broken
connection, a recovery conflict), or does not know a table or function yet (DDL it has
not replayed). A replica that failed is marked down and tried again
after a back-off (1 s, doubling up to 30 s while it keeps failing). Every write, DDL
statement and tune result goes through :meth:`Database.connection`, the primary.

A standby shows a write only once it has replayed it (usually milliseconds, more under
load or with a paused or lagging standby): a caller that must see its own write passes
``fresh=True``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from semsearch import session_settings
from semsearch.errors import ConfigurationError
from semsearch.server import redact

log = logging.getLogger(__name__)
T = TypeVar("T")

#: seconds to connect to (or wait for a pooled connection of) a replica before using the primary
REPLICA_TIMEOUT = 2.0
#: first back-off after a failure, doubled while probes keep failing, up to the maximum
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class ReplicaStatus:
    """What the router knows about one replica.

    Example::

        [(s.url, s.up) for s in db.replicas]      # [('postgresql://app@replica-1/app', True)]
    """

    url: str
    #: False while it is marked down (after a failure, until a probe after ``retry_in`` seconds succeeds)
    up: bool
    #: reads it answered since connect
    reads: int
    #: consecutive failed attempts (reset when it answers a probe again)
    failures: int
    retry_in: float | None


class _Replica:
    """One replica: its pool (None while down) and health."""

    def __init__(self, url: str, name: str, max_connections: int, timeout: float) -> None:
        self.url, self.name, self.max_connections, self.timeout = url, name, max_connections, timeout
        self.pool: ConnectionPool | None = None
        self.failures = 0
        self.retry_at = 0.0
        self.reads = 0
        self.lock = threading.Lock()

    def available(self) -> ConnectionPool | None:
        """Its pool; opened first (a probe) if it was never opened or its back-off has passed, else None."""
        pool = self.pool
        if pool is not None or time.monotonic() < self.retry_at:
            return pool
        if not self.lock.acquire(blocking=False):
            return None  # another thread is probing it: use something else meanwhile
        try:
            if self.pool is None and time.monotonic() >= self.retry_at:
                self._open()
            return self.pool
        finally:
            self.lock.release()

    def _open(self) -> None:
        try:
            # a single connection first: a pool would retry a refused server until its timeout
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(self.timeout))) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            self._back_off(exc)
            return
        pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_connections,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self.timeout))},
            configure=register_vector,
            timeout=self.timeout,
            open=False,
            name=self.name,
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
        except psycopg.Error as exc:
            pool.close(timeout=1.0)
            self._back_off(exc)
            return
        if self.failures:
            log.warning("replica %s answers again", redact(self.url))
        self.failures = 0
        self.pool = pool

    def mark_down(self, pool: ConnectionPool, exc: BaseException) -> None:
        """Close ``pool`` (if it is still the current one) and back off."""
        with self.lock:
            if self.pool is not pool:
                return  # another thread marked it down already (and maybe reopened it)
            self.pool = None
            self._back_off(exc)
        pool.close(timeout=1.0)

    def _back_off(self, exc: BaseException) -> None:
        self.failures += 1
        delay = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (self.failures - 1))
        self.retry_at = time.monotonic() + delay
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "replica %s is down (%s); searches use the primary, retry in %.0f s", redact(self.url), reason, delay
        )

    def status(self) -> ReplicaStatus:
        wait = self.retry_at - time.monotonic()
        up = self.pool is not None
        return ReplicaStatus(redact(self.url), up, self.reads, self.failures, None if up else max(0.0, wait))

    def close(self) -> None:
        with self.lock:
            pool, self.pool = self.pool, None
            self.retry_at = math.inf  # closed: never probed again
        if pool is not None:
            pool.close()


_PRIMARY = "primary"
#: what a replica lagging behind DDL (a collection just created) answers: the primary knows better
_NOT_REPLAYED = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject, psycopg.errors.UndefinedFunction)


class Router:
    """Chooses where a read runs: the next replica in turn, or the primary.

    ``primary`` is given to each :meth:`read` (the database's own connection method,
    which a framework integration may override); the router holds only the replicas.

    Example::

        router = Router(["postgresql://app@replica-1/app", "postgresql://app@replica-2/app"])
        router.read(lambda conn: conn.execute("SELECT 1").fetchone(), primary=db.connection)
    """

    def __init__(self, urls: Sequence[str], *, max_connections: int = 4, timeout: float = REPLICA_TIMEOUT) -> None:
        self._replicas = [_Replica(u, f"semsearch-replica-{i}", max_connections, timeout) for i, u in enumerate(urls)]
        self._turn = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def replicas(self) -> tuple[ReplicaStatus, ...]:
        return tuple(r.status() for r in self._replicas)

    def read(
        self,
        fn: Callable[[psycopg.Connection], T],
        *,
        primary: Callable[[], AbstractContextManager[psycopg.Connection]],
        fresh: bool = False,
    ) -> T:
        """``fn(conn)`` on a replica (the pinned one inside :meth:`pinned`, else the next in turn), or the primary.

        ``fn`` must only read: after a replica's failure it runs again, on the primary.
        """
        target = _PRIMARY if fresh else (getattr(self._local, "target", None) or self._choose())
        if isinstance(target, _Replica):
            pool = target.available()
            if pool is not None:
                try:
                    with pool.connection() as conn:
                        if session_settings.lent(conn):
                            conn.execute(session_settings.RESET)  # a search's time limit is not this read's
                        result = fn(conn)
                except psycopg.errors.QueryCanceled:
                    raise  # a statement timeout or a cancel: the primary would be asked the same
                except _NOT_REPLAYED:
                    pass  # a table or function the primary made and this replica has not replayed yet
                except psycopg.OperationalError as exc:
                    # refused, timed out, closed under us, or canceled by a conflict with recovery
                    target.mark_down(pool, exc)
                else:
                    target.reads += 1  # a statistic: an increment lost between threads does no harm
                    return result
        with primary() as conn:
            return fn(conn)

    @contextmanager
    def pinned(self, *, fresh: bool = False) -> Iterator[None]:
        """Make every :meth:`read` of this thread inside the block use one server (for a consistent evaluation).

        The server is the next replica in turn (the primary with ``fresh``, with no replica
        answering, and after the pinned one fails). A block inside another keeps the outer
        one's server, except that ``fresh`` always means the primary.

        Example::

            with db.router.pinned():
                col.evaluate(sample=100)      # exact and approximate answers from the same replica
        """
        outer = getattr(self._local, "target", None)
        if outer is not None and (outer is _PRIMARY or not fresh):
            yield
            return
        self._local.target = _PRIMARY if fresh else (self._choose() or _PRIMARY)
        try:
            yield
        finally:
            self._local.target = outer

    def _choose(self) -> _Replica | None:
        n = len(self._replicas)
        if n == 0:
            return None
        with self._lock:
            start, self._turn = self._turn, (self._turn + 1) % n
        for i in range(n):
            replica = self._replicas[(start + i) % n]
            if replica.available() is not None:
                return replica
        return None

    def close(self) -> None:
        for replica in self._replicas:
            replica.close()


def replica_urls(urls: Sequence[str] | None) -> list[str]:
    """Check ``connect(replicas=...)``: a list of connection URLs, each one parsed (never printed unparsed).

    >>> replica_urls(["postgresql://app@replica-1/app"])
    ['postgresql://app@replica-1/app']
    """
    if urls is None:
        return []
    if isinstance(urls, str):
        raise ConfigurationError("expected replicas as a list of URLs, got a str (wrap one URL in a list)")
    found = list(urls)
    for url in found:
        if not isinstance(url, str) or not url or redact(url) == "the database":
            shown = "a string that does not parse" if isinstance(url, str) and url else repr(url)
            raise ConfigurationError(f"expected replica URLs as postgresql:// URLs or key=value strings, got {shown}")
    return found
