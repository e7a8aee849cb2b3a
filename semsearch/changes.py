"""Running a collection's DDL changes: one at a time (an advisory lock per name, polled), index builds in steps, grants.

The statements come from :mod:`semsearch.ddl` (no I/O there); this module runs them on a connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg import sql

from semsearch.collection_info import CollectionInfo
from semsearch.ddl import IndexBuild, grant_statements
from semsearch.errors import ConfigurationError

#: one DDL change of a collection (the name, the one parameter) at a time: polled, then released
TRY_LOCK = sql.SQL("SELECT pg_try_advisory_lock(hashtext('semsearch.ddl'), hashtext(%s))")
UNLOCK = sql.SQL("SELECT pg_advisory_unlock(hashtext('semsearch.ddl'), hashtext(%s))")
#: how long a DDL change waits between two tries of :data:`TRY_LOCK`
LOCK_POLL_SECONDS = 0.2


@contextmanager
def ddl_lock(conn: psycopg.Connection[Any], name: str) -> Iterator[None]:
    """One DDL change of a collection at a time: a second waits, then finds the first one's result.

    Example::

        with ddl_lock(conn, "docs"), conn.transaction():
            ...
    """
    # polled, not waited for: a statement waiting on the lock would hold a snapshot, and the
    # holder's CREATE INDEX CONCURRENTLY waits for every snapshot to end (a deadlock)
    while not conn.execute(TRY_LOCK, [name]).fetchone()[0]:  # type: ignore[index]
        time.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        conn.execute(UNLOCK, [name])


def run_index_build(conn: psycopg.Connection[Any], name: str, steps: IndexBuild) -> None:
    """Run :func:`semsearch.ddl.index_build`'s steps for collection ``name``: build, restore settings, swap.

    Example::

        with db.connection() as conn:
            run_index_build(conn, "movies", ddl.index_build(info, concurrently=True))
    """
    with ddl_lock(conn, name), nullcontext() if steps.concurrently else conn.transaction():
        for stmt in steps.prepare:
            conn.execute(stmt)
        try:
            for stmt in steps.build:
                conn.execute(stmt)
        finally:
            for stmt in steps.restore:
                conn.execute(stmt)
        with conn.transaction():
            for stmt in steps.swap:
                conn.execute(stmt)


def grant(conn: psycopg.Connection[Any], info: CollectionInfo, role: str, *, write: bool) -> None:
    """Run :func:`semsearch.ddl.grant_statements` for an existing ``role`` (one transaction)."""
    if not isinstance(role, str) or not role:
        raise ConfigurationError(f"expected a role name, got {role!r}")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            raise ConfigurationError(f"expected an existing role, got unknown {role!r}")
        for stmt in grant_statements(info, role, write=write):
            conn.execute(stmt)


#: the table privileges a grant can carry over (checked before they are composed into a GRANT)
_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"})
_GRANTS = sql.SQL(
    "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type "
    "FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner"
)


def copy_grants(conn: psycopg.Connection[Any], source: str, target: sql.Identifier) -> int:
    """Grant on ``target`` what others hold on table ``source`` (schema-qualified name); how many grants.

    A table that replaces another (migrate-model's switch) keeps its readers and writers.
    """
    grants = conn.execute(_GRANTS, [source]).fetchall()
    for role, privilege in grants:
        if privilege not in _PRIVILEGES:
            continue
        who = sql.SQL("PUBLIC") if role is None else sql.Identifier(role)
        conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), target, who))
    return len(grants)
