"""Pages of results: ``offset``, ``score_threshold`` and a row left out (``more_like``).

A page is cut from one search for its first ``k + offset`` rows (one more when a row
is left out): the planner plans that search as any other, so the candidates, the
exact fallback and hybrid fusion cover every row up to the page's end, and page 2 of
``k=10`` is exactly rows 11-20 of ``k=20``. The threshold drops the page's rows scored
below it (scores come best first, so it only ever shortens the page).

Example::

    page = check_page(10, offset=10, score_threshold=0.3)
    page.fetch                       # 20: what the search asks the planner for
    page.cut(result)                 # rows 11-20 of it, those scoring >= 0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from semsearch.errors import InvalidInputError
from semsearch.results import SearchResult

#: the largest page end a search reaches (its ``k`` limit)
MAX_END = 10000


@dataclass(frozen=True)
class Page:
    """Which rows of a search's ranking a caller gets."""

    k: int
    offset: int = 0
    score_threshold: float | None = None
    #: a key left out of the ranking before the page is cut (the row ``more_like`` starts from)
    exclude: str | None = None

    @property
    def fetch(self) -> int:
        """The ``k`` the search runs with: the page's end, plus the row left out."""
        return self.k + self.offset + (self.exclude is not None)

    def cut(self, result: SearchResult) -> SearchResult:
        """This page of a search for :attr:`fetch` rows; ``complete`` says whether ``k`` rows are on it."""
        hits = [h for h in result.hits if h.key != self.exclude] if self.exclude is not None else list(result.hits)
        hits = hits[self.offset : self.offset + self.k]
        if self.score_threshold is not None:
            hits = [h for h in hits if h.score >= self.score_threshold]
        return SearchResult(hits=tuple(hits), k=self.k, exact=result.exact, unindexed=result.unindexed)


def check_page(k: Any, offset: Any = 0, score_threshold: Any = None, *, exclude: str | None = None) -> Page:
    """A page's arguments, checked before any round trip."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_END:
        raise InvalidInputError(f"expected k between 1 and {MAX_END}, got {k!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"expected offset as an int >= 0, got {offset!r}")
    if score_threshold is not None and (
        isinstance(score_threshold, bool)
        or not isinstance(score_threshold, (int, float))
        or not math.isfinite(score_threshold)
    ):
        raise InvalidInputError(f"expected score_threshold as a finite number or none, got {score_threshold!r}")
    page = Page(k=k, offset=offset, score_threshold=score_threshold, exclude=exclude)
    if page.fetch > MAX_END:
        extra = " + 1 (the row itself)" if exclude is not None else ""
        raise InvalidInputError(f"expected k + offset{extra} at most {MAX_END}, got {k} + {offset}{extra}")
    return page
