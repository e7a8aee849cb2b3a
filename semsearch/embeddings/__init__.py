"""Embedding providers: the :class:`Embedder` protocol, local (wordllama) and OpenAI."""

from __future__ import annotations

from semsearch.embeddings.base import AsyncEmbedder, BatchedEmbedder, Embedder, aembed, normalize_rows
from semsearch.embeddings.models import (
    LOCAL_ALIASES,
    LOCAL_DIMS,
    LOCAL_EXTRA,
    MODELS,
    OPENAI_NATIVE_DIMS,
    Model,
    check_dims,
    check_installed,
    lookup,
    names,
)
from semsearch.errors import ConfigurationError


def embedder_for(model: str, dims: int | None = None) -> Embedder:
    """The built-in embedder for a model name.

    ``"local"`` is wordllama (64/128/256 dims, offline); ``text-embedding-*`` is
    OpenAI (needs the ``openai`` extra and ``OPENAI_API_KEY``).

    Example::

        embedder_for("local", 256).embed(["hello"]).shape   # (1, 256)
    """
    known = lookup(model)
    if known is not None and known.provider == "local":
        from semsearch.embeddings.local import LocalEmbedder

        return LocalEmbedder(dims=dims or known.native_dims)
    if known is not None and known.provider == "openai":
        from semsearch.embeddings.openai import OpenAIEmbedder

        return OpenAIEmbedder(model=known.name, dims=dims)
    raise ConfigurationError(
        f"expected a built-in model ({', '.join(names())}) "
        f"or embedder=... (--embedder module:factory on the command line), got model {model!r}"
    )


def default_dims(model: str) -> int | None:
    """The natural dimension of a built-in model, if known."""
    known = lookup(model)
    return None if known is None else known.native_dims


__all__ = [
    "LOCAL_ALIASES",
    "LOCAL_DIMS",
    "LOCAL_EXTRA",
    "MODELS",
    "OPENAI_NATIVE_DIMS",
    "AsyncEmbedder",
    "BatchedEmbedder",
    "Embedder",
    "Model",
    "aembed",
    "check_dims",
    "check_installed",
    "default_dims",
    "embedder_for",
    "lookup",
    "normalize_rows",
]
