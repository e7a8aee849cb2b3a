"""A LangChain ``Embeddings`` as a semsearch :class:`~semsearch.Embedder` (model, dims, embed, aembed).

A collection made with it stores the LangChain model's vectors, and its own searches and
writes (``col.add``, ``col.search("...")``, the async API) embed through the same object.

Example::

    from langchain_core.embeddings import DeterministicFakeEmbedding
    from semsearch.langchain import LangChainEmbedder

    embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=64))
    col = db.create_collection("notes", embedder=embedder)     # a 64-dim collection
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:
    from langchain_core.embeddings import Embeddings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("semsearch.langchain needs langchain-core: pip install 'semsearch[langchain]'") from exc

from semsearch.embeddings import normalize_rows
from semsearch.errors import EmbeddingError, InvalidInputError

#: the text embedded once to learn a model's dimension when ``dims`` is not given
PROBE = "semsearch dimension probe"


class LangChainEmbedder:
    """A LangChain ``Embeddings`` that semsearch embeds with: documents and queries alike.

    ``dims`` defaults to the length of one embedded probe text (one call to the model);
    ``model`` (the label stored in the collection's catalog row) to
    ``langchain:<class>[:<its model attribute>]``. Vectors come back unit-norm float32.

    Example::

        embedder = LangChainEmbedder(OpenAIEmbeddings(model="text-embedding-3-small"), dims=1536)
        embedder.embed(["hello"]).shape       # (1, 1536)
    """

    def __init__(self, embeddings: Embeddings, *, model: str | None = None, dims: int | None = None) -> None:
        if not isinstance(embeddings, Embeddings):
            raise InvalidInputError(f"expected a langchain Embeddings, got {type(embeddings).__name__}")
        self.embeddings = embeddings
        self.model = model or default_model(embeddings)
        if dims is None:
            dims = len(embeddings.embed_query(PROBE))
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise InvalidInputError(f"expected dims as a positive int, got {dims!r}")
        self.dims = dims

    def __repr__(self) -> str:
        return f"LangChainEmbedder({type(self.embeddings).__name__}, model={self.model!r}, dims={self.dims})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The model's ``embed_documents(texts)``, checked and normalised."""
        texts = list(texts)
        return self.checked(self.embeddings.embed_documents(texts), len(texts)) if texts else self.empty()

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """The model's ``aembed_documents(texts)`` (its own async, or LangChain's worker thread), checked."""
        texts = list(texts)
        return self.checked(await self.embeddings.aembed_documents(texts), len(texts)) if texts else self.empty()

    def embed_query(self, text: str) -> np.ndarray:
        """The model's ``embed_query(text)`` (some models embed questions differently), checked."""
        return self.checked([self.embeddings.embed_query(text)], 1)[0]

    async def aembed_query(self, text: str) -> np.ndarray:
        """The model's ``aembed_query(text)``, checked."""
        return self.checked([await self.embeddings.aembed_query(text)], 1)[0]

    def empty(self) -> np.ndarray:
        return np.empty((0, self.dims), dtype=np.float32)

    def checked(self, vectors: list[list[float]], n: int) -> np.ndarray:
        """``n`` vectors of ``dims`` numbers, unit-norm float32; anything else is the model's error."""
        try:
            got = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(f"expected {n} vectors of numbers from {self.model}, got {exc}") from exc
        if got.shape != (n, self.dims):
            raise EmbeddingError(f"expected {n} vectors of {self.dims} dims from {self.model}, got shape {got.shape}")
        try:
            return normalize_rows(got)
        except InvalidInputError as exc:
            raise EmbeddingError(f"{self.model} returned an unusable vector: {exc}") from exc


def default_model(embeddings: Embeddings) -> str:
    """The catalog label of a LangChain model: its class, and its ``model`` attribute when it has one.

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> default_model(DeterministicFakeEmbedding(size=6))
    'langchain:DeterministicFakeEmbedding'
    """
    name = getattr(embeddings, "model", None)
    label = f"langchain:{type(embeddings).__name__}"
    return f"{label}:{name}" if isinstance(name, str) and name else label
