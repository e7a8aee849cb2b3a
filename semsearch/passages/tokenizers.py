"""Counting a text's tokens as the collection's embedder counts them, offline.

- OpenAI models: OpenAI's own BPE (``cl100k_base``) from the ``bpe-openai`` package, whose
  wheel carries the encoding tables (tiktoken downloads them on first use, which fails
  offline). Without that package (``pip install 'semsearch[openai]'`` brings it) the count
  is the text's UTF-8 length: a byte-level BPE token covers at least one byte, so this
  never undercounts (passages come out ~4x smaller than asked for English, never too long).
- the local model: wordllama's own tokenizer (the ``tokenizers`` file its wheel ships).
- any other model (a custom embedder's label): the UTF-8 length, the same safe bound; give
  :class:`~semsearch.passages.splitter.Splitter` ``tokens=`` to count otherwise.

Example::

    count = counter_for("text-embedding-3-small")
    count(["hello world", "cats purr"])     # [2, 3]
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from semsearch.embeddings.base import utf8_tokens_upper_bound
from semsearch.embeddings.models import lookup
from semsearch.errors import InvalidInputError

#: counts the tokens of each text
Counter = Callable[[Sequence[str]], list[int]]


def utf8_counter(texts: Sequence[str]) -> list[int]:
    """The safe upper bound: one token per UTF-8 byte.

    >>> utf8_counter(["héllo"])
    [6]
    """
    return [utf8_tokens_upper_bound(t) for t in texts]


@lru_cache(maxsize=4)
def _bpe(encoding: str) -> Any:
    with warnings.catch_warnings():  # bpe-openai 0.1.4 reads its tables with importlib's deprecated open_binary
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(encoding)


def _bpe_counter(encoding: str) -> Counter:
    def count(texts: Sequence[str]) -> list[int]:
        enc = _bpe(encoding)
        return [len(enc.encode(t)) for t in texts]

    return count


def _wordllama_counter(texts: Sequence[str]) -> list[int]:
    from semsearch.embeddings.local import tokenizer

    return [len(e.ids) for e in tokenizer().encode_batch(list(texts), add_special_tokens=False)]


def counter_for(model: str) -> Counter:
    """How the embedder of ``model`` counts tokens (see the module's docstring for each model)."""
    known = lookup(model)
    if known is None:
        return utf8_counter
    if known.tokenizer == "wordllama":
        return _wordllama_counter
    if importlib.util.find_spec("bpe_openai") is None:
        return utf8_counter
    return _bpe_counter(known.tokenizer)


def exact(model: str) -> bool:
    """Whether :func:`counter_for` counts ``model``'s tokens exactly (else it bounds them from above)."""
    known = lookup(model)
    if known is None:
        return False
    return known.tokenizer == "wordllama" or importlib.util.find_spec("bpe_openai") is not None


def check_fits(model: str, keys: Sequence[str], contents: Sequence[str]) -> None:
    """Refuse a text longer than ``model`` embeds, before anything is written, naming ``passages=``.

    Only texts whose UTF-8 length exceeds the limit are counted (a token is at least a byte).

    >>> check_fits("text-embedding-3-small", ["a"], ["short"])
    """
    known = lookup(model)
    limit = known.max_input_tokens if known is not None else None
    if limit is None:
        return
    long = [i for i, text in enumerate(contents) if len(text) > limit or utf8_tokens_upper_bound(text) > limit]
    if not long:
        return
    counts = counter_for(model)([contents[i] for i in long])
    for i, n in zip(long, counts, strict=True):
        if n > limit:
            how = "tokens" if exact(model) else "tokens (counted as UTF-8 bytes: pip install 'semsearch[openai]')"
            raise InvalidInputError(
                f"expected texts of at most {limit} tokens for {model}, got {n} {how} in row {keys[i]!r}: "
                "create the collection with passages=True (or passages=Splitter(...)) to split long documents"
            )
