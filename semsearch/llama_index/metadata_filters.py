"""LlamaIndex ``MetadataFilters`` as a semsearch filter (:mod:`semsearch.filters`), refused before any round trip.

Each operator keeps the nodes LlamaIndex's own in-memory ``SimpleVectorStore`` keeps:

==================  =========================================================================
``EQ NE``           ``$eq`` / ``$ne``; ``NE`` also keeps nodes without the field (or null)
``GT GTE LT LTE``   ``$gt $gte $lt $lte`` (a node without the field is not kept)
``IN NIN``          ``$in`` / ``$nin`` of a list; ``NIN`` also keeps nodes without the field
``CONTAINS``        ``$contains``: a list field holds the value
``ANY ALL``         the list field holds any / all of the values (``$contains`` under ``$or``/``$and``)
``AND OR NOT``      ``$and`` / ``$or`` / ``$not`` of ``$or`` (NOT: none of its filters match),
                    nested ``MetadataFilters`` too
==================  =========================================================================

``TEXT_MATCH``, ``TEXT_MATCH_INSENSITIVE`` (substrings) and ``IS_EMPTY`` (an empty list) have
no semsearch filter: they raise :class:`~semsearch.errors.InvalidInputError` (search the text with
``VectorStoreQueryMode.TEXT_SEARCH`` instead). Field names follow semsearch's rules (letters,
digits and ``_``, dotted for nested objects); values its limits (:mod:`semsearch.filters`).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from semsearch.errors import InvalidInputError

_COMPARE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.CONTAINS: "$contains",
}
_LISTS = {FilterOperator.IN: "$in", FilterOperator.NIN: "$nin", FilterOperator.ANY: "$or", FilterOperator.ALL: "$and"}
_JOIN = {FilterCondition.AND: "$and", FilterCondition.OR: "$or", FilterCondition.NOT: "$or"}


def to_where(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """``filters`` as ``where=`` of a semsearch search, count or delete (None: no filter).

    Example::

        to_where(MetadataFilters(filters=[
            MetadataFilter(key="year", value=2000, operator=FilterOperator.GTE),
            MetadataFilter(key="lang", value=["en", "es"], operator=FilterOperator.IN),
        ]))
        # {'$and': [{'year': {'$gte': 2000}}, {'lang': {'$in': ['en', 'es']}}]}
    """
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise InvalidInputError(f"expected llama_index MetadataFilters, got {type(filters).__name__}")
    return _group(filters)


def _group(filters: MetadataFilters) -> dict[str, Any] | None:
    parts = [p for p in (_part(f) for f in filters.filters) if p is not None]
    condition = filters.condition or FilterCondition.AND
    if condition not in _JOIN:
        raise InvalidInputError(f"expected a filter condition and, or or not, got {condition!r}")
    if not parts:
        return None
    joined = parts[0] if len(parts) == 1 else {_JOIN[condition]: parts}
    return {"$not": joined} if condition == FilterCondition.NOT else joined


def _part(f: MetadataFilter | MetadataFilters) -> dict[str, Any] | None:
    if isinstance(f, MetadataFilters):
        return _group(f)
    op, key, value = f.operator, f.key, f.value
    if op in _COMPARE:
        if isinstance(value, list):
            raise InvalidInputError(f"expected one value for {op.name} on {key!r}, got a list")
        where = {key: {_COMPARE[op]: value}}
        # LlamaIndex keeps a node without the field for != (its SimpleVectorStore does)
        return {"$or": [where, {key: None}]} if op == FilterOperator.NE and value is not None else where
    if op in _LISTS:
        if not isinstance(value, list) or not value:
            raise InvalidInputError(f"expected a non-empty list for {op.name} on {key!r}, got {value!r}")
        if op == FilterOperator.IN:
            return {key: {"$in": value}}
        if op == FilterOperator.NIN:
            return {"$or": [{key: {"$nin": value}}, {key: None}]}
        return {_LISTS[op]: [{key: {"$contains": v}} for v in value]}
    raise InvalidInputError(
        f"expected a filter operator semsearch can run (==, !=, >, >=, <, <=, in, nin, contains, any, all), "
        f"got {op.value!r} on {key!r}; for words in the text use VectorStoreQueryMode.TEXT_SEARCH"
    )
