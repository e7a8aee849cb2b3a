"""Embedding providers: the :class:`Embedder` protocol, local (wordllama) and OpenAI."""

from __future__ import annotations

import importlib.util

from semsearch.embeddings.base import AsyncEmbedder, BatchedEmbedder, Embedder, aembed, normalize_rows
from semsearch.embeddings.models import MODELS, Model, lookup, names
from semsearch.errors import ConfigurationError

_LOCAL = next(m for m in MODELS if m.provider == "local")
#: names of the local model
LOCAL_ALIASES = (_LOCAL.name, *_LOCAL.aliases)
#: the local model's Matryoshka sizes
LOCAL_DIMS = _LOCAL.dims_allowed or ()
#: output size of each OpenAI model when no ``dimensions`` is requested
OPENAI_NATIVE_DIMS = {m.name: m.native_dims for m in MODELS if m.provider == "openai"}


def check_dims(model: str, dims: int) -> None:
    """Refuse a built-in model with dims it cannot produce (any other model is a label: any dims).

    >>> check_dims("text-embedding-3-small", 512)
    >>> check_dims("local", 300)
    Traceback (most recent call last):
    ...
    semsearch.errors.ConfigurationError: expected local embedder dims in (64, 128, 256), got 300
    """
    known = lookup(model)
    problem = known.check(dims) if known is not None else None
    if problem is not None:
        raise ConfigurationError(f"{problem}, got {dims}")


#: what the local model needs beyond semsearch's own dependencies, and how to get it
LOCAL_EXTRA = "pip install 'semsearch[local]'"


def check_installed(model: str) -> None:
    """Refuse the local model when its package (the ``local`` extra) is missing; any other name passes.

    Called before a collection is created, so the missing extra shows there and not at the
    first embedding.

    >>> check_installed("text-embedding-3-small")
    """
    known = lookup(model)
    if known is not None and known.provider == "local" and importlib.util.find_spec("wordllama") is None:
        raise ConfigurationError(f"expected the wordllama package for model 'local', got none installed: {LOCAL_EXTRA}")


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
    "MODELS",
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
