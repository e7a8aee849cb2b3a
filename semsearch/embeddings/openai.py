"""Embeddings from OpenAI's API, or any server that speaks its ``/v1/embeddings`` format."""

from __future__ import annotations

from typing import Any

import numpy as np

from semsearch.embeddings.base import BatchedEmbedder, utf8_tokens_upper_bound
from semsearch.errors import ConfigurationError, EmbeddingError

#: output size of each known model when no ``dimensions`` is requested
NATIVE_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def _import_openai() -> Any:
    # imported lazily so `semsearch` works without the optional extra installed
    try:
        import openai
    except ImportError:
        raise ConfigurationError(
            "the openai embedder needs the 'openai' extra: pip install 'semsearch[openai]'"
        ) from None
    return openai


class OpenAIEmbedder(BatchedEmbedder):
    """Embed texts with OpenAI; retries on 429 and 5xx are left to the SDK.

    ``max_retries`` and ``timeout`` apply to the client this class creates; a
    ``client`` you pass (``openai.OpenAI``, ``openai.AzureOpenAI``) is used as-is.

    Example::

        emb = OpenAIEmbedder(model="text-embedding-3-large", dims=1024)
        vectors = emb.embed(["hello", "world"])  # (2, 1024) float32, unit-norm
    """

    max_batch_size = 2048  # OpenAI's per-request input limit
    max_batch_tokens = 300_000  # OpenAI's per-request token limit

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        dims: int | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        max_retries: int = 5,
        timeout: float = 60.0,
    ) -> None:
        openai = _import_openai()
        native = NATIVE_DIMS.get(model)
        if dims is None:
            if native is None:
                raise ConfigurationError(f"expected dims for model {model!r}, whose native size is unknown; got none")
            dims = native
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigurationError(f"expected dims to be a positive integer, got {dims!r}")
        resizable = model.startswith("text-embedding-3-")
        if native is not None and (dims > native or (not resizable and dims != native)):
            expected = f"at most {native}" if resizable else f"{native} (it cannot be resized)"
            raise ConfigurationError(f"expected dims for {model} to be {expected}, got {dims}")
        if client is not None and (api_key is not None or base_url is not None):
            raise ConfigurationError(
                "expected either client or api_key/base_url, got both; configure the client instead"
            )
        if client is None:
            try:
                client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout)
            except openai.OpenAIError as exc:
                raise ConfigurationError(f"could not create the openai client: {exc}") from exc
        self.model = model
        self.dims = dims
        self.client = client
        # native size is the API default, and resizing the same size still costs a parameter
        self._extra: dict[str, Any] = {"dimensions": dims} if resizable and dims != native else {}
        self._api_error = openai.APIError

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Send one request; return its vectors in input order."""
        try:
            response = self.client.embeddings.create(
                model=self.model, input=texts, encoding_format="float", **self._extra
            )
        except self._api_error as exc:
            status = getattr(exc, "status_code", None) or "none (no response)"
            tokens = sum(utf8_tokens_upper_bound(t) for t in texts)
            raise EmbeddingError(
                f"openai embeddings request for model {self.model!r} failed with status "
                f"{status} after up to {self.client.max_retries} retries; sent a batch of "
                f"{len(texts)} texts (at most {tokens} tokens)"
            ) from exc
        # the API does not promise to answer in input order
        data = sorted(response.data, key=lambda d: d.index)
        if [d.index for d in data] != list(range(len(texts))):
            raise EmbeddingError(
                f"expected indices 0..{len(texts) - 1} from {self.model}, got {[d.index for d in data][:10]}"
            )
        try:
            return np.array([d.embedding for d in data], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(f"expected numeric vectors from {self.model}, got {exc}") from exc

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, dims={self.dims}, base_url={str(self.client.base_url)!r})"
