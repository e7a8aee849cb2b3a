"""Embedding providers: the :class:`Embedder` protocol, local (wordllama) and OpenAI."""

from __future__ import annotations

from semsearch.embeddings.base import AsyncEmbedder, BatchedEmbedder, Embedder, aembed, normalize_rows
from semsearch.errors import ConfigurationError

LOCAL_ALIASES = ("local", "wordllama-l2-supercat")
#: the local model's Matryoshka sizes
LOCAL_DIMS = (64, 128, 256)
#: output size of each OpenAI model when no ``dimensions`` is requested
OPENAI_NATIVE_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def check_dims(model: str, dims: int) -> None:
    """Refuse a built-in model with dims it cannot produce (any other model is a label: any dims).

    >>> check_dims("text-embedding-3-small", 512)
    >>> check_dims("local", 300)
    Traceback (most recent call last):
    ...
    semsearch.errors.ConfigurationError: expected local embedder dims in (64, 128, 256), got 300
    """
    if model in LOCAL_ALIASES:
        if dims not in LOCAL_DIMS:
            raise ConfigurationError(f"expected local embedder dims in {LOCAL_DIMS}, got {dims}")
        return
    native = OPENAI_NATIVE_DIMS.get(model)
    if native is None:
        return
    resizable = model.startswith("text-embedding-3-")  # Matryoshka-trained: the API's dimensions= works
    if dims > native or (not resizable and dims != native):
        expected = f"at most {native}" if resizable else f"{native} (it cannot be resized)"
        raise ConfigurationError(f"expected dims for {model} to be {expected}, got {dims}")


def embedder_for(model: str, dims: int | None = None) -> Embedder:
    """The built-in embedder for a model name.

    ``"local"`` is wordllama (64/128/256 dims, offline); ``text-embedding-*`` is
    OpenAI (needs the ``openai`` extra and ``OPENAI_API_KEY``).

    Example::

        embedder_for("local", 256).embed(["hello"]).shape   # (1, 256)
    """
    if model in LOCAL_ALIASES:
        from semsearch.embeddings.local import LocalEmbedder

        return LocalEmbedder(dims=dims or 256)
    if model in OPENAI_NATIVE_DIMS:
        from semsearch.embeddings.openai import OpenAIEmbedder

        return OpenAIEmbedder(model=model, dims=dims)
    raise ConfigurationError(
        f"expected a built-in model ({', '.join(LOCAL_ALIASES + tuple(OPENAI_NATIVE_DIMS))}) "
        f"or embedder=..., got model {model!r}"
    )


def default_dims(model: str) -> int | None:
    """The natural dimension of a built-in model, if known."""
    if model in LOCAL_ALIASES:
        return 256
    return OPENAI_NATIVE_DIMS.get(model)


__all__ = [
    "AsyncEmbedder",
    "BatchedEmbedder",
    "Embedder",
    "aembed",
    "check_dims",
    "default_dims",
    "embedder_for",
    "normalize_rows",
]
