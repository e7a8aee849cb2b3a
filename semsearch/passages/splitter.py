"""Splitting a document into passages: the default :class:`Splitter` and any other splitter, as spans.

A passage is a span ``(start, end)`` of character offsets into its document. The default
splitter keeps paragraphs whole, then sentences, and packs them into passages of at most
``max_tokens`` of the collection's embedder's tokens (:mod:`semsearch.passages.tokenizers`).
Its boundaries stay put when a document is edited, so an edit re-embeds only the passages it
touches: a passage never spans two paragraphs (a small one, a heading or a one-liner, joins
the next), a paragraph longer than a passage is cut between sentences, each passage after the
first opening with up to ``overlap`` tokens of the previous one's last sentences, and where
such a cut falls depends on the sentences around it alone (see :func:`_pack`). Any other
splitter is accepted as it is: a callable ``text -> list[str]`` or ``list[(start, end)]``, or
an object with ``split_text`` (LangChain's text splitters; no LangChain import here). Strings
are found in the document in order, so their offsets are exact; a string that is not a piece
of the document is refused.

Nothing here does I/O.

Example::

    split = Splitter(max_tokens=200, overlap=20).for_model("local")
    [text[s:e] for s, e in split(text)]
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from semsearch.embeddings.models import lookup
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.passages import tokenizers

#: a document's passages as character spans, in order
Spans = list[tuple[int, int]]
#: what a collection splits documents with: text -> spans
Split = Callable[[str], Spans]

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?…。])[\"')\]]*\s+")
_WORD = re.compile(r"\S+")
#: a passage may end after one unit in this many (those whose text's CRC-32 is a multiple of it)
_ANCHOR_EVERY = 4
#: a paragraph of at most max_tokens // this many tokens joins the next one's passage
_SMALL_PART = 8
#: the default size when neither the splitter nor the model says (a custom embedder's label)
DEFAULT_TOKENS, DEFAULT_OVERLAP = 512, 64


@dataclass(frozen=True)
class Splitter:
    """The default splitter: paragraphs, then sentences, packed into passages of ``max_tokens``.

    A passage never spans two paragraphs unless the first is small (at most ``max_tokens // 8``
    tokens), so editing a paragraph leaves every other paragraph's passages as they were.
    ``max_tokens`` and ``overlap`` are counted in the collection's embedder's tokens;
    ``None`` takes the model's defaults (OpenAI models 512/64, the local model 256/32).
    ``tokens`` counts a text's tokens another way (a callable ``text -> int``).

    Example::

        db.create_collection("manuals", model="local", passages=Splitter(max_tokens=200, overlap=20))
    """

    max_tokens: int | None = None
    overlap: int | None = None
    tokens: Callable[[str], int] | None = None
    #: the model whose tokens count (set by :meth:`for_model`)
    model: str | None = None

    def __post_init__(self) -> None:
        m, o = self.max_tokens, self.overlap
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or not 8 <= m <= 100_000):
            raise ConfigurationError(f"expected max_tokens between 8 and 100000, got {m!r}")
        if o is not None and (isinstance(o, bool) or not isinstance(o, int) or o < 0):
            raise ConfigurationError(f"expected overlap as an int >= 0, got {o!r}")
        if m is not None and o is not None and o >= m:
            raise ConfigurationError(f"expected overlap smaller than max_tokens ({m}), got {o}")
        if self.tokens is not None and not callable(self.tokens):
            raise ConfigurationError(f"expected tokens as a callable text -> int, got {self.tokens!r}")

    def for_model(self, model: str) -> Splitter:
        """This splitter with the model's defaults filled in, counting ``model``'s tokens."""
        known = lookup(model)
        m = self.max_tokens or (known.passage_tokens if known else DEFAULT_TOKENS)
        if known is not None and known.max_input_tokens is not None and m > known.max_input_tokens:
            raise ConfigurationError(f"expected max_tokens at most {known.max_input_tokens} for {model}, got {m}")
        default_overlap = known.passage_overlap if known else DEFAULT_OVERLAP
        o = self.overlap if self.overlap is not None else min(default_overlap, m // 4)
        return replace(self, max_tokens=m, overlap=o, model=model)

    def config(self) -> dict[str, Any]:
        """What the catalog keeps of it (a custom ``tokens`` counter is not kept: pass it when opening)."""
        return {"splitter": "default", "max_tokens": self.max_tokens, "overlap": self.overlap}

    def _count(self) -> tokenizers.Counter:
        if self.tokens is not None:
            count = self.tokens
            return lambda texts: [int(count(t)) for t in texts]
        return tokenizers.counter_for(self.model or "")

    def __call__(self, text: str) -> Spans:
        """The passages of ``text`` as ``(start, end)`` spans, in order (none for a blank text)."""
        bound = self if self.max_tokens is not None and self.overlap is not None else self.for_model(self.model or "")
        assert bound.max_tokens is not None and bound.overlap is not None
        units = _units(text, bound.max_tokens, bound._count())
        return [p for seg in _segments(units, bound.max_tokens) for p in _pack(seg, bound.max_tokens, bound.overlap)]


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> Spans:
    """The pieces of ``text[start:end]`` between the separators ``pattern`` finds, stripped of whitespace."""
    out: Spans = []
    pos = start
    for m in pattern.finditer(text, start, end):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, end))
    stripped = []
    for s, e in out:
        piece = text[s:e]
        s2 = s + len(piece) - len(piece.lstrip())
        e2 = e - (len(piece) - len(piece.rstrip()))
        if e2 > s2:
            stripped.append((s2, e2))
    return stripped


class _Unit(NamedTuple):
    """A piece of the document no longer than a passage."""

    start: int
    end: int
    tokens: int
    #: the first piece of its paragraph (a paragraph that fits is one piece)
    opens: bool
    #: a passage may end after it (chosen by its text alone, see :func:`_pack`)
    anchor: bool


def _unit(text: str, start: int, end: int, tokens: int, opens: bool) -> _Unit:
    anchor = zlib.crc32(text[start:end].encode("utf-8", "surrogatepass")) % _ANCHOR_EVERY == 0
    return _Unit(start, end, tokens, opens, anchor)


def _units(text: str, max_tokens: int, count: tokenizers.Counter) -> list[_Unit]:
    """Pieces no longer than ``max_tokens``: paragraphs, else sentences, else words."""
    out: list[_Unit] = []
    paragraphs = _spans(_PARAGRAPH, text, 0, len(text))
    for (s, e), n in zip(paragraphs, count([text[s:e] for s, e in paragraphs]), strict=True):
        if n <= max_tokens:
            out.append(_unit(text, s, e, n, True))
            continue
        pieces: list[tuple[int, int, int]] = []
        sentences = _spans(_SENTENCE, text, s, e)
        for (s2, e2), n2 in zip(sentences, count([text[a:b] for a, b in sentences]), strict=True):
            if n2 <= max_tokens:
                pieces.append((s2, e2, n2))
            else:
                pieces.extend(_words(text, s2, e2, max_tokens, count))
        out.extend(_unit(text, a, b, k, i == 0) for i, (a, b, k) in enumerate(pieces))
    return out


def _words(text: str, start: int, end: int, max_tokens: int, count: tokenizers.Counter) -> list[tuple[int, int, int]]:
    """A sentence longer than a passage, cut between words (a word longer than that, between characters)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    out: list[tuple[int, int, int]] = []
    for (s, e), n in zip(words, count([text[s:e] for s, e in words]), strict=True):
        if n > max_tokens:  # no word is this long in prose; cut it into pieces that fit
            step = max(1, (e - s) * max_tokens // (2 * n))
            out.extend((a, min(a + step, e), max_tokens // 2) for a in range(s, e, step))
        elif out and out[-1][2] + n + 1 <= max_tokens:
            out[-1] = (out[-1][0], e, out[-1][2] + n + 1)
        else:
            out.append((s, e, n))
    return out


def _segments(units: list[_Unit], max_tokens: int) -> list[list[_Unit]]:
    """Runs of units packed apart: a run starts at each paragraph, unless the one before is small.

    A small paragraph (a heading, a one-liner) joins the next one's passage; whether it is small
    depends on it alone. Passages never cross runs, so an edit moves no boundary in another run.
    """
    small = max(1, max_tokens // _SMALL_PART)
    out: list[list[_Unit]] = []
    for i, unit in enumerate(units):
        before = units[i - 1] if i else None
        if before is None or (unit.opens and not (before.opens and before.tokens <= small)):
            out.append([])
        out[-1].append(unit)
    return out


def _size(units: Sequence[_Unit]) -> int:
    """Tokens of consecutive units put together (a join counts one token)."""
    return sum(u.tokens for u in units) + max(0, len(units) - 1)


def _pack(units: list[_Unit], max_tokens: int, overlap: int) -> Spans:
    """A segment's units packed into passages of at most ``max_tokens``, each opening with the overlap.

    A full passage ends after its last anchor that leaves it at least half full, else where the
    next unit no longer fits. Anchors depend on a unit's text alone, so after an edit the passages
    that follow soon end at the same anchors as before, and their text is the same again.
    """
    passages: Spans = []
    current: list[_Unit] = []
    size = -1  # the size of current (a join counts one token)
    for unit in units:
        if current and size + 1 + unit.tokens > max_tokens:
            cut = _cut(current, unit.tokens, max_tokens)
            passages.append((current[0].start, current[cut - 1].end))
            rest = current[cut:]
            current = _carried(current[:cut], rest, unit, max_tokens, overlap) + rest
            size = _size(current) if current else -1
        current.append(unit)
        size += unit.tokens + 1
    if current:
        passages.append((current[0].start, current[-1].end))
    return passages


def _cut(current: list[_Unit], tokens: int, max_tokens: int) -> int:
    """How many of ``current``'s units the passage keeps: up to its last anchor past half, else all."""
    total, prefix, keep = _size(current), -1, len(current)
    for j, u in enumerate(current[:-1], start=1):
        prefix += u.tokens + 1  # the size of current[:j]
        rest = total - prefix - 1  # the size of current[j:], which the next passage opens with
        if u.anchor and prefix >= max_tokens // 2 and rest + 1 + tokens <= max_tokens:
            keep = j
    return keep


def _carried(passage: list[_Unit], rest: list[_Unit], unit: _Unit, max_tokens: int, overlap: int) -> list[_Unit]:
    """The last units of ``passage`` the next one opens with: up to ``overlap`` tokens, within one paragraph."""
    following = [*rest, unit]
    if following[0].opens:  # a passage that starts a paragraph starts there
        return []
    budget = max_tokens - _size(following) - 1
    carried: list[_Unit] = []
    for u in reversed(passage[1:]):  # never the whole passage: the next one must start later
        if _size([u, *carried]) > overlap or _size([u, *carried]) > budget:
            break
        carried.insert(0, u)
        if u.opens:
            break
    return carried


def spans(split: Any, text: str) -> Spans:
    """Run any splitter on ``text`` and check its answer: spans in order, inside the document.

    >>> spans(lambda t: t.split("|"), "ab|cd")
    [(0, 2), (3, 5)]
    """
    got = split.split_text(text) if hasattr(split, "split_text") else split(text)
    if isinstance(got, (str, bytes)) or not isinstance(got, Sequence):
        kind = type(got).__name__
        raise InvalidInputError(f"expected a splitter to return a list of str or (start, end), got {kind}")
    out: Spans = []
    previous = -1
    for piece in got:
        if isinstance(piece, str):
            if not piece.strip():
                continue
            found = text.find(piece, previous + 1)
            if found < 0:
                found = text.find(piece, max(previous, 0))
            if found < 0:
                raise InvalidInputError(
                    f"expected a splitter's passages to be pieces of the document, got {piece[:40]!r}... not in it"
                )
            s, e = found, found + len(piece)
        elif (
            isinstance(piece, (tuple, list))
            and len(piece) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in piece)
        ):
            s, e = piece
            if not 0 <= s < e <= len(text):
                raise InvalidInputError(f"expected spans inside the document's {len(text)} characters, got {piece!r}")
        else:
            raise InvalidInputError(f"expected a splitter to return str or (start, end) items, got {piece!r}")
        if out and s < out[-1][0]:
            raise InvalidInputError(f"expected a splitter's passages in document order, got {(s, e)} after {out[-1]}")
        out.append((s, e))
        previous = s
    return out


def resolve(passages: Any, model: str) -> tuple[dict[str, Any] | None, Any]:
    """``create_collection(passages=...)``: the catalog's config and the splitter (None, None: no passages).

    >>> resolve(None, "local")
    (None, None)
    """
    if passages is None or passages is False:
        return None, None
    if passages is True:
        passages = Splitter()
    if isinstance(passages, Splitter):
        bound = passages.for_model(model)
        return bound.config(), bound
    if hasattr(passages, "split_text") or callable(passages):
        return {"splitter": "custom", "name": _name(passages)}, passages
    raise ConfigurationError(
        "expected passages=True, a Splitter, a callable text -> list[str] or list[(start, end)], "
        f"or an object with split_text, got {passages!r}"
    )


def from_config(config: dict[str, Any] | None, model: str, given: Any = None) -> Any:
    """The splitter of a stored config; ``given`` (the caller's) wins; a custom one not given: None."""
    if config is None:
        return None
    if given is not None and given is not True:
        return resolve(given, model)[1]
    if config.get("splitter") == "default":
        return Splitter(max_tokens=config.get("max_tokens"), overlap=config.get("overlap")).for_model(model)
    return None


def _name(obj: Any) -> str:
    kind = obj if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")) else type(obj)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"
