"""Many searches in one round trip: :meth:`Collection.search_many`.

Each query is checked and planned exactly as :meth:`Collection.search` plans it
(:func:`semsearch.searching.plan`: the same statements, settings and fallbacks); the
round trips of all of them are sent in one pipeline, behind one read of the
collection's catalog row, and answered by one ``Sync``. Query texts are embedded in
one call of the embedder. Only a two-stage search that came back short costs a second
round trip (its exact fallback, all such in one more pipeline).

Example::

    requests, todo = check_requests(dims=256, name="docs", tenant_required=False,
                                    queries=["cats", "dogs"], vectors=None, search={"k": 10, ...})
    plans = [searching.plan(layout, "docs", 1.5, None, r) for r in requests]
    rows, table = execute(conn, plans, check="docs")       # one list of rows per query
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import psycopg

from semsearch import guards, search_request, searching
from semsearch.errors import InvalidInputError

#: most queries one call takes (every one is a statement of the same pipeline)
MAX_QUERIES = 1000


def check_requests(
    *,
    dims: int,
    name: str,
    tenant_required: bool,
    queries: Sequence[str] | None,
    vectors: Any,
    search: Mapping[str, Any],
    fusion: tuple[str | None, float | None, float | None] = (None, None, None),
) -> tuple[list[search_request.Request], list[tuple[int, str]]]:
    """Every query's request, checked before any round trip, and the ``(position, text)`` still to embed.

    ``search`` holds :func:`semsearch.search_request.check_request`'s options but ``query`` and
    ``vector``; ``mode="hybrid"`` takes texts and, optionally, as many vectors.
    """
    mode = search.get("mode", "vector")
    texts = _sequence(queries, "queries") if queries is not None else None
    vecs = _vectors(vectors) if vectors is not None else None
    if texts is None and vecs is None:
        raise InvalidInputError("expected queries or vectors=, got neither")
    if mode == "vector" and texts is not None and vecs is not None:
        raise InvalidInputError("expected queries or vectors= for mode='vector', got both")
    if texts is not None and vecs is not None and len(texts) != len(vecs):
        raise InvalidInputError(f"expected one vector per query, got {len(vecs)} for {len(texts)} queries")
    n = len(texts) if texts is not None else len(vecs)  # type: ignore[arg-type]
    if not 1 <= n <= MAX_QUERIES:
        raise InvalidInputError(f"expected between 1 and {MAX_QUERIES} queries, got {n}")
    requests, todo = [], []
    for i in range(n):
        text = texts[i] if texts is not None else None
        vector = vecs[i] if vecs is not None else None
        try:
            request = search_request.check_request(
                dims=dims, name=name, tenant_required=tenant_required, query=text, vector=vector, **search
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (query at position {i})") from None
        request = search_request.with_fusion(request, *fusion)
        if request.mode != "text":
            if vector is not None:
                request = search_request.with_vector(request, vector, dims=dims)
            else:
                todo.append((i, text))
        requests.append(request)
    return requests, todo  # type: ignore[return-value]


def with_embeddings(
    requests: list[search_request.Request], todo: list[tuple[int, str]], embedded: Any, *, dims: int
) -> list[search_request.Request]:
    """The requests with the query texts' vectors, as :func:`check_requests` listed them."""
    out = list(requests)
    for (i, _), vector in zip(todo, embedded, strict=True):
        out[i] = search_request.with_vector(out[i], vector, dims=dims)
    return out


def _sequence(queries: Any, what: str) -> list[Any]:
    if isinstance(queries, (str, bytes, Mapping)) or not isinstance(queries, Sequence):
        raise InvalidInputError(f"expected {what} as a list, got {type(queries).__name__}")
    return list(queries)


def _vectors(vectors: Any) -> list[Any]:
    if isinstance(vectors, np.ndarray):
        if vectors.ndim != 2:
            raise InvalidInputError(f"expected vectors= as a 2-d array (one row per query), got shape {vectors.shape}")
        return list(vectors)
    return _sequence(vectors, "vectors=")


#: the round trip of many plans: its statements, where each plan's rows come, where the catalog read's
Batch = tuple[list[searching.Step], list[int], int | None]


def round_trip(plans: Sequence[searching.SearchPlan], check: str | None) -> Batch:
    """Every plan's steps (:func:`semsearch.searching.round_trip`), the catalog ``check`` with the first."""
    steps: list[searching.Step] = []
    last, check_at = [], None
    for i, p in enumerate(plans):
        got = searching.round_trip(p, check if i == 0 else None)
        if i == 0 and check is not None:
            check_at = len(got) - 2
        steps.extend(got)
        last.append(len(steps) - 1)
    return steps, last, check_at


def fallbacks(
    plans: Sequence[searching.SearchPlan], results: list[list[tuple[Any, ...]]]
) -> list[tuple[int, list[searching.Step]]]:
    """The exact statements (with their settings) of the two-stage searches that came back short, by position."""
    found = [(i, searching.fallback(p, rows)) for i, (p, rows) in enumerate(zip(plans, results, strict=True))]
    return [(i, steps) for i, steps in found if steps]


def execute(
    conn: psycopg.Connection, plans: Sequence[searching.SearchPlan], *, check: str | None
) -> tuple[list[list[tuple[Any, ...]]], guards.Checked | None]:
    """Run the plans in one pipeline (one round trip); ``(rows per plan, found)`` as :func:`search.execute`."""
    steps, last, check_at = round_trip(plans, check)
    prepare = not any(p.distributed for p in plans)
    with nullcontext() if prepare else conn.transaction():
        with conn.pipeline():
            curs = [conn.execute(stmt, params, prepare=prepare) for stmt, params in steps]
        results = [curs[i].fetchall() for i in last]
        found = guards.checked(curs[check_at].fetchone()) if check_at is not None else None
        again = fallbacks(plans, results)
        if again:
            with conn.pipeline():
                more = [[conn.execute(*step, prepare=prepare) for step in steps][-1] for _, steps in again]
            for (i, _), cur in zip(again, more, strict=True):
                results[i] = cur.fetchall()
    return results, found
