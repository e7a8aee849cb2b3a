"""A semsearch :class:`~semsearch.Embedder` as a LlamaIndex embed model (the offline local model included)."""

from __future__ import annotations

from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr

from semsearch.embeddings import Embedder, aembed
from semsearch.errors import ConfigurationError


class SemsearchEmbedding(BaseEmbedding):
    """LlamaIndex's ``embed_model`` made of a semsearch embedder: the same vectors a collection makes.

    Give it the collection's own embedder (``col.embedder``) so that what LlamaIndex embeds
    and what semsearch embeds (a plain ``col.search("text")``) are one embedding space.
    Async calls use the embedder's ``aembed`` when it has one, else a worker thread.

    Example::

        from semsearch.embeddings.local import LocalEmbedder
        embed_model = SemsearchEmbedding(LocalEmbedder(dims=256))     # offline
        embed_model.get_query_embedding("cats")[:3]
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        if not isinstance(embedder, Embedder):
            raise ConfigurationError(
                f"expected a semsearch Embedder (model, dims, embed), got {type(embedder).__name__}"
            )
        super().__init__(model_name=embedder.model, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "SemsearchEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The semsearch embedder this model calls."""
        return self._embedder

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aget_text_embeddings([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return np.asarray(self._embedder.embed(texts), dtype=np.float64).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return np.asarray(await aembed(self._embedder, texts), dtype=np.float64).tolist()
