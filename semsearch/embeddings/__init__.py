"""Embedding providers: the :class:`Embedder` protocol, local (wordllama) and OpenAI."""

from __future__ import annotations

from semsearch.embeddings.base import BatchedEmbedder, Embedder, normalize_rows
from semsearch.errors import ConfigurationError

LOCAL_ALIASES = ("local", "wordllama-l2-supercat")
OPENAI_NATIVE_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


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


__all__ = ["BatchedEmbedder", "Embedder", "default_dims", "embedder_for", "normalize_rows"]
