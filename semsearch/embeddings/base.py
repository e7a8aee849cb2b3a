"""The Embedder protocol and the batching base class the providers share."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from semsearch.errors import EmbeddingError, InvalidInputError
from semsearch.values import check_text


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into unit-norm float32 vectors.

    It may also have ``async def aembed(texts)`` (see :class:`AsyncEmbedder`), which
    ``semsearch.aio`` awaits instead of running ``embed`` in a worker thread.

    Example::

        class Mine:
            model = "my-model"
            dims = 384
            def embed(self, texts): return my_encode(texts)  # (n, 384) float32
    """

    model: str
    dims: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape ``(len(texts), dims)`` with unit-norm rows."""
        ...


@runtime_checkable
class AsyncEmbedder(Protocol):
    """An :class:`Embedder` that can also embed without blocking an event loop (``semsearch.aio``).

    Optional: ``semsearch.aio`` runs an embedder without ``aembed`` in a worker thread.
    :class:`BatchedEmbedder` subclasses have it (OpenAI's through ``AsyncOpenAI``).

    Example::

        class Mine:
            model, dims = "my-model", 384
            def embed(self, texts): return my_encode(texts)
            async def aembed(self, texts): return await my_async_encode(texts)
    """

    model: str
    dims: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """What :meth:`Embedder.embed` returns, awaited."""
        ...


async def aembed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """``embedder.aembed(texts)`` when it has one, else ``embedder.embed(texts)`` in a worker thread.

    Example::

        vectors = await aembed(col.embedder, ["hello"])
    """
    if isinstance(embedder, AsyncEmbedder):
        return await embedder.aembed(texts)
    return await asyncio.to_thread(embedder.embed, texts)


#: the largest magnitude a float32 (what pgvector stores) holds
FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_numbers(value: object, what: str) -> np.ndarray:
    """``value`` as an array of real numbers (ints or floats, not bools, strings or complex).

    >>> as_numbers([1, 2.5], "a vector").dtype
    dtype('float64')
    >>> as_numbers(["1"], "a vector")
    Traceback (most recent call last):
    semsearch.errors.InvalidInputError: expected a vector of numbers, got str values
    """
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # lists of different lengths
        raise InvalidInputError(f"expected {what} of numbers, got a ragged list") from exc
    if arr.dtype.kind == "O":
        # np.asarray turns None into nan and Decimal into float: name the first non-number instead
        odd = [x for x in arr.flat if isinstance(x, bool) or not isinstance(x, (int, float, np.number))][:1]
        if odd:
            raise InvalidInputError(f"expected {what} of numbers, got a value of type {type(odd[0]).__name__}")
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        kinds = {"b": "bool", "U": "str", "S": "bytes", "c": "complex"}
        raise InvalidInputError(f"expected {what} of numbers, got {kinds.get(arr.dtype.kind, str(arr.dtype))} values")
    return arr


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length; refuse NaN, inf, all-zero rows and values no float32 holds.

    Rows whose float32 norm overflows (1e38s) or underflows (1e-45s) are normalised again
    in float64 after dividing by their largest value, so they keep their direction.

    >>> normalize_rows(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    >>> normalize_rows(np.array([[1e38, 1e38, 1e38, 1e38]])).tolist()
    [[0.5, 0.5, 0.5, 0.5]]
    """
    arr = as_numbers(vectors, "embeddings")
    if arr.ndim != 2:
        raise InvalidInputError(f"expected a 2-d array of vectors, got {arr.ndim} dimension(s)")
    with np.errstate(over="ignore", under="ignore"):
        # float32 is what is stored; converting once here keeps large batches cheap
        arr32 = np.asarray(arr, dtype=np.float32)
        bad = ~np.isfinite(arr32).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            if np.isfinite(arr[row]).all():
                raise InvalidInputError(
                    f"expected values a float32 can hold (at most {FLOAT32_MAX:.2g} in size), "
                    f"got {np.abs(arr[row]).max():g} in row {row}"
                )
            raise InvalidInputError(f"expected finite values, got nan or inf in row {row}")
        norms = np.linalg.norm(arr32, axis=1)
    # overflowed (inf) or too small for its squares to stay normal float32s
    redo = ~(norms >= 1e-18) | ~np.isfinite(norms)
    if not redo.any():
        return np.ascontiguousarray(arr32 / norms[:, None], dtype=np.float32)
    out = arr32 / np.where(redo, 1, norms)[:, None]
    rows = np.asarray(arr[redo], dtype=np.float64)
    scale = np.abs(rows).max(axis=1)
    if (scale == 0).any():
        zero = np.flatnonzero(redo)[int(np.argmax(scale == 0))]
        raise InvalidInputError(f"expected non-zero vectors, got a zero vector in row {zero}")
    rows /= scale[:, None]
    out[redo] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(out, dtype=np.float32)


def utf8_tokens_upper_bound(text: str) -> int:
    """An upper bound on a text's BPE token count that needs no tokenizer files.

    Byte-level BPE tokens cover at least one byte, so the UTF-8 length bounds the
    count from above. tiktoken would be exact but downloads its tables on first
    use, which fails offline.
    """
    return len(text.encode("utf-8")) or 1


class BatchedEmbedder(ABC):
    """Base class that batches, checks and normalises; subclasses embed one batch.

    Example::

        class Upper(BatchedEmbedder):
            model, dims = "toy", 2
            def embed_batch(self, texts):
                return np.array([[len(t), 1.0] for t in texts])
    """

    model: str
    dims: int
    #: most inputs sent in one request
    max_batch_size: int = 256
    #: most (estimated) tokens sent in one request
    max_batch_tokens: int = 1_000_000

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch; return ``(len(texts), dims)`` numbers (any float dtype)."""

    def batches(self, texts: Sequence[str]) -> Iterator[list[str]]:
        """Split texts into request-sized batches by count and estimated tokens."""
        batch: list[str] = []
        tokens = 0
        for text in texts:
            cost = utf8_tokens_upper_bound(text)
            if batch and (len(batch) >= self.max_batch_size or tokens + cost > self.max_batch_tokens):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += cost
        if batch:
            yield batch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed all texts, in batches, as unit-norm float32 rows."""
        texts = self._checked(texts)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        done = 0
        for batch in self.batches(texts):
            done = self._put(out, done, batch, self.embed_batch(batch))
        return out

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed` for asyncio: the same batches and checks, each batch by :meth:`aembed_batch`."""
        texts = self._checked(texts)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        done = 0
        for batch in self.batches(texts):
            done = self._put(out, done, batch, await self.aembed_batch(batch))
        return out

    async def aembed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch without blocking the event loop: by default :meth:`embed_batch` in a thread."""
        return await asyncio.to_thread(self.embed_batch, texts)

    def _checked(self, texts: Sequence[str]) -> list[str]:
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidInputError(f"expected non-empty text, got {text!r} at position {i}")
            check_text(text, f"text at position {i}")
        return texts

    def _put(self, out: np.ndarray, done: int, batch: list[str], vectors: np.ndarray) -> int:
        """Check one batch's vectors, store them normalised at ``done``; return the rows done after it."""
        got = np.asarray(vectors, dtype=np.float32)
        if got.shape != (len(batch), self.dims):
            raise EmbeddingError(
                f"expected {len(batch)} vectors of {self.dims} dims from {self.model}, got shape {got.shape}"
            )
        try:
            out[done : done + len(batch)] = normalize_rows(got)
        except InvalidInputError as exc:
            raise EmbeddingError(f"{self.model} returned an unusable vector: {exc}") from exc
        return done + len(batch)
