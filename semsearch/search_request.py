"""A search as asked, checked: :class:`Request`, made by :func:`check_request` before any round trip.

:meth:`Collection.search` (and ``search_many``, ``explain``) checks its arguments here, then adds
the query vector (:func:`with_vector`, given or embedded) and, for a hybrid search, the fusion
(:func:`with_fusion`); :mod:`semsearch.searching` then plans and runs it.

Example::

    request = check_request(dims=3, name="docs", tenant_required=False, query=None, vector=[1, 0, 0],
                            k=10, mode="vector", oversample=None, ef_search=None, exact=False,
                            where=None, tenant=None)
    request = with_vector(request, [1, 0, 0], dims=3)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from semsearch import vectors
from semsearch.errors import InvalidInputError
from semsearch.filters import Filter, compile_filter
from semsearch.planner import FUSIONS, MAX_EF, MAX_K, MAX_OVERSAMPLE
from semsearch.values import check_text

#: a search without a filter
NO_FILTER = Filter(None, None, None)


@dataclass(frozen=True)
class Request:
    """A checked search: what :meth:`Collection.search` was asked."""

    mode: str
    k: int
    vector: np.ndarray | None = None
    text: str | None = None
    oversample: float | None = None
    ef_search: int | None = None
    exact: bool = False
    filter: Filter = NO_FILTER
    tenant: str | None = None
    #: hybrid only: "rrf" or "blend" and the two weights (None: the collection's tuned or default)
    fusion: str | None = None
    vector_weight: float | None = None
    text_weight: float | None = None
    #: hybrid only: size the fused lists as for a search of this many rows (None: ``k``); a documents
    #: search's, from :func:`semsearch.passages.grouping.lists_for`
    lists_for: int | None = None
    #: text and hybrid documents searches: ``(offset, k)``, the documents whose best passage the
    #: statement highlights (:func:`semsearch.passages.grouping.snippeted`); None: none
    snippets: tuple[int, int] | None = None

    @property
    def filtered(self) -> bool:
        return self.filter != NO_FILTER or self.tenant is not None


def check_request(
    *,
    dims: int,
    name: str,
    tenant_required: bool,
    query: str | None,
    vector: Any,
    k: int,
    mode: str,
    oversample: float | None,
    ef_search: int | None,
    exact: bool,
    where: Mapping[str, Any] | None,
    tenant: str | None,
    lists_for: int | None = None,
    snippets: tuple[int, int] | None = None,
) -> Request:
    """Check a search's arguments (before any round trip); the request has no vector yet.

    A vector search (``mode`` not ``"text"``) needs :func:`with_vector` next: the given
    vector, or the query text's embedding.
    """
    if mode not in ("vector", "text", "hybrid"):
        raise InvalidInputError(f"expected mode 'vector', 'text' or 'hybrid', got {mode!r}")
    if mode != "vector" and (query is None or (vector is not None and mode == "text")):
        raise InvalidInputError(
            f"expected a query text for mode={mode!r}, got {'none' if query is None else 'a vector too'}"
        )
    if mode == "vector" and (query is None) == (vector is None):
        raise InvalidInputError(
            "expected exactly one of a query text or vector=, got " + ("both" if query is not None else "neither")
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"expected k between 1 and {MAX_K}, got {k!r}")
    if oversample is not None and (
        isinstance(oversample, bool)
        or not isinstance(oversample, (int, float))
        or not 1 <= oversample <= MAX_OVERSAMPLE
    ):
        raise InvalidInputError(f"expected oversample between 1 and {MAX_OVERSAMPLE}, got {oversample!r}")
    if ef_search is not None and (
        isinstance(ef_search, bool) or not isinstance(ef_search, int) or not 1 <= ef_search <= MAX_EF
    ):
        raise InvalidInputError(f"expected ef_search between 1 and {MAX_EF}, got {ef_search!r}")
    if tenant is None and tenant_required:
        raise InvalidInputError(f"expected tenant= for collection {name!r} (tenant_required), got none")
    if tenant is not None:
        if not isinstance(tenant, str) or not tenant:
            raise InvalidInputError(f"expected tenant as a non-empty str, got {tenant!r}")
        check_text(tenant, "a tenant")
    filt = compile_filter(where)
    if query is not None:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"expected a non-empty query text, got {query!r}")
        check_text(query, "a query text")
    return Request(
        mode=mode, k=k, text=query, oversample=oversample, ef_search=ef_search,
        exact=bool(exact), filter=filt, tenant=tenant, lists_for=lists_for, snippets=snippets,
    )  # fmt: skip


def with_vector(request: Request, vector: Any, *, dims: int) -> Request:
    """The request with its query vector (given or embedded), checked: ``dims`` unit-norm floats."""
    return replace(request, vector=vectors.check_query_vector(vector, dims=dims))


def with_fusion(
    request: Request, fusion: str | None, vector_weight: float | None, text_weight: float | None
) -> Request:
    if (fusion, vector_weight, text_weight) == (None, None, None):
        return request
    if request.mode != "hybrid":
        raise InvalidInputError(f"expected fusion and weights with mode='hybrid', got mode={request.mode!r}")
    if fusion not in (None, *FUSIONS):
        raise InvalidInputError(f"expected fusion 'rrf' or 'blend', got {fusion!r}")
    for name, w in (("vector_weight", vector_weight), ("text_weight", text_weight)):
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1000):
            raise InvalidInputError(f"expected {name} between 0 and 1000, got {w!r}")
    return replace(request, fusion=fusion, vector_weight=vector_weight, text_weight=text_weight)
