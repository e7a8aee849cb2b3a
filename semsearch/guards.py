"""What a search's round trip checks besides its rows, and what its failures mean.

:func:`semsearch.searching.round_trip` pipelines :data:`CHECK` before the statement: the
collection's catalog row (which a handle follows: an alter, a model switch, a drop; see
:mod:`semsearch.handle`) and whether its table's HNSW index is there and valid (a bulk load
or a build killed before it finished leaves none: searches then scan every row, and say so
with an :class:`~semsearch.errors.UnindexedWarning`). The sync and async collections
turn the answers and the driver's errors into semsearch's.

A search by ``tenant=`` that found nothing asks one more question (:func:`asks_for_tenants`,
:func:`any_tenant`): does any row have a tenant? If none does, the tenant was never going to
match (a ``"tenant"`` field stored as metadata, say), and :func:`check_tenants` says so instead of
an empty result. Only an empty search pays that round trip, an index-only look at the
collection's partial tenant index.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from semsearch import catalog
from semsearch.collection_info import CollectionInfo
from semsearch.errors import (
    CollectionNotFoundError,
    DatabaseError,
    InvalidInputError,
    SearchTimeoutError,
    UnindexedWarning,
)

#: the collection's catalog row (the values :data:`catalog.CHECK` reads), then whether ``<table>_hnsw``
#: exists and is valid (catalog reads: any role that can search may run it, on a replica too);
#: composed once into plain text (a ``Composed`` is composed again at each execute)
CHECK = sql.SQL(
    sql.SQL(
        "SELECT {}, coalesce((SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i "
        "WHERE i.indexrelid = to_regclass('semsearch.' || quote_ident(table_name || '_hnsw'))), false) "
        "FROM semsearch.collections WHERE name = %s"
    )
    .format(catalog.ROW_VALUES)
    .as_string(None)
)


@dataclass(frozen=True)
class Checked:
    """What :data:`CHECK` found: the catalog row's values (None: dropped), and its index's state."""

    row: tuple[Any, ...] | None
    indexed: bool


def checked(found: Sequence[Any] | None) -> Checked:
    """:data:`CHECK`'s row as :class:`Checked`."""
    return Checked(tuple(found[:-1]), bool(found[-1])) if found else Checked(None, False)


def scans_unindexed(mode: str, exact: bool, indexed: bool) -> bool:
    """Whether a search of this ``mode`` ran without the HNSW index it should have used."""
    return not indexed and mode != "text" and not exact


def warn_unindexed(name: str) -> None:
    """Say that a vector search scanned every row for want of a valid HNSW index."""
    warnings.warn(
        f"expected collection {name!r} to have a valid hnsw index, got none: this search scanned every row "
        f"(a bulk load is under way, or one was killed: `semsearch doctor {name} --repair` builds it)",
        UnindexedWarning,
        stacklevel=3,
    )


def dropped(name: str) -> CollectionNotFoundError:
    """The handle's collection was dropped since it read its catalog row.

    Found by the round trip's ``check``, or by the SQL functions (they go by name), whose
    ``unknown collection`` error (UndefinedObject) a caller turns into this one.
    """
    return CollectionNotFoundError(f"expected an existing collection, got {name!r} dropped")


def unanswered(exc: Exception) -> DatabaseError:
    """A search whose connection failed twice (the server restarted, failed over, timed out)."""
    return DatabaseError(f"expected the server to answer the search, got: {str(exc).strip()}")


def timed_out(exc: Exception, timeout: float | None) -> SearchTimeoutError:
    """A search the server canceled: past ``search_timeout``, or by an operator (``pg_cancel_backend``)."""
    limit = "no search_timeout" if timeout is None else f"search_timeout={timeout:g} s"
    return SearchTimeoutError(
        f"expected the search to finish within its time limit ({limit}), got it canceled by the server: "
        f"{str(exc).strip()}; narrow the filter, or raise search_timeout= (connect) or SEMSEARCH_SEARCH_TIMEOUT"
    )


def asks_for_tenants(info: CollectionInfo, tenant: str | None, rows: Sequence[Any]) -> bool:
    """Whether a search by ``tenant`` that returned ``rows`` must ask if any row has a tenant.

    Not when it found rows, nor when the collection holds tenants by definition (tenants
    required, isolated, or the Citus distribution column), where an empty result is the
    tenant's own (and isolation hides other tenants' rows from the question anyway).

    Example::

        if asks_for_tenants(col.info, "acme", rows):
            check_tenants(col.name, "acme", conn.execute(any_tenant(col.info)).fetchone())
    """
    return (
        tenant is not None
        and not rows
        and not info.tenant_required
        and info.tenant_setting is None
        and not info.layout.tenant_in_key
    )


def any_tenant(info: CollectionInfo) -> sql.Composed:
    """Whether any row of the collection has a tenant (its partial index on ``tenant`` answers)."""
    return sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE tenant IS NOT NULL)").format(info.layout.table)


def check_tenants(name: str, tenant: str | None, found: Sequence[Any] | None) -> None:
    """Raise when :func:`any_tenant` ``found`` no row with a tenant: ``tenant=`` could never match."""
    if not (found and found[0]):
        raise InvalidInputError(
            f"expected rows with tenants to search collection {name!r} with tenant={tenant!r}, got none with a "
            'tenant (rows get one from add(..., tenant=), a "tenant" key of add_many, ingest\'s tenant field)'
        )
