"""The source table of a sync, checked before anything is written: its column arguments, the table, their types.

:func:`check_columns` checks ``key=``, ``text=``, ``metadata=`` and ``tenant=`` as names;
:func:`resolve` finds the table and checks each column (it exists, its type is trusted: the
triggers' functions run its output as their definer, see :mod:`semsearch.table_sync`) and that
the key is unique on its own. ``text=`` may name several columns: :func:`encode_text` is how
``semsearch.synced_tables.text_column`` stores them.

Example::

    key, text, meta, tenant = check_columns("id", ["name", "body"], ["price"], None)
    source = resolve(conn, "public.products", ["id", *text_columns(text), *meta], key)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from semsearch.errors import ConfigurationError

#: jsonb_build_object takes at most 100 arguments
MAX_METADATA_COLUMNS = 50
#: and concat_ws as many, its separator included
MAX_TEXT_COLUMNS = 50


@dataclass(frozen=True)
class Source:
    """The source table as the catalog knows it, checked: names and the types to pin."""

    oid: int
    schema: str
    name: str
    #: column -> qualified type name, for every synced column
    types: dict[str, str]

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def check_text(text: Any) -> str | tuple[str, ...]:
    """``text=`` as one column name, or a tuple of several (a list of one is that one column).

    >>> check_text(["name", "description"]), check_text(["description"])
    (('name', 'description'), 'description')
    """
    names = (text,) if isinstance(text, str) else text
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(f"expected text= as a column name or a list of them, got {text!r}")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"expected distinct text columns, got {text!r}")
    if len(names) > MAX_TEXT_COLUMNS:
        raise ConfigurationError(f"expected at most {MAX_TEXT_COLUMNS} distinct text columns, got {len(names)}")
    return names[0] if len(names) == 1 else tuple(names)


def text_columns(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """The names of ``text``'s columns, one or several."""
    return (text,) if isinstance(text, str) else text


def encode_text(text: str | tuple[str, ...]) -> str:
    """How ``text_column`` stores ``text``: one name as itself, several (or a name starting ``[``) as a JSON list.

    >>> encode_text("body"), encode_text(("name", "body"))
    ('body', '["name", "body"]')
    """
    return json.dumps(list(text_columns(text))) if not isinstance(text, str) or text.startswith("[") else text


def decode_text(stored: str) -> str | tuple[str, ...]:
    """``text_column`` back as :func:`encode_text` wrote it.

    >>> decode_text('["name", "body"]'), decode_text("body"), decode_text('["[odd"]')
    (('name', 'body'), 'body', '[odd')
    """
    if stored.startswith("["):
        try:
            names = json.loads(stored)
        except ValueError:
            return stored
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names[0] if len(names) == 1 else tuple(names)
    return stored


def check_columns(
    key: Any, text: Any, metadata: Any, tenant: Any
) -> tuple[str, str | tuple[str, ...], tuple[str, ...], str | None]:
    """The column arguments as names, before anything is looked up.

    >>> check_columns("id", "body", ["price"], None)
    ('id', 'body', ('price',), None)
    """
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"expected key= as one column name (composite keys are not supported), got {key!r}")
    text = check_text(text)
    if not isinstance(metadata, (list, tuple)) or not all(isinstance(m, str) and m for m in metadata):
        raise ConfigurationError(f"expected metadata= as a list of column names, got {metadata!r}")
    meta = tuple(metadata)
    if len(set(meta)) != len(meta) or len(meta) > MAX_METADATA_COLUMNS:
        raise ConfigurationError(f"expected at most {MAX_METADATA_COLUMNS} distinct metadata columns, got {meta!r}")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ConfigurationError(f"expected tenant= as a column name or none, got {tenant!r}")
    return key, text, meta, tenant


def resolve(conn: psycopg.Connection, table: str, columns: Sequence[str], key: str) -> Source:
    """Find the table and check every column: exists, of a trusted type; the key unique on its own."""
    if not isinstance(table, str) or not table:
        raise ConfigurationError(f"expected a table name (schema-qualified or not), got {table!r}")
    try:
        row = conn.execute(
            "SELECT c.oid::int, n.nspname, c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            [table],
        ).fetchone()
    except psycopg.errors.InvalidName as exc:
        raise ConfigurationError(f"expected a table name (schema-qualified or not), got {table!r}") from exc
    if row is None or row[3] not in ("r", "p"):
        raise ConfigurationError(f"expected an existing table, got {table!r}")
    oid, schema, name = row[0], row[1], row[2]
    if schema == "semsearch":
        raise ConfigurationError(f"expected a table outside schema semsearch, got {table!r}")
    found = conn.execute(
        # a type is trusted when a superuser or the syncing role owns it (and its element and base type):
        # the definer runs its output function and casts
        "SELECT a.attname, quote_ident(tn.nspname) || '.' || quote_ident(t.typname), t.typtype, "
        "  (SELECT bool_and(r.rolsuper OR r.oid = current_user::regrole) FROM pg_type x JOIN pg_roles r "
        "   ON r.oid = x.typowner WHERE x.oid IN (t.oid, t.typelem, t.typbasetype)) "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY(%s)",
        [oid, list(columns)],
    ).fetchall()
    types = {r[0]: r for r in found}
    for col in columns:
        if col not in types:
            raise ConfigurationError(f"expected a column of {schema}.{name}, got unknown {col!r}")
        _, tname, kind, trusted = types[col]
        if kind in ("c", "p") or not trusted:
            raise ConfigurationError(
                f"expected column {col!r} of a type owned by a superuser or by you (its output runs with the "
                f"sync's rights), got {tname}"
            )
    unique = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = i.indkey[0] WHERE i.indrelid = %s AND i.indisunique AND i.indnkeyatts = 1 "
        "AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = %s)",
        [oid, key],
    ).fetchone()
    if not unique or not unique[0]:
        raise ConfigurationError(
            f"expected key column {key!r} unique on its own (a primary key or UNIQUE of that one column), got none"
        )
    return Source(oid, schema, name, {c: types[c][1] for c in columns})
