"""What a vector must be before it is sent: numbers of the right shape, finite, not all zero; sent unit-norm float32.

Example::

    check_query_vector([0.1, 0.2, 0.3], dims=3)      # array([0.267..., 0.534..., 0.801...], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semsearch.embeddings.base import as_numbers, normalize_rows
from semsearch.errors import InvalidInputError


def check_vectors(vectors: Any, *, n: int, dims: int) -> np.ndarray:
    """Shape-check ``vectors`` as ``(n, dims)`` finite non-zero rows of numbers; return them unit-norm float32."""
    arr = as_numbers(vectors, "embeddings")
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] != dims:
        raise InvalidInputError(f"expected embeddings of shape ({n}, {dims}), got {arr.shape}")
    return normalize_rows(arr)


def check_query_vector(vector: Any, *, dims: int) -> np.ndarray:
    """One query vector of ``dims`` numbers as a unit-norm float32 array.

    >>> check_query_vector(np.array([3.0, 4.0]), dims=2).tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    if isinstance(vector, np.ndarray) and vector.shape == (dims,) and vector.dtype.kind == "f":
        # the common case, a float array of the right shape, without normalize_rows' generality (40 us
        # of a search's ~300 us of client CPU at 256 dims); the same float32 arithmetic, so the same result
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            arr32 = vector.astype(np.float32)
            norm = np.sqrt(np.add.reduce(arr32 * arr32))
        if norm >= 1e-18 and np.isfinite(norm):  # else (nan, inf, zero, tiny): normalize_rows says what is wrong
            return arr32 / norm
    arr = as_numbers(vector, "a query vector")
    if arr.ndim != 1 or arr.shape[0] != dims:
        raise InvalidInputError(f"expected a query vector of {dims} dims, got shape {arr.shape}")
    return normalize_rows(arr.reshape(1, -1))[0]
