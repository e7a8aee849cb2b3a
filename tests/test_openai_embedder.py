"""OpenAIEmbedder against a real local HTTP server, through the real openai SDK."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import openai
import pytest

from semsearch.embeddings.base import Embedder, utf8_tokens_upper_bound
from semsearch.embeddings.openai import OpenAIEmbedder
from semsearch.errors import ConfigurationError, EmbeddingError, InvalidInputError
from tests.fake_openai import FakeOpenAI, expected_vector

SMALL = "text-embedding-3-small"
LARGE = "text-embedding-3-large"
ADA = "text-embedding-ada-002"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def make(server: FakeOpenAI) -> Iterator[Callable[..., OpenAIEmbedder]]:
    """Build embedders pointed at the fake; retries default to 0 so failures are fast."""
    made: list[OpenAIEmbedder] = []

    def build(**kwargs: Any) -> OpenAIEmbedder:
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("base_url", server.base_url)
        kwargs.setdefault("max_retries", 0)
        emb = OpenAIEmbedder(**kwargs)
        made.append(emb)
        return emb

    yield build
    for emb in made:
        emb.client.close()


def assert_rows_match(out: np.ndarray, texts: list[str], model: str, dims: int) -> None:
    want = np.array([expected_vector(t, model, dims) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_vectors_are_unit_norm_float32_in_input_order(make, server):
    texts = ["alpha", "beta", "alpha", "gamma δ"]
    emb = make()
    out = emb.embed(texts)
    assert isinstance(emb, Embedder)
    assert out.dtype == np.float32 and out.shape == (4, 1536) and out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    assert not np.allclose(out[0], out[1])
    assert_rows_match(out, texts, SMALL, 1536)
    [req] = server.requests
    assert req.model == SMALL and req.inputs == texts and req.encoding_format == "float"
    assert req.headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize(
    ("model", "dims", "sent", "out_dims"),
    [
        (SMALL, None, None, 1536),
        (SMALL, 1536, None, 1536),
        (SMALL, 256, 256, 256),
        (LARGE, None, None, 3072),
        (LARGE, 1024, 1024, 1024),
        (ADA, None, None, 1536),
        (ADA, 1536, None, 1536),
        ("my-local-model", 1536, None, 1536),  # an OpenAI-compatible server's own model
    ],
)
def test_dimensions_sent_only_when_resizing(make, server, model, dims, sent, out_dims):
    emb = make(model=model, dims=dims)
    out = emb.embed(["one", "two"])
    assert emb.dims == out_dims and out.shape == (2, out_dims)
    [req] = server.requests
    assert req.dimensions == sent and req.model == model
    # a shortened vector is the full one cut and re-normalised, as with the real API
    assert_rows_match(out, ["one", "two"], model, out_dims)


@pytest.mark.parametrize(
    ("model", "dims", "words"),
    [
        (ADA, 256, ["1536", "256"]),
        (SMALL, 2000, ["1536", "2000"]),
        (LARGE, 0, ["positive", "0"]),
        (SMALL, 1.5, ["positive", "1.5"]),
        ("my-local-model", None, ["my-local-model"]),
    ],
)
def test_impossible_dims_are_rejected_before_any_request(make, server, model, dims, words):
    with pytest.raises(ConfigurationError) as info:
        make(model=model, dims=dims)
    for word in words:
        assert word in str(info.value)
    assert server.requests == []


def test_batches_5000_inputs_into_three_requests(make, server):
    texts = [f"text number {i}" for i in range(5000)]
    out = make(dims=8).embed(texts)
    assert [len(r.inputs) for r in server.requests] == [2048, 2048, 904]
    assert [t for r in server.requests for t in r.inputs] == texts
    assert_rows_match(out, texts, SMALL, 8)


def test_token_limit_splits_long_texts(make, server):
    texts = [letter * 100_000 for letter in "abcdefg"] + ["é" * 60_000] * 3  # é is 2 bytes
    out = make(dims=4).embed(texts)
    sizes = [len(r.inputs) for r in server.requests]
    assert sizes == [3, 3, 2, 2]
    for req in server.requests:
        assert sum(utf8_tokens_upper_bound(t) for t in req.inputs) <= 300_000
    assert [t for r in server.requests for t in r.inputs] == texts
    assert_rows_match(out, texts, SMALL, 4)


def test_out_of_order_response_is_reordered(make, server):
    server.reverse_order = True
    texts = ["first", "second", "third", "fourth", "fifth"]
    out = make(dims=16).embed(texts)
    assert_rows_match(out, texts, SMALL, 16)


def test_duplicate_indices_in_response_are_refused(make, server):
    vec = [1.0] * 8
    bad = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vec}] * 2}
    server.fail_next(status=200, body={**bad, "model": SMALL, "usage": {}})
    with pytest.raises(EmbeddingError, match=r"expected indices 0\.\.1"):
        make(dims=8).embed(["a", "b"])


def test_rate_limit_is_retried_after_retry_after(make, server):
    # 1 s is above the SDK's first default backoff (<= 0.5 s), so only Retry-After explains it
    server.fail_next(status=429, retry_after="1")
    emb = make(max_retries=2, dims=8)
    start = time.monotonic()
    out = emb.embed(["patience"])
    elapsed = time.monotonic() - start
    assert elapsed >= 1.0
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]
    assert_rows_match(out, ["patience"], SMALL, 8)


@pytest.mark.parametrize("max_retries", [0, 3])
def test_persistent_server_error_raises_after_retries(make, server, max_retries):
    server.fail_always(status=500, retry_after="0.01")
    emb = make(max_retries=max_retries)
    with pytest.raises(EmbeddingError) as info:
        emb.embed(["x", "y"])
    assert len(server.requests) == max_retries + 1
    msg = str(info.value)
    assert msg == msg.lower()
    assert SMALL in msg and "500" in msg and "batch of 2 texts" in msg
    assert isinstance(info.value.__cause__, openai.InternalServerError)


def test_client_error_is_not_retried(make, server):
    server.fail_next(status=400)
    with pytest.raises(EmbeddingError, match="400") as info:
        make(max_retries=3).embed(["x"])
    assert len(server.requests) == 1
    assert isinstance(info.value.__cause__, openai.BadRequestError)


def test_unreachable_server_is_an_embedding_error(make):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emb = make(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(EmbeddingError, match="no response") as info:
        emb.embed(["x"])
    assert isinstance(info.value.__cause__, openai.APIConnectionError)


@pytest.mark.parametrize("bad", ["", " ", "\n\t "])
def test_blank_text_is_refused_before_any_request(make, server, bad):
    with pytest.raises(InvalidInputError, match="position 1"):
        make().embed(["fine", bad, "also fine"])
    assert server.requests == []


def test_no_texts_means_no_request(make, server):
    assert make().embed([]).shape == (0, 1536)
    assert server.requests == []


def test_given_client_is_used_as_is(server):
    client = openai.OpenAI(
        base_url=server.base_url,
        api_key="x",
        max_retries=0,
        default_headers={"x-semsearch-test": "mine"},
    )
    with client:
        emb = OpenAIEmbedder(client=client, dims=8)
        assert emb.client is client
        server.fail_next(status=500)
        with pytest.raises(EmbeddingError):
            emb.embed(["x"])
        assert len(server.requests) == 1  # the client's own max_retries=0, not ours
        assert_rows_match(emb.embed(["x"]), ["x"], SMALL, 8)
    req = server.requests[-1]
    assert req.headers["x-semsearch-test"] == "mine" and req.headers["authorization"] == "Bearer x"


def test_given_azure_client_is_used_as_is(server):
    client = openai.AzureOpenAI(
        azure_endpoint=server.root_url, api_key="az-key", api_version="2024-02-01", max_retries=0
    )
    with client:
        out = OpenAIEmbedder(client=client, model="my-deployment", dims=1536).embed(["hi"])
    [req] = server.requests
    assert req.path == "/openai/deployments/my-deployment/embeddings"
    assert req.headers["api-key"] == "az-key" and req.dimensions is None
    assert_rows_match(out, ["hi"], "my-deployment", 1536)


def test_client_and_connection_settings_together_are_refused(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="x")
    with client, pytest.raises(ConfigurationError, match="both"):
        OpenAIEmbedder(client=client, api_key="y")


def test_created_client_gets_our_retry_and_timeout_settings(make):
    emb = make(max_retries=7, timeout=12.5)
    assert emb.client.max_retries == 7 and emb.client.timeout == 12.5
    assert OpenAIEmbedder(api_key="x").client.max_retries == 5


def test_missing_api_key_is_a_configuration_error(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="openai client"):
        OpenAIEmbedder()


def test_missing_openai_extra_is_a_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    with pytest.raises(ConfigurationError, match=r"semsearch\[openai\]"):
        OpenAIEmbedder(api_key="x")


def test_repr_hides_the_api_key(make):
    emb = make(api_key="sk-very-secret-123", dims=256)
    text = repr(emb)
    assert "secret" not in text and "sk-" not in text
    assert SMALL in text and "256" in text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "words"),
    [
        (200, b"oops", None, ["expected a json reply", "'oops'"]),
        (200, b"oops", "text/plain", ["expected a json reply", "'oops'"]),
        (
            200,
            b"<html>\n<body><h1>Welcome to nginx!</h1></body>\n</html>",
            "text/html",
            ["expected a json reply", "'<html> <body><h1>welcome to nginx!</h1></body> </html>'"],
        ),
        (200, [1, 2], None, ["expected a json object with a data list", "[1, 2]"]),
        (200, {"object": "list"}, None, ["expected a json object with a data list", "'object'"]),
        (200, {"data": None}, None, ["expected a json object with a data list"]),
        (200, {"data": ["x"]}, None, ["expected an object with an int index and a list embedding", "'x'"]),
        (200, {"data": [{"embedding": [1.0] * 8}]}, None, ["int index", "got {'embedding': [1.0, 1.0"]),
        (200, {"data": [{"index": 0, "embedding": None}]}, None, ["list embedding", "'embedding': none"]),
        (200, {"data": [{"index": 0, "embedding": [1.0] * 8}]}, None, ["expected indices 0..1", "[0]"]),
        (200, {"data": [{"index": i, "embedding": [1.0] * 4} for i in range(2)]}, None, ["shape (2, 4)"]),
        (200, {"data": [{"index": i, "embedding": [1.0] * (8 - i)} for i in range(2)]}, None, ["numeric vectors"]),
        (200, {"data": [{"index": i, "embedding": [float("nan")] * 8} for i in range(2)]}, None, ["nan or inf"]),
        (200, {"data": [{"index": i, "embedding": [0.0] * 8} for i in range(2)]}, None, ["zero vector"]),
    ],
)
def test_unusable_replies_are_embedding_errors_naming_what_arrived(make, server, status, body, content_type, words):
    server.fail_next(status=status, body=body, content_type=content_type)
    with pytest.raises(EmbeddingError) as info:
        make(dims=8).embed(["a", "b"])
    msg = str(info.value).lower()
    for word in words:
        assert word in msg


def test_a_long_non_json_reply_is_cut_in_the_message(make, server):
    server.fail_next(status=200, body=b"<html>" + b"x" * 10_000, content_type="text/html")
    with pytest.raises(EmbeddingError) as info:
        make(dims=8).embed(["a"])
    assert len(str(info.value)) < 400 and "..." in str(info.value)


def test_a_refused_input_carries_the_api_message_and_is_not_called_retried(make, server):
    message = "This model's maximum context length is 8192 tokens, however you requested 9000 tokens."
    server.fail_next(status=400, body={"error": {"message": message, "type": "invalid_request_error"}})
    with pytest.raises(EmbeddingError) as info:
        make(max_retries=3).embed(["x" * 40_000])
    msg = str(info.value)
    assert len(server.requests) == 1
    assert "retries" not in msg and "not retried" in msg
    assert "status 400" in msg and message in msg
    assert info.value.status == 400 and info.value.refused_input


def test_a_server_error_after_retries_says_so_with_the_api_message(make, server):
    server.fail_always(status=503, retry_after="0.01")
    with pytest.raises(EmbeddingError) as info:
        make(max_retries=2).embed(["x"])
    msg = str(info.value)
    assert "status 503 after 2 retries" in msg and "scripted 503" in msg
    assert info.value.status == 503 and not info.value.refused_input
