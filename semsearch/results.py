"""What calls return: a search (:class:`Hit`, :class:`SearchResult`), a write (:class:`AddResult`), a tune."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, overload


@dataclass(frozen=True)
class Passage:
    """One passage of a document (a collection made with ``passages=``): where it is and how it scored.

    ``start``/``end`` are character offsets into the document (``document[start:end] == text``);
    ``seq`` is its position among the document's passages, from 0.

    Example::

        Passage(seq=3, start=1200, end=1890, text="Cats purr when ...", score=0.71)
    """

    seq: int
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Hit:
    """One search result, best first. What ``score`` means depends on the search:

    - vector search: the cosine similarity of the full vectors (exact, whatever the plan);
    - ``mode="text"``: BM25 over the collection's own statistics (unbounded, comparable
      only within one query);
    - ``mode="hybrid"``: the fused value: ``blend`` sums each list's score scaled to
      [0, 1] within that list, times its weight; ``rrf`` sums ``weight / (60 + rank)``.

    Example::

        Hit(key="m1", content="Toy Story", score=0.82, metadata={"year": 1995})
    """

    key: str
    content: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    #: a document hit (collections with passages): the passages of it the search found, best first;
    #: ``content`` is the best one's text and ``score`` its score
    passages: tuple[Passage, ...] = ()
    #: a passage-level hit (``search(..., passages=True)``): the passage; ``key`` is its document's key
    passage: Passage | None = None
    #: text and hybrid searches of a collection with passages: the best passage with the query's
    #: words highlighted (Postgres' ``ts_headline``: ``<b>...</b>``)
    snippet: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The hit as a JSON-ready dict; the passage fields only when set (a collection with passages).

        >>> Hit("m1", "Toy Story", 0.82).to_dict()
        {'key': 'm1', 'content': 'Toy Story', 'score': 0.82, 'metadata': {}}
        """
        out = asdict(self)
        for name in ("passages", "passage", "snippet"):
            if not out[name]:
                del out[name]
        return out


@dataclass(frozen=True)
class SearchResult(Sequence[Hit]):
    """The hits of one search, best first, and whether all ``k`` were found.

    ``complete`` is False only when fewer than ``k`` rows exist (or match the
    filter, or score at least ``score_threshold``): an approximate pass that came
    back short is re-run exactly before this is decided. ``unindexed`` is True when a vector
    search found no valid HNSW index and scanned every row (an
    :class:`~semsearch.errors.UnindexedWarning` says so too).

    Example::

        result = col.search("cats", k=5)
        if not result.complete:
            print(f"only {len(result)} of {result.k} rows exist")
        best = result[0].key
    """

    hits: tuple[Hit, ...]
    k: int
    exact: bool = False
    unindexed: bool = False

    @property
    def complete(self) -> bool:
        return len(self.hits) >= self.k

    @property
    def keys(self) -> list[str]:
        return [h.key for h in self.hits]

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    @overload
    def __getitem__(self, i: int) -> Hit: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Hit]: ...
    def __getitem__(self, i: int | slice) -> Hit | Sequence[Hit]:
        return self.hits[i]


@dataclass(frozen=True)
class TunePoint:
    """One measured setting. ``ef_search`` None is automatic: max(40, candidates)."""

    oversample: float
    ef_search: int | None
    candidates: int
    recall: float
    p50_ms: float


@dataclass(frozen=True)
class TuneResult:
    """What :func:`semsearch.tune.tune` chose and stored, what it measured there, and every point it tried.

    Example::

        result = col.tune(target_recall=0.95)
        result.reached, result.oversample, result.recall, result.tried[0]
    """

    collection: str
    target: float
    k: int
    reached: bool
    oversample: float
    ef_search: int | None
    candidates: int
    recall: float
    p50_ms: float
    queries: int
    rows: int
    previous_oversample: float
    previous_ef_search: int | None
    tried: tuple[TunePoint, ...]
    #: the stored oversample is the measured one times this (automatic tuning's headroom)
    margin: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        ef = "auto" if self.ef_search is None else self.ef_search
        verdict = "reached" if self.reached else "NOT reached (stored the best found)"
        if self.margin != 1.0:
            verdict += f", stored x{self.margin:g}"
        return (
            f"{self.collection}: oversample {self.oversample:g} ({self.candidates} candidates), "
            f"ef_search {ef}: recall@{self.k} {self.recall:.4f}, p50 {self.p50_ms:.2f} ms; "
            f"target {self.target:g} {verdict}; {self.queries} queries, {self.rows:,} rows, "
            f"{len(self.tried)} settings tried (was oversample {self.previous_oversample:g})"
        )


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Collection.add` did.

    ``embedded`` texts went to the embedder; ``reused`` took the stored vector of
    an identical text; ``unchanged`` rows were already stored exactly so. In a collection
    with passages the rows are passages: ``documents`` were split into them,
    ``passages_embedded`` went to the embedder, ``passages_kept`` kept a stored vector (same
    content hash, wherever the passage moved) and ``passages_deleted`` vanished from an edited
    document.

    Example::

        result = col.add(keys=["doc1"], contents=[edited_text])
        result.passages_embedded, result.passages_kept, result.passages_deleted   # (1, 41, 0)
    """

    inserted: int
    updated: int
    unchanged: int
    embedded: int = 0
    reused: int = 0
    #: what the automatic tuning after this load chose (see :func:`semsearch.tune.autotune`), if it ran
    tuned: TuneResult | None = None
    documents: int = 0
    passages_embedded: int = 0
    passages_kept: int = 0
    passages_deleted: int = 0

    def __add__(self, other: AddResult) -> AddResult:
        """Counts of two loads together (the later tuning wins).

        >>> (AddResult(1, 0, 2, embedded=1) + AddResult(3, 1, 0, reused=2)).inserted
        4
        """
        return AddResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            embedded=self.embedded + other.embedded,
            reused=self.reused + other.reused,
            tuned=other.tuned or self.tuned,
            documents=self.documents + other.documents,
            passages_embedded=self.passages_embedded + other.passages_embedded,
            passages_kept=self.passages_kept + other.passages_kept,
            passages_deleted=self.passages_deleted + other.passages_deleted,
        )
