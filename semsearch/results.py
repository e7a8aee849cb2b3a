"""Search results: :class:`Hit` and :class:`SearchResult`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload


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
