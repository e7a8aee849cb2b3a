"""An edit of documents as rows: each document split into passage rows, and what the edit removes.

Adding a document (new or edited) writes its passages ``<key>#0..n-1`` in one transaction
with the statement :func:`vanished_statement` makes: it deletes the document's stored
passages whose key is no longer among them (the document got shorter). Which passages are
embedded is decided by content hash as for any row (:func:`semsearch.ingest.to_embed`): a
passage whose text is stored anywhere in the collection keeps that vector even when it moved
(another ``seq``, other offsets), so editing one paragraph embeds only the passages that
paragraph touches. Deleting a document is the same statement with no passage kept.

Nothing here does I/O.

Example::

    docs = expand(ingest.check_rows(["doc1"], [text], None), split)
    docs.rows.keys          # ['doc1#0', 'doc1#1', ...]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch.errors import InvalidInputError
from semsearch.ingest import Rows, check_keys
from semsearch.layout import Layout
from semsearch.passages import placement, tokenizers
from semsearch.passages.splitter import spans
from semsearch.results import AddResult
from semsearch.stored import MAX_GET_KEYS, Row, check_tenant


@dataclass(frozen=True)
class Documents:
    """A batch of documents as passage rows (``rows``), and the documents' keys and tenants."""

    rows: Rows
    keys: list[str]
    tenants: list[str | None]


def expand(docs: Rows, split: Any) -> Documents:
    """Split each checked document into its passage rows; nothing is sent.

    >>> expand(Rows(["d"], ["a. b."], [{}], [None]), lambda t: ["a.", "b."]).rows.keys
    ['d#0', 'd#1']
    """
    keys: list[str] = []
    contents: list[str] = []
    metadata: list[dict[str, Any]] = []
    tenants: list[str | None] = []
    for key, text, meta, tenant in zip(docs.keys, docs.contents, docs.metadata, docs.tenants, strict=True):
        if placement.PASSAGE in meta:
            raise InvalidInputError(
                f"expected metadata without the reserved key {placement.PASSAGE!r}, got it for {key!r}"
            )
        found = spans(split, text)
        if not found:
            raise InvalidInputError(f"expected a splitter to find at least one passage, got none in {key!r}")
        for seq, (start, end) in enumerate(found):
            place: dict[str, Any] = {"doc": key, "seq": seq, "start": start, "end": end}
            if seq == 0 and start > 0:
                place["lead"] = text[:start]
            following = found[seq + 1][0] if seq + 1 < len(found) else len(text)
            if following > end:
                place["gap"] = text[end:following]
            keys.append(placement.key(key, seq))
            contents.append(text[start:end])
            metadata.append({**meta, placement.PASSAGE: place})
            tenants.append(tenant)
    return Documents(Rows(keys, contents, metadata, tenants), list(docs.keys), list(docs.tenants))


def prepare(rows: Rows, split: Any, embeddings: Any, *, model: str, name: str) -> Documents | None:
    """A checked batch as passage rows when the collection has passages (None: whole rows, each checked to fit)."""
    if split is None:
        if embeddings is None:
            tokenizers.check_fits(model, rows.keys, rows.contents)
        return None
    if embeddings is not None:
        raise InvalidInputError(
            f"expected no embeddings= for collection {name!r}: its documents are split into passages, "
            "each embedded by its model"
        )
    return expand(rows, split)


def counted(rows: Rows, docs: Documents | None, written: tuple[int, int, int], embedded: int, reused: int) -> AddResult:
    """What a write did, as an :class:`AddResult` (with the passages' counts for a collection with passages)."""
    inserted, updated, deleted = written
    unchanged = len(rows.keys) - inserted - updated
    result = AddResult(inserted, updated, unchanged, embedded=embedded, reused=reused)
    if docs is None:
        return result
    return replace(
        result, documents=len(docs.keys), passages_embedded=embedded, passages_kept=reused, passages_deleted=deleted
    )


def assemble(passages: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """A document put together again from its passages' ``(text, entry)``, in ``seq`` order.

    >>> assemble([("a.", {"seq": 0, "start": 0, "end": 2, "gap": " "}), ("b.", {"seq": 1, "start": 3, "end": 5})])
    'a. b.'
    """
    out: list[str] = []
    pos = 0
    for text, place in sorted(passages, key=lambda p: p[1]["seq"]):
        start, end = place["start"], place["end"]
        if place.get("seq") == 0:
            out.append(place.get("lead", ""))
            pos = start
        if end > pos:
            out.append(text[max(pos - start, 0) :])
            pos = end
        gap = place.get("gap")
        if gap:
            out.append(gap)
            pos += len(gap)
    return "".join(out)


def vanished_statement(
    layout: Layout, documents: Sequence[str], tenants: Sequence[str | None], keep: Sequence[str]
) -> tuple[sql.Composed, dict[str, Any]]:
    """Delete the stored passages of ``documents`` whose key is not in ``keep``; its rowcount is how many.

    Each document is found by metadata containment (the table's GIN index on metadata), per tenant.
    """
    wanted = [Jsonb({placement.PASSAGE: {"doc": d}}) for d in documents]
    stmt = sql.SQL(
        "DELETE FROM {table} t USING unnest(%(docs)s::jsonb[], %(tenants)s::text[]) AS d(m, tenant) "
        "WHERE t.metadata @> d.m AND (d.tenant IS NULL OR t.tenant = d.tenant) "
        "AND NOT (t.key = ANY(%(keep)s::text[]))"
    ).format(table=layout.table)
    return stmt, {"docs": wanted, "tenants": list(tenants), "keep": list(keep)}


def deletion(keys: Any, tenant: Any) -> Any:
    """:meth:`Collection.delete` of documents by key: every passage of them; counts the documents deleted."""
    docs = check_keys(keys)
    who = check_tenant(tenant)

    def statement(layout: Layout) -> tuple[sql.Composed, dict[str, Any]]:
        stmt, params = vanished_statement(layout, docs, [who] * len(docs), [])
        counted = sql.SQL(
            "WITH gone AS ({} RETURNING t.metadata -> {} ->> 'doc' AS doc, t.tenant) "
            "SELECT count(*) FROM (SELECT DISTINCT doc, tenant FROM gone) d"
        ).format(stmt, sql.Literal(placement.PASSAGE))
        return counted, params

    return statement


def passages_statement(layout: Layout, keys: Any, tenant: Any) -> tuple[sql.Composed, dict[str, Any]]:
    """The stored passages of the documents ``keys`` (checked), to put them together again (:func:`as_documents`)."""
    documents = list(dict.fromkeys(check_keys(keys)))
    if len(documents) > MAX_GET_KEYS:
        raise InvalidInputError(f"expected at most {MAX_GET_KEYS} keys, got {len(documents)}")
    wanted = [Jsonb({placement.PASSAGE: {"doc": d}}) for d in documents]
    stmt = sql.SQL(
        "SELECT t.content, t.metadata, t.tenant, t.embedding IS NOT NULL "
        "FROM {table} t JOIN unnest(%(docs)s::jsonb[]) AS d(m) ON t.metadata @> d.m "
        "WHERE (%(tenant)s::text IS NULL OR t.tenant = %(tenant)s)"
    ).format(table=layout.table)
    return stmt, {"docs": wanted, "tenant": check_tenant(tenant), "keys": documents}


def as_documents(found: Iterable[tuple[Any, ...]], keys: Sequence[str]) -> list[Row]:
    """The rows :func:`passages_statement` read, as one :class:`Row` per document, in the order asked.

    ``embedded`` is True when every passage of the document has its vector.
    """
    by_doc: dict[tuple[str, str | None], list[tuple[str, dict[str, Any], bool]]] = {}
    for content, metadata, tenant, embedded in found:
        place = placement.entry(metadata)
        if place is not None:
            by_doc.setdefault((place["doc"], tenant), []).append((content, metadata, bool(embedded)))
    out = []
    order = {key: i for i, key in enumerate(keys)}
    for (doc, tenant), parts in sorted(by_doc.items(), key=lambda item: (order.get(item[0][0], -1), item[0][1] or "")):
        text = assemble((c, m[placement.PASSAGE]) for c, m, _ in parts)
        meta = placement.document_metadata(parts[0][1])
        out.append(Row(key=doc, content=text, metadata=meta, tenant=tenant, embedded=all(e for _, _, e in parts)))
    return out
