"""The built-in models: every fact semsearch knows about a model name, in one table.

``check_dims``, ``embedder_for``, ``default_dims``, the embedders' own checks, the
backfill cost estimate and the Django settings all read :data:`MODELS`. A model
name that is not here is a label for a custom embedder (any dims).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    ),
    Model("text-embedding-3-small", "openai", 1536, resizable=True, price_per_million=0.02),
    Model("text-embedding-3-large", "openai", 3072, resizable=True, price_per_million=0.13),
    Model("text-embedding-ada-002", "openai", 1536, price_per_million=0.10),
)
_BY_NAME = {name: model for model in MODELS for name in (model.name, *model.aliases)}


def lookup(name: object) -> Model | None:
    """The built-in model called ``name`` (or one of its aliases), or ``None``."""
    return _BY_NAME.get(name) if isinstance(name, str) else None


def names() -> tuple[str, ...]:
    """Every name a built-in model answers to, for messages and help."""
    return tuple(_BY_NAME)
