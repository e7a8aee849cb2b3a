"""Offline embeddings with wordllama (MIT, numpy only, Matryoshka 256/128/64 dims).

wordllama 0.4.0.post1's ``WordLlama.load()`` looks for its tokenizer in the
wrong folder and then tries the network, so the model is built here from the
two files its wheel ships.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from semsearch.embeddings.base import BatchedEmbedder
from semsearch.embeddings.models import LOCAL_DIMS, check_dims, check_installed
from semsearch.errors import ConfigurationError

MODEL_NAME = "wordllama-l2-supercat"
SUPPORTED_DIMS = LOCAL_DIMS


@lru_cache(maxsize=1)
def _load_parts() -> tuple[np.ndarray, object]:
    try:
        from safetensors import safe_open
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError("the local embedder needs the 'local' extra: pip install 'semsearch[local]'") from exc
    try:
        package = resources.files("wordllama")
    except ModuleNotFoundError as exc:
        raise ConfigurationError("the local embedder needs the 'local' extra: pip install 'semsearch[local]'") from exc
    weights = package / "weights" / "l2_supercat_256.safetensors"
    tokenizer_file = package / "tokenizers" / "l2_supercat_tokenizer_config.json"
    with resources.as_file(weights) as path, safe_open(str(path), framework="np", device="cpu") as f:
        matrix = f.get_tensor("embedding.weight")
    with resources.as_file(tokenizer_file) as path:
        tokenizer = Tokenizer.from_file(str(path))
    return np.ascontiguousarray(matrix, dtype=np.float32), tokenizer


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    """wordllama's own tokenizer (a ``tokenizers.Tokenizer``), to count a text's tokens as the model does.

    A copy of the model's: wordllama turns padding on in the one it embeds with, which would
    count every text of a batch as long as the longest.
    """
    from tokenizers import Tokenizer

    model: Any = _load_parts()[1]
    counting = Tokenizer.from_str(model.to_str())
    counting.no_padding()
    counting.no_truncation()
    return counting


@lru_cache(maxsize=len(SUPPORTED_DIMS))
def _inference(dims: int) -> object:
    root = logging.getLogger()
    had_handlers = bool(root.handlers)
    level = root.level
    # wordllama.inference calls logging.basicConfig(level=INFO) at import; undo
    # that side effect so importing it does not reconfigure the host app's logging.
    check_installed("local")
    from wordllama.inference import WordLlamaInference

    if not had_handlers:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(level)
    matrix, tokenizer = _load_parts()
    return WordLlamaInference(matrix[:, :dims], tokenizer)


class LocalEmbedder(BatchedEmbedder):
    """wordllama embeddings computed on the CPU, offline.

    Matryoshka-trained: 64 and 128 dims are the first dims of the 256-dim vector,
    re-normalised.

    Example::

        emb = LocalEmbedder(dims=256)
        vectors = emb.embed(["a toddler movie about cats"])   # (1, 256) float32
    """

    max_batch_size = 2048
    max_batch_tokens = 10_000_000

    def __init__(self, dims: int = 256) -> None:
        check_dims("local", dims)
        self.model = MODEL_NAME
        self.dims = dims

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Average-pool the token vectors of each text."""
        model = _inference(self.dims)
        # wordllama pads each sub-batch to its longest text; grouping texts of similar
        # length first cut the stdlib-docstring corpus from 1.13 s to 0.16 s
        order = np.argsort([len(t) for t in texts], kind="stable")
        pooled = model.embed([texts[i] for i in order], norm=False, batch_size=64)  # type: ignore[attr-defined]
        out = np.empty_like(pooled)
        out[order] = pooled
        return out

    def __repr__(self) -> str:
        return f"LocalEmbedder(dims={self.dims})"
