"""A real local HTTP server that answers like OpenAI's embeddings endpoint.

Tests drive the genuine ``openai`` SDK against it, so retries, headers and
parsing are the SDK's own. Vectors are a pure function of (model, text)::

    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        client.embeddings.create(model="text-embedding-3-small", input=["hi"])
        assert server.requests[0].inputs == ["hi"]
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

FULL_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_DIMS = 1536  # for models the fake does not know, e.g. an Azure deployment name
MAX_BODY_BYTES = 32 * 2**20
MAX_SCRIPTED = 100


def full_vector(text: str, model: str) -> np.ndarray:
    """The unit-norm float64 vector the fake returns for ``text`` at the model's full size."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(FULL_DIMS.get(model, DEFAULT_DIMS))
    return vec / np.linalg.norm(vec)


def expected_vector(text: str, model: str, dims: int | None = None) -> np.ndarray:
    """What the fake answers for ``dimensions=dims``: the full vector cut and re-normalised."""
    vec = full_vector(text, model)[:dims]
    return vec / np.linalg.norm(vec)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (failed and retried ones included)."""

    path: str
    model: Any
    inputs: Any
    dimensions: Any
    encoding_format: Any
    headers: dict[str, str]  # lowercased names


@dataclass(frozen=True)
class _Scripted:
    status: int
    body: Any  # a JSON value, or bytes sent as they are
    headers: dict[str, str]


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {429: "rate_limit_exceeded"}.get(status, "server_error" if status >= 500 else None)
    return {
        "error": {
            "message": message,
            "type": kind or "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


class FakeOpenAI:
    """``POST .../embeddings`` on 127.0.0.1, with recording and fault injection.

    Example::

        with FakeOpenAI() as server:
            server.fail_next(status=429, retry_after="0.2")  # then answers normally
            server.fail_always(status=500)                  # until fail_always(None)
            server.reverse_order = True                     # data[] in reversed index order
            server.refused["some text"] = "too long"        # a 400 for any request holding it
    """

    def __init__(self, *, reverse_order: bool = False, max_requests: int = 1000, delay: float = 0.0) -> None:
        self.reverse_order = reverse_order
        #: seconds each answer waits, so a client can be caught (and killed) mid-request
        self.delay = min(max(delay, 0.0), 10.0)
        self.max_requests = max_requests
        self.requests: list[RecordedRequest] = []
        self._scripted: deque[_Scripted] = deque()
        self._always: _Scripted | None = None
        #: texts answered with a 400 (and this message) whenever a request holds one of them
        self.refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what ``openai.OpenAI(base_url=...)`` expects."""
        assert self._httpd is not None, "server is not running"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, e.g. for ``openai.AzureOpenAI(azure_endpoint=...)``."""
        return self.base_url.removesuffix("/v1")

    def fail_next(
        self,
        status: int = 500,
        *,
        retry_after: str | None = None,
        times: int = 1,
        body: Any = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``body`` if given).

        ``body`` is any JSON value, or bytes sent as they are (with ``content_type``,
        default ``application/json``), to answer with what is not JSON at all.
        """
        scripted = self._script(status, retry_after, body)
        if content_type is not None:
            scripted = _Scripted(scripted.status, scripted.body, {**scripted.headers, "Content-Type": content_type})
        with self._lock:
            if len(self._scripted) + times > MAX_SCRIPTED:
                raise ValueError(f"at most {MAX_SCRIPTED} scripted responses may be queued")
            self._scripted.extend([scripted] * times)

    def fail_always(self, status: int | None = 500, *, retry_after: str | None = None) -> None:
        """Answer every request with ``status`` after the queue drains; ``None`` stops it."""
        with self._lock:
            self._always = None if status is None else self._script(status, retry_after, None)

    @staticmethod
    def _script(status: int, retry_after: str | None, body: Any) -> _Scripted:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return _Scripted(status, _error_body(status, f"scripted {status}") if body is None else body, headers)

    def start(self) -> FakeOpenAI:
        """Bind a free port and serve from a daemon thread."""
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> _Scripted:
        """Turn one request into (status, body, headers); called from handler threads."""
        try:
            req = json.loads(raw)
        except ValueError:
            return self._script(400, None, _error_body(400, "body is not valid json"))
        if not isinstance(req, dict):
            return self._script(400, None, _error_body(400, "body is not a json object"))
        with self._lock:
            if len(self.requests) >= self.max_requests:
                # a runaway client must not loop forever: refuse, and tell the SDK not to retry
                body = _error_body(400, f"the fake's cap of {self.max_requests} requests is spent")
                return _Scripted(400, body, {"x-should-retry": "false"})
            self.requests.append(
                RecordedRequest(
                    path=path,
                    model=req.get("model"),
                    inputs=req.get("input"),
                    dimensions=req.get("dimensions"),
                    encoding_format=req.get("encoding_format"),
                    headers=headers,
                )
            )
            scripted = self._scripted.popleft() if self._scripted else self._always
        if self.delay:
            time.sleep(self.delay)
        texts = req.get("input")
        bad = [t for t in (texts if isinstance(texts, list) else [texts]) if isinstance(t, str) and t in self.refused]
        if scripted is None and bad:
            return self._script(400, None, _error_body(400, self.refused[bad[0]]))
        return scripted or self._embed(req)

    def _embed(self, req: dict[str, Any]) -> _Scripted:
        model, texts = req.get("model"), req.get("input")
        dims, fmt = req.get("dimensions"), req.get("encoding_format", "float")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(model, str) or not model:
            return self._script(400, None, _error_body(400, "'model' is required"))
        if not isinstance(texts, list) or not 1 <= len(texts) <= 2048:
            return self._script(400, None, _error_body(400, "'input' must hold 1 to 2048 items"))
        if not all(isinstance(t, str) and t for t in texts):
            return self._script(400, None, _error_body(400, "'input' must be non-empty strings"))
        full = FULL_DIMS.get(model, DEFAULT_DIMS)
        if dims is not None:
            if not model.startswith("text-embedding-3"):
                msg = "this model does not support specifying dimensions."
                return self._script(400, None, _error_body(400, msg))
            if not isinstance(dims, int) or not 1 <= dims <= full:
                return self._script(400, None, _error_body(400, f"dimensions must be 1..{full}"))
        if fmt not in ("float", "base64"):
            return self._script(400, None, _error_body(400, "'encoding_format' is invalid"))
        data = []
        for i, text in enumerate(texts):
            vec = expected_vector(text, model, dims)
            payload: Any = vec.tolist()
            if fmt == "base64":
                payload = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": payload})
        if self.reverse_order:
            data.reverse()
        tokens = sum(max(1, len(t) // 4) for t in texts)
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _Scripted(200, body, {})


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes each connection, so no keep-alive thread outlives stop()
    protocol_version = "HTTP/1.0"
    timeout = 10  # a stalled client cannot hold a handler thread for long

    def do_POST(self) -> None:
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if not path.endswith("/embeddings"):
            self._send(_Scripted(404, _error_body(404, f"no route {path}"), {}))
        elif not 0 < length <= MAX_BODY_BYTES:
            self._send(_Scripted(413, _error_body(413, f"body of {length} bytes refused"), {}))
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(fake.handle(path, headers, self.rfile.read(length)))

    def _send(self, answer: _Scripted) -> None:
        raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        if "Content-Type" not in answer.headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean
