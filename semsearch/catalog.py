"""The catalog: each collection's stored definition (``semsearch.collections``), read and written.

A catalog row is data only: model, dims, storage, plan, table, tuned values and the
version of the statements its SQL functions were made with. It is checked when read
(plan, dims and table name parse; statements current), and every statement a search
runs is composed from it (:mod:`semsearch.statements`), never read from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from semsearch.collection_info import CollectionInfo
from semsearch.errors import CollectionNotFoundError, ConfigurationError, SchemaVersionError
from semsearch.layout import check_name
from semsearch.statements import STATEMENTS_VERSION

#: the newest migration of semsearch's own schema (``migrate.head()`` reads it from alembic;
#: a test keeps the two equal, so connecting needs no alembic import)
SCHEMA_HEAD = "0015"

COLUMNS = tuple(f.name for f in fields(CollectionInfo))
#: a row's values, in the order :func:`checked` reads them
ROW_VALUES = sql.SQL("{}, statements_version").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
_SELECT = sql.SQL("SELECT {} FROM semsearch.collections").format(ROW_VALUES)


def read_schema_version(fetch: Callable[[str], Any]) -> str | None:
    """The applied semsearch migration (None: not installed), through any driver.

    ``fetch(query)`` runs a query without parameters and returns its first value (or None).
    """
    if not fetch("SELECT to_regclass('semsearch.alembic_version') IS NOT NULL"):
        return None
    return fetch("SELECT version_num FROM semsearch.alembic_version")


def schema_version(conn: psycopg.Connection) -> str | None:
    """The applied semsearch migration, or None when the schema is not installed."""
    return read_schema_version(lambda query: (conn.execute(query).fetchone() or (None,))[0])


def check_schema_version(version: str | None, *, fix: str = "run `semsearch db upgrade`") -> None:
    """Refuse a database whose semsearch schema is not the one this version of semsearch needs.

    >>> check_schema_version("0001", fix="run `semsearch db upgrade`")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    semsearch.errors.SchemaVersionError: expected semsearch schema ..., got 0001: run `semsearch db upgrade`
    """
    if version != SCHEMA_HEAD:
        raise SchemaVersionError(f"expected semsearch schema {SCHEMA_HEAD}, got {version or 'none'}: {fix}")


def select_statement(name: str) -> sql.Composed:
    """The catalog row of ``name`` with its statements version, for any driver (the name is a literal)."""
    return _SELECT + sql.SQL(" WHERE name = {}").format(sql.Literal(check_name(name)))


#: every collection's row (with its statements version), by name
SELECT_ALL = _SELECT + sql.SQL(" ORDER BY name")
#: one collection's row (the name is the one parameter): what a handle's writes and searches
#: compare with the row they hold, in their own transaction or round trip (see :func:`checked`);
#: composed once into plain text (a ``Composed`` is composed again at each execute)
CHECK = sql.SQL(_SELECT.as_string(None) + " WHERE name = %s")
#: whether a collection of this name (the one parameter) exists
EXISTS = sql.SQL("SELECT 1 FROM semsearch.collections WHERE name = %s")


def checked(values: Sequence[Any] | None) -> CollectionInfo | None:
    """The row :data:`CHECK` read, as a tuple in its column order, checked (None: no such collection)."""
    if values is None:
        return None
    return CollectionInfo.from_row(dict(zip((*COLUMNS, "statements_version"), values, strict=True)))


def found(row: Mapping[Any, Any] | None, name: str) -> CollectionInfo:
    """The row :func:`select_statement` read (as a mapping), checked; none: :class:`CollectionNotFoundError`."""
    if row is None:
        raise not_found(name)
    return CollectionInfo.from_row(row)


def not_found(name: str) -> CollectionNotFoundError:
    """No collection of this name in the catalog."""
    return CollectionNotFoundError(f"expected an existing collection, got unknown {name!r}")


def read(conn: psycopg.Connection, name: str) -> CollectionInfo:
    """One collection's row; :class:`CollectionNotFoundError` when there is none."""
    return found(conn.cursor(row_factory=dict_row).execute(select_statement(name)).fetchone(), name)


def read_all(conn: psycopg.Connection) -> list[CollectionInfo]:
    """Every collection's row, by name."""
    rows = conn.cursor(row_factory=dict_row).execute(SELECT_ALL).fetchall()
    return [CollectionInfo.from_row(r) for r in rows]


def insert_statement(info: CollectionInfo) -> sql.Composed:
    """The catalog row of a new collection, made with the current statements."""
    values: dict[str, sql.Composable] = {c: sql.Literal(getattr(info, c)) for c in COLUMNS}
    values["text_config"] = sql.SQL("{}::regconfig").format(sql.Literal(info.text_config))
    values["hybrid"] = sql.Literal(Jsonb(info.hybrid) if info.hybrid is not None else None)
    values["passages"] = sql.Literal(Jsonb(info.passages) if info.passages is not None else None)
    values["statements_version"] = sql.Literal(STATEMENTS_VERSION)
    return sql.SQL("INSERT INTO semsearch.collections ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(values.values())
    )


def update_statement(name: str, **values: Any) -> sql.Composed:
    """Set some columns of one collection's row.

    >>> update_statement("movies", oversample=4.0).as_string(None)
    'UPDATE semsearch.collections SET "oversample" = 4.0 WHERE name = \\'movies\\''
    """
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ConfigurationError(f"expected catalog columns, got {sorted(unknown)}")
    return sql.SQL("UPDATE semsearch.collections SET {} WHERE name = {}").format(
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(Jsonb(v) if isinstance(v, dict) else v))
            for k, v in values.items()
        ),
        sql.Literal(check_name(name)),
    )
