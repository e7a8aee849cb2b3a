"""Search registered classes and get instances back; ``semsearch.search()`` as a table-valued function.

Example::

    from semsearch.sqlalchemy import search, search_function

    for article in search(session, Article, "brewing green tea", k=5, where={"lang": "en"}):
        print(article.semsearch_score, article.title)

    hits = search_function("articles", query_vector, 5)
    stmt = select(Article, hits.c.score).join(hits, hits.c.key == cast(Article.id, String))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import Boolean, Float, Integer, String, bindparam, cast, column, func, null, select
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableValuedAlias

from semsearch.filters import compile_filter
from semsearch.indexing import in_score_order
from semsearch.sqlalchemy.registration import registration_for


def search(
    session: Session,
    model: type,
    query: str,
    *,
    k: int = 10,
    mode: str = "vector",
    where: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    **options: Any,
) -> list[Any]:
    """The ``k`` instances of ``model`` best matching ``query``, best first, each with ``.semsearch_score``.

    The instances are loaded in one query through ``session``; rows deleted since
    they were indexed are skipped. The collection is created (empty) if no commit
    made it yet. ``mode``: ``"vector"``, ``"text"`` or
    ``"hybrid"``; ``where`` filters on the registered metadata, ``tenant`` on the
    tenant; ``options`` go to :meth:`semsearch.Collection.search` (``exact``,
    ``oversample``, ``fusion``, ...). A class registered with ``passages=`` still comes back
    once per instance, scored by its best passage, set as ``semsearch_passage``.

    Example::

        search(session, Article, "green tea", k=3, mode="hybrid", where={"lang": "en"})
    """
    reg = registration_for(model)
    col = reg.collection(session.get_bind(mapper=reg.mapper))
    result = col.search(query, k=k, mode=mode, where=where, tenant=tenant, **options)
    pks = []
    for hit in result:
        try:
            pks.append(reg.pk_value(hit.key))
        except ValueError:
            continue  # a key this model cannot have (written by other code): not one of its rows
    (pk,) = reg.mapper.primary_key
    found: Iterable[Any] = session.scalars(select(reg.model).where(pk.in_(pks))) if pks else []
    return in_score_order(result, {reg.key(obj): obj for obj in found})


def search_function(
    collection: str,
    query_vector: Any,
    k: int = 10,
    *,
    exact: bool = False,
    oversample: float | None = None,
    where: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    name: str = "hits",
) -> TableValuedAlias:
    """``semsearch.search(...)`` as a table of ``key, content, score, metadata`` to join in one ``select()``.

    ``where`` takes the same filters as Python searches (compiled to the SQL
    function's ``filter``, ``filter_path`` and ``filter_vars``); the vector is sent
    as pgvector's ``vector`` type. Keys are text: join on ``cast(Model.id, String)``.

    Example::

        hits = search_function("articles", vector, 5, where={"lang": "en"})
        rows = session.execute(
            select(Article, hits.c.score)
            .join(hits, hits.c.key == cast(Article.id, String))
            .order_by(hits.c.score.desc())
        ).all()
    """
    # imported when used: importing it teaches SQLAlchemy's reflection the vector types, process-wide
    from pgvector.sqlalchemy import VECTOR

    spec = compile_filter(where)
    vector = np.asarray(query_vector, dtype=np.float32)
    args = [
        bindparam(None, collection, type_=String),
        bindparam(None, vector, type_=VECTOR(vector.shape[-1])),
        bindparam(None, k, type_=Integer),
        bindparam(None, oversample, type_=Float) if oversample is not None else null(),
        null(),  # ef_search: the collection's own
        bindparam(None, exact, type_=Boolean),
        bindparam(None, spec.contains, type_=JSONB) if spec.contains is not None else null(),
        cast(bindparam(None, spec.path, type_=String), JSONPATH) if spec.path is not None else null(),
        bindparam(None, spec.vars, type_=JSONB) if spec.vars is not None else null(),
        bindparam(None, tenant, type_=String) if tenant is not None else null(),
    ]
    fn = func.semsearch.search(*args)
    return fn.table_valued(
        column("key", String), column("content", String), column("score", Float), column("metadata", JSONB)
    ).alias(name)
