"""Embeddings from OpenAI's API, or any server that speaks its ``/v1/embeddings`` format."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from semsearch.embeddings.base import BatchedEmbedder, utf8_tokens_upper_bound
from semsearch.embeddings.models import check_dims, lookup
from semsearch.errors import ConfigurationError, EmbeddingError


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
    ``semsearch.aio`` awaits an ``openai.AsyncOpenAI`` client (made with the same
    settings, or ``async_client=``); with only a ``client=`` given, it runs that one in
    a worker thread.

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
        async_client: Any = None,
        max_retries: int = 5,
        timeout: float = 60.0,
    ) -> None:
        openai = _import_openai()
        known = lookup(model)
        native = known.native_dims if known is not None and known.provider == "openai" else None
        if dims is None:
            if native is None:
                raise ConfigurationError(f"expected dims for model {model!r}, whose native size is unknown; got none")
            dims = native
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigurationError(f"expected dims to be a positive integer, got {dims!r}")
        check_dims(model, dims)
        resizable = known is not None and known.resizable
        if client is not None and (api_key is not None or base_url is not None):
            raise ConfigurationError(
                "expected either client or api_key/base_url, got both; configure the client instead"
            )
        if client is None:
            try:
                client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout)
            except openai.OpenAIError as exc:
                raise ConfigurationError(f"could not create the openai client: {exc}") from exc
            if async_client is None:
                # the same settings for semsearch.aio; made now, it opens no connection until used
                async_client = openai.AsyncOpenAI(
                    api_key=client.api_key, base_url=client.base_url, max_retries=max_retries, timeout=timeout
                )
        self.async_client = async_client
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
            raise self._failure(exc, texts) from exc
        except json.JSONDecodeError as exc:
            # a 200 whose body claims json and is not (a proxy's page, a truncated reply)
            raise EmbeddingError(f"expected a json reply from {self.model}, got {_snippet(exc.doc)}") from exc
        return self._vectors(response, len(texts))

    async def aembed_batch(self, texts: list[str]) -> np.ndarray:
        """:meth:`embed_batch` on the ``AsyncOpenAI`` client (in a thread for a ``client=`` given without one)."""
        if self.async_client is None:
            return await super().aembed_batch(texts)
        try:
            response = await self.async_client.embeddings.create(
                model=self.model, input=texts, encoding_format="float", **self._extra
            )
        except self._api_error as exc:
            raise self._failure(exc, texts) from exc
        except json.JSONDecodeError as exc:
            raise EmbeddingError(f"expected a json reply from {self.model}, got {_snippet(exc.doc)}") from exc
        return self._vectors(response, len(texts))

    def _failure(self, exc: Any, texts: list[str]) -> EmbeddingError:
        status = getattr(exc, "status_code", None)
        tokens = sum(utf8_tokens_upper_bound(t) for t in texts)
        sent = f"sent a batch of {len(texts)} texts (at most {tokens} tokens)"
        said = _api_message(exc)
        said = f": the api said {said}" if said else ""
        if status is not None and not _retried(exc):
            return EmbeddingError(
                f"openai embeddings request for model {self.model!r} was refused with status {status} "
                f"(not retried){said}; {sent}",
                status=status,
            )
        request = getattr(exc, "request", None)
        count = request.headers.get("x-stainless-retry-count") if request is not None else None
        retries = f"{count} retries" if count is not None else f"up to {self.client.max_retries} retries"
        return EmbeddingError(
            f"openai embeddings request for model {self.model!r} failed with status "
            f"{status or 'none (no response)'} after {retries}{said}; {sent}",
            status=status,
        )

    def _vectors(self, response: Any, n: int) -> np.ndarray:
        """The vectors of a reply, checked item by item: a reply is data from the network."""
        if isinstance(response, (str, bytes)):
            # the sdk hands back the body as text when it is not json
            raise EmbeddingError(f"expected a json reply from {self.model}, got {_snippet(response)}")
        data = getattr(response, "data", None)
        if not isinstance(data, list):
            shown = _plain(response)
            raise EmbeddingError(f"expected a json object with a data list from {self.model}, got {_cut(repr(shown))}")
        items: list[tuple[int, list[Any]]] = []
        for d in data:
            index, vector = getattr(d, "index", None), getattr(d, "embedding", None)
            if isinstance(index, bool) or not isinstance(index, int) or not isinstance(vector, list):
                shown = _plain(d)
                raise EmbeddingError(
                    f"expected an object with an int index and a list embedding in the data from {self.model}, "
                    f"got {_cut(repr(shown))}"
                )
            items.append((index, vector))
        # the API does not promise to answer in input order
        items.sort(key=lambda item: item[0])
        if [i for i, _ in items] != list(range(n)):
            raise EmbeddingError(f"expected indices 0..{n - 1} from {self.model}, got {[i for i, _ in items][:10]}")
        try:
            return np.array([v for _, v in items], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(f"expected numeric vectors from {self.model}, got {exc}") from exc

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, dims={self.dims}, base_url={str(self.client.base_url)!r})"


def _cut(text: str, most: int = 120) -> str:
    """``text`` on one line, cut at ``most`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[:most] + "..."


def _snippet(text: str | bytes, most: int = 120) -> str:
    """A reply's start as a one-line quoted string."""
    return repr(_cut(text.decode("utf-8", "replace") if isinstance(text, bytes) else text, most))


def _plain(value: Any) -> Any:
    """An sdk model as the dict that arrived (it keeps wrongly typed fields as they came)."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict(warnings=False) if callable(to_dict) else value


def _api_message(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _snippet(body["message"], most=500)
    if isinstance(body, str) and body.strip():
        return _snippet(body)
    return None


def _retried(exc: Any) -> bool:
    """Whether the sdk retries this failure (its rule: 408, 409, 429, 5xx, or the server's x-should-retry)."""
    response = getattr(exc, "response", None)
    if response is None:
        return True
    hint = response.headers.get("x-should-retry")
    if hint in ("true", "false"):
        return hint == "true"
    return response.status_code in (408, 409, 429) or response.status_code >= 500
