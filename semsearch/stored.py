"""Rows by key or by filter: what ``get``, ``count`` and ``delete(where=...)`` send, checked first.

The filter is the search's: :func:`semsearch.filters.compile_filter` turns ``where=``
into the spec (containment, jsonpath, variables, tenant) whose condition
:func:`semsearch.statements.spec_filter` writes, the same condition the per-collection
search functions apply. Sync and async callers send the same statements.

Example::

    stmt, params = get_statement(layout, ["a", "b"], tenant=None)
    rows = [as_row(r) for r in conn.execute(stmt, params).fetchall()]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch import ingest, statements
from semsearch.errors import InvalidInputError
from semsearch.filters import compile_filter
from semsearch.layout import Layout
from semsearch.values import check_text

#: most keys one ``get`` takes (they travel as one array parameter)
MAX_GET_KEYS = 10000


@dataclass(frozen=True)
class Row:
    """A stored row, as :meth:`Collection.get` returns it.

    ``embedded`` is False while the row waits for :meth:`Collection.backfill` (stored
    with ``defer=True``, or its text changed and the old vector was dropped).

    Example::

        Row(key="m1", content="Toy Story", metadata={"year": 1995}, tenant=None, embedded=True)
    """

    key: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    embedded: bool = True


def check_tenant(tenant: Any) -> str | None:
    """A tenant argument: none, or a non-empty str Postgres can store."""
    if tenant is None:
        return None
    if not isinstance(tenant, str) or not tenant:
        raise InvalidInputError(f"expected tenant as a non-empty str, got {tenant!r}")
    check_text(tenant, "a tenant")
    return tenant


def spec(where: Mapping[str, Any] | None, tenant: Any) -> dict[str, Any] | None:
    """``where=`` and ``tenant=`` as the filter spec of :func:`statements.spec_filter` (None: every row)."""
    f = compile_filter(where)
    parts = {"contains": f.contains, "path": f.path, "vars": f.vars, "tenant": check_tenant(tenant)}
    return {k: v for k, v in parts.items() if v is not None} or None


def _where(s: dict[str, Any] | None) -> tuple[sql.Composable, dict[str, Any]]:
    return statements.spec_filter(sql.Placeholder("spec")), {"spec": Jsonb(s) if s is not None else None}


def get_statement(layout: Layout, keys: Any, *, tenant: Any) -> tuple[sql.Composed, dict[str, Any]]:
    """The rows with these keys, in the order asked, each once; keys not stored are absent."""
    wanted = list(dict.fromkeys(ingest.check_keys(keys)))
    if len(wanted) > MAX_GET_KEYS:
        raise InvalidInputError(f"expected at most {MAX_GET_KEYS} keys, got {len(wanted)}")
    cond, params = _where(spec(None, tenant))
    stmt = sql.SQL(
        "SELECT key, content, metadata, tenant, embedding IS NOT NULL FROM {} "
        "WHERE key = ANY(%(keys)s::text[]) AND {} ORDER BY array_position(%(keys)s::text[], key), tenant"
    ).format(layout.table, cond)
    return stmt, {"keys": wanted, **params}


def as_row(r: tuple[Any, ...]) -> Row:
    return Row(key=r[0], content=r[1], metadata=r[2], tenant=r[3], embedded=bool(r[4]))


#: a collection with passages counts its documents: distinct keys before ``#<seq>`` (per tenant)
DOCUMENTS = sql.SQL("count(DISTINCT (coalesce(metadata -> 'semsearch:passage' ->> 'doc', key), tenant))")


def count_statement(
    layout: Layout, *, where: Any, tenant: Any, documents: bool = False
) -> tuple[sql.Composed, dict[str, Any]]:
    """How many rows (embedded or pending) match ``where`` and ``tenant``.

    ``documents``: a collection with passages counts its documents (distinct keys before ``#<seq>``).
    """
    s = spec(where, tenant)
    if s is None and not documents:
        return statements.count(layout), {}
    cond, params = _where(s) if s is not None else (sql.SQL("true"), {})
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(
        DOCUMENTS if documents else sql.SQL("count(*)"), layout.table, cond
    ), params


def size_statement(layout: Layout, *, documents: bool) -> sql.Composed:
    """The table's rows and what ``count()`` says (its documents, with ``documents``), in one scan."""
    return sql.SQL("SELECT count(*), {} FROM {}").format(DOCUMENTS if documents else sql.SQL("count(*)"), layout.table)


def deletion(keys: Any, *, where: Any, tenant: Any, all_rows: bool) -> Callable[[Layout], tuple[sql.Composed, Any]]:
    """What :meth:`Collection.delete` deletes, checked now; composed for the layout the write finds.

    By keys, or the rows a filter keeps; a filter is refused without one unless ``all_rows``
    (an empty ``where={}`` is no filter: it would delete every row, so it is refused too).
    """
    if keys is not None:
        if where is not None or tenant is not None or all_rows:
            raise InvalidInputError("expected keys or where=/tenant=/all_rows=True to delete by, got both")
        keys_s = ingest.check_keys(keys)
        return lambda layout: (ingest.delete_statement(layout), [keys_s])
    if all_rows:
        if where is not None or tenant is not None:
            raise InvalidInputError("expected all_rows=True without where= or tenant=, got both")
        return lambda layout: (sql.SQL("DELETE FROM {}").format(layout.table), {})
    if where is not None and not isinstance(where, Mapping):
        raise InvalidInputError(f"expected where= as a dict, got {type(where).__name__}")
    if not where and tenant is None:
        raise InvalidInputError(
            f"expected keys, a non-empty where= or tenant= to delete by (all_rows=True deletes every row), got "
            f"{'where=' + repr(where) if where is not None else 'none'}"
        )
    cond, params = _where(spec(where, tenant))
    return lambda layout: (sql.SQL("DELETE FROM {} WHERE {}").format(layout.table, cond), params)


def vector_statement(layout: Layout, key: Any, *, tenant: Any) -> tuple[sql.Composed, dict[str, Any]]:
    """A stored row's full vector (``(vector or None,)``; no row: none), for :meth:`Collection.more_like`."""
    cond, params = _where(spec(None, tenant))
    stmt = sql.SQL("SELECT embedding::vector FROM {} WHERE key = %(key)s AND {} LIMIT 1").format(layout.table, cond)
    return stmt, {"key": ingest.check_key(key), **params}


def stored_vector(found: tuple[Any, ...] | None, key: str, name: str) -> Any:
    """The vector :func:`vector_statement` found, or the error that says why there is none."""
    if found is None:
        raise InvalidInputError(f"expected a key stored in collection {name!r}, got {key!r}")
    if found[0] is None:
        raise InvalidInputError(
            f"expected an embedded row, got {key!r} waiting for an embedding: run `semsearch backfill {name}`"
        )
    return found[0].to_numpy()
