"""Passages found, grouped into documents: the best ``k`` distinct documents, each with its passages.

A search of a collection with passages ranks passages. To return ``k`` documents it asks
for :func:`first_fetch` passages and, while fewer than ``k`` distinct documents came back
although more passages exist, for more (:func:`widen`: 4x each time, up to the search's
``k`` limit); a hybrid one fuses lists of that many passages each (:func:`lists_for`).
:func:`documents` then keeps each document once, at its best passage's
score, with the passages of it found, best first. The SQL functions
``semsearch.search_documents`` (migration 0010) and ``search()``, ``text_search()``,
``hybrid_search()``, ``more_like()`` (0013, through ``semsearch.search_documents_of``) follow
the same rules. A text or hybrid search highlights its page's documents in its own statement
(:func:`snippeted`). ``search_many`` widens
each query's search so, and ``more_like(key)`` searches with the mean of the document's passage
vectors (:func:`document_vector_statement`), leaving the document out (:func:`ranked`).

Nothing here does I/O.

Example::

    fetch = first_fetch(10)
    while (more := widen(fetch, got=len(result), distinct=distinct(result), want=10)) is not None: ...
    documents(result, k=10)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from semsearch.layout import Layout
from semsearch.paging import Page
from semsearch.passages import placement
from semsearch.planner import MAX_K
from semsearch.results import Hit, Passage, SearchResult


def first_fetch(want: int) -> int:
    """How many passages the first search asks for, to find ``want`` documents.

    >>> first_fetch(10)
    40
    """
    return min(MAX_K, max(want * 4, 40))


def widen(fetch: int, *, got: int, distinct: int, want: int) -> int | None:
    """How many passages to ask for next, or None when the search has its documents (or all there are).

    >>> widen(40, got=40, distinct=3, want=10)
    160
    >>> widen(40, got=25, distinct=3, want=10) is None     # every matching passage was found
    True
    """
    if distinct >= want or got < fetch or fetch >= MAX_K:
        return None
    return min(MAX_K, fetch * 4)


def lists_for(fetch: int) -> int:
    """A documents hybrid search of ``fetch`` passages fuses lists sized as for ``fetch / 4`` rows.

    Its lists then hold ``fetch`` passages each, 4x the documents it wants, as a row search's
    lists hold 4x the rows it wants (:func:`semsearch.planner.hybrid`), not 4x the passages
    fetched: measured in bench/documents.py, the same nDCG in less time.

    >>> lists_for(40), lists_for(160)
    (10, 40)
    """
    return max(1, fetch // 4)


def document_of(hit: Hit) -> str:
    """The key of the document a passage hit belongs to (a row that is no passage is its own)."""
    place = placement.entry(hit.metadata)
    return str(place["doc"]) if place is not None else hit.key


def distinct(result: SearchResult) -> int:
    """How many distinct documents a passage search found."""
    return len({document_of(h) for h in result.hits})


def passage_of(hit: Hit) -> Passage | None:
    place = placement.entry(hit.metadata)
    if place is None:
        return None
    seq, start, end = int(place["seq"]), int(place["start"]), int(place["end"])
    return Passage(seq=seq, start=start, end=end, text=hit.content, score=hit.score)


def passage_hits(result: SearchResult, *, k: int, offset: int = 0) -> SearchResult:
    """Passage-level hits: ``key`` is the document's, ``passage`` the passage, metadata the document's."""
    hits = tuple(
        Hit(
            key=document_of(h),
            content=h.content,
            score=h.score,
            metadata=placement.document_metadata(h.metadata),
            passage=passage_of(h),
        )
        for h in result.hits[offset : offset + k]
    )
    return SearchResult(hits=hits, k=k, exact=result.exact, unindexed=result.unindexed)


def documents(result: SearchResult, *, k: int, offset: int = 0, score_threshold: float | None = None) -> SearchResult:
    """Each document once, best first, scored by its best passage, with the passages of it found.

    >>> at = lambda doc, seq: {placement.PASSAGE: {"doc": doc, "seq": seq, "start": 0, "end": 1}}
    >>> found = (Hit("a#0", "t", 0.9, at("a", 0)), Hit("a#1", "t", 0.8, at("a", 1)), Hit("b#0", "t", 0.7, at("b", 0)))
    >>> r = documents(SearchResult(found, k=3), k=2)
    >>> [(d.key, len(d.passages)) for d in r]
    [('a', 2), ('b', 1)]
    """
    grouped: dict[str, list[Hit]] = {}
    for h in result.hits:  # best first: a document's first hit is its best
        grouped.setdefault(document_of(h), []).append(h)
    hits = []
    for doc, found in grouped.items():
        best = found[0]
        passages = tuple(p for p in map(passage_of, found) if p is not None)
        metadata = placement.document_metadata(best.metadata)
        hits.append(
            Hit(key=doc, content=best.content, score=best.score, metadata=metadata, passages=passages,
                snippet=best.snippet)
        )  # fmt: skip
    page = hits[offset : offset + k]
    if score_threshold is not None:
        page = [h for h in page if h.score >= score_threshold]
    return SearchResult(hits=tuple(page), k=k, exact=result.exact, unindexed=result.unindexed)


def ranked(found: SearchResult, page: Page, *, passages: bool) -> SearchResult:
    """The page of documents (``passages``: of passages) in the passages a search found, best first.

    Every passage of the document ``page.exclude`` (the one ``more_like`` starts from) is left out.
    """
    if page.exclude is not None:
        kept = tuple(h for h in found.hits if document_of(h) != page.exclude)
        found = SearchResult(hits=kept, k=found.k, exact=found.exact, unindexed=found.unindexed)
    if passages:
        return passage_hits(page.cut(found), k=page.k)
    return documents(found, k=page.k, offset=page.offset, score_threshold=page.score_threshold)


def document_vector_statement(layout: Layout, key: str, *, tenant: str | None) -> tuple[sql.Composed, dict[str, Any]]:
    """The mean of a document's embedded passage vectors and its number of passages (no row: no such document).

    The mean is None while none of its passages is embedded (``semsearch.stored.stored_vector`` says so).
    """
    stmt = sql.SQL(
        "SELECT avg(t.embedding::vector), count(*) FROM {table} t WHERE t.metadata @> %(doc)s "
        "AND (%(tenant)s::text IS NULL OR t.tenant = %(tenant)s) HAVING count(*) > 0"
    ).format(table=layout.table)
    return stmt, {"doc": Jsonb({placement.PASSAGE: {"doc": key}}), "tenant": tenant}


#: ts_headline's options for a hit's snippet
HEADLINE = "MaxFragments=2, MinWords=8, MaxWords=30"


def _headline(text_config: str, text: sql.Composable, query: sql.Composable) -> sql.Composed:
    """``text`` with ``query``'s words highlighted (``ts_headline``; the words OR-ed, as BM25 matches them)."""
    return sql.SQL(
        "ts_headline({cfg}::regconfig, {t}, coalesce(("
        "SELECT string_agg(quote_literal(w.lexeme), ' | ')::tsquery "
        "FROM unnest(to_tsvector({cfg}::regconfig, {q})) w), ''::tsquery), {opts})"
    ).format(cfg=sql.Literal(text_config), t=text, q=query, opts=sql.Literal(HEADLINE))


def snippet_statement(text_config: str, queries: list[str], texts: list[str]) -> tuple[sql.Composed, dict[str, Any]]:
    """Each text with its query's words highlighted (``ts_headline``; the words OR-ed, as BM25 matches them)."""
    stmt = sql.SQL(
        "SELECT {headline} FROM unnest(%(q)s::text[], %(texts)s::text[]) WITH ORDINALITY AS x(q, t, i) ORDER BY x.i"
    ).format(headline=_headline(text_config, sql.SQL("x.t"), sql.SQL("x.q")))
    return stmt, {"q": queries, "texts": texts}


def snippeted(stmt: sql.Composable, text_config: str, *, query: sql.Composable) -> sql.Composed:
    """A passage search ``stmt`` whose statement also highlights the best passage of the documents shown.

    ``stmt`` returns passages ``(key, content, score, metadata)``, best first; the statement returns
    them in that order with a fifth column, ``snippet``: for the best passage of each document ranked
    after ``%(snip_from)s`` and up to ``%(snip_to)s`` (as :func:`documents` ranks them), its text with
    ``query``'s words highlighted, else NULL. ``ts_headline`` then runs for the page's documents only,
    in the search's own round trip.
    """
    return sql.SQL(
        "WITH f AS MATERIALIZED (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS ord, "
        "coalesce(h.metadata -> {p} ->> 'doc', h.key) AS doc FROM ({stmt}) h),\n"
        "d AS (SELECT f.doc, min(f.ord) AS best, row_number() OVER (ORDER BY min(f.ord)) AS rank\n"
        "      FROM f GROUP BY f.doc)\n"
        "SELECT f.key, f.content, f.score, f.metadata, CASE WHEN d.rank > %(snip_from)s::int "
        "AND d.rank <= %(snip_to)s::int AND f.ord = d.best THEN {headline} END AS snippet\n"
        "FROM f JOIN d ON d.doc = f.doc ORDER BY f.ord"
    ).format(p=sql.Literal(placement.PASSAGE), stmt=stmt, headline=_headline(text_config, sql.SQL("f.content"), query))


def with_snippets(result: SearchResult, snippets: list[str]) -> SearchResult:
    """The hits with the highlighted text of their best passage (``snippets``: one per hit, in order)."""
    hits = tuple(replace(h, snippet=s) for h, s in zip(result.hits, snippets, strict=True))
    return SearchResult(hits=hits, k=result.k, exact=result.exact, unindexed=result.unindexed)
