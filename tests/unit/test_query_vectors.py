"""A query vector's check: the fast path for a float array answers exactly as the general one does."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.embeddings.base import normalize_rows
from semsearch.errors import InvalidInputError
from semsearch.vectors import check_query_vector


@pytest.mark.parametrize("dims", [3, 256, 1536, 3072])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0])  # within float16
def test_a_float_array_is_normalised_to_the_same_float32s_as_any_other_input(dims, dtype, scale):
    rng = np.random.default_rng(dims)
    for _ in range(50):
        v = (rng.normal(size=dims) * scale).astype(dtype)
        fast = check_query_vector(v, dims=dims)
        assert fast.dtype == np.float32 and fast.shape == (dims,)
        np.testing.assert_array_equal(fast, normalize_rows(v.reshape(1, -1))[0])
        np.testing.assert_array_equal(fast, check_query_vector(v.tolist(), dims=dims))  # the general path


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        (np.array([0.0, np.nan, 1.0]), "expected finite values, got nan or inf"),
        (np.array([0.0, np.inf, 1.0]), "expected finite values, got nan or inf"),
        (np.zeros(3), "expected non-zero vectors, got a zero vector"),
        (np.array([1e300, 1.0, 1.0]), "expected values a float32 can hold"),
        (np.ones(4), r"expected a query vector of 3 dims, got shape \(4,\)"),
        (np.array([True, False, True]), "expected a query vector of numbers, got bool values"),
    ],
)
def test_bad_arrays_get_the_general_paths_errors(vector, message):
    with pytest.raises(InvalidInputError, match=message):
        check_query_vector(vector, dims=3)


def test_extreme_but_valid_values_keep_their_direction():
    for v in (np.array([1e38, 1e38, 1e38, 1e38]), np.array([1e-40, 1e-40, 0.0, 0.0], dtype=np.float64)):
        out = check_query_vector(v, dims=4)
        assert np.isclose(np.linalg.norm(out), 1.0) and np.all(np.sign(out) == np.sign(v))
