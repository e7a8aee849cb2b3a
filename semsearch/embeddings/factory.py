"""Embedders named ``module:factory``, for the command line (``--embedder``).

The factory is called with no arguments and must return an :class:`Embedder`:
something with a ``model`` name, ``dims`` and ``embed(texts)``.

Example::

    # mypkg/emb.py:  def make(): return MyEmbedder()       (model="mine", dims=384)
    embedder = load_embedder("mypkg.emb:make", dims=384)
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from semsearch.embeddings.base import Embedder
from semsearch.errors import ConfigurationError

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def load_embedder(spec: str, *, dims: int | None = None) -> Embedder:
    """Import ``module:factory``, call the factory, check what it returns (and its dims).

    >>> load_embedder("no colon")
    Traceback (most recent call last):
    ...
    semsearch.errors.ConfigurationError: expected an embedder as module:factory (e.g. mypkg.emb:make), got 'no colon'
    """
    if not _SPEC.match(spec):
        raise ConfigurationError(f"expected an embedder as module:factory (e.g. mypkg.emb:make), got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        found: object = importlib.import_module(module_name)
    except Exception as exc:  # an ImportError, or whatever the module raised while importing
        hint = _cwd_hint(exc, module_name.split(".")[0])
        raise ConfigurationError(f"expected an importable module for --embedder {spec}, got {exc!r}{hint}") from None
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ConfigurationError(f"expected {module_name} to define {attr} for --embedder {spec}, got no {part}")
        found = getattr(found, part)
    if not callable(found):
        raise ConfigurationError(f"expected {spec} to be callable, got {type(found).__name__}")
    try:
        embedder = found()
    except Exception as exc:
        raise ConfigurationError(f"expected {spec}() to return an embedder, got {exc!r}") from None
    model, got_dims = getattr(embedder, "model", None), getattr(embedder, "dims", None)
    if (
        not isinstance(model, str)
        or isinstance(got_dims, bool)
        or not isinstance(got_dims, int)
        or not callable(getattr(embedder, "embed", None))
    ):
        raise ConfigurationError(
            f"expected {spec}() to return an embedder (model: str, dims: int, embed(texts)), "
            f"got {type(embedder).__name__}"
        )
    if dims is not None and got_dims != dims:
        raise ConfigurationError(f"expected an embedder of {dims} dims from {spec}, got {got_dims}")
    return embedder


def _cwd_hint(exc: Exception, top: str) -> str:
    """Why a module sitting in the current directory is not found: the command does not look there."""
    here = Path.cwd()
    if not isinstance(exc, ModuleNotFoundError) or exc.name != top:
        return ""
    if not ((here / f"{top}.py").is_file() or (here / top).is_dir()):
        return ""
    if any(Path(p or ".").resolve() == here.resolve() for p in sys.path):
        return ""
    return f" ({top} is in the current directory, which Python's path lacks: run with PYTHONPATH=.)"
