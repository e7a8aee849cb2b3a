"""The FastAPI example, served for real by uvicorn, under concurrent requests."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
import uvicorn

import semsearch
from tests.examples import load_example

DOCS = {
    "cat": "cats purr and nap in the sun",
    "dog": "dogs bark at the mail carrier",
    "tax": "file the tax return before the april deadline",
    "jet": "jet engines roar on takeoff",
    "soup": "a recipe for tomato soup with basil",
    "rain": "heavy rain and thunderstorms tonight",
}
QUERIES = [
    ("cats napping", "vector"),
    ("barking puppy", "vector"),
    ("income tax deadline", "text"),
    ("airplane engine noise", "hybrid"),
    ("tomato soup", "hybrid"),
    ("thunderstorms", "text"),
    ("weather forecast storm", "vector"),
]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _example() -> ModuleType:
    return load_example("fastapi_app/app.py", "semsearch_fastapi_example")


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    """The example app under uvicorn on a free loopback port; its base URL."""
    app = _example().create_app(db_url, collection="notes", dims=64)
    # a socket bound (and listening) before the server starts: requests queue until it serves them
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive()


async def test_the_fastapi_example_answers_20_concurrent_requests_as_the_sync_api_does(served, db):
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        # four concurrent writers, then everything is there once
        batches = [list(DOCS.items())[i::4] for i in range(4)]
        posted = await asyncio.gather(
            *(
                client.post("/documents", json=[{"key": k, "content": c, "metadata": {"n": len(c)}} for k, c in b])
                for b in batches
            )
        )
        assert [r.status_code for r in posted] == [201] * 4
        assert sum(r.json()["inserted"] for r in posted) == len(DOCS)
        calls = [QUERIES[i % len(QUERIES)] for i in range(20)]
        answers = await asyncio.gather(*(client.get("/search", params={"q": q, "k": 3, "mode": m}) for q, m in calls))
        refused = await client.get("/search", params={"q": "   ", "mode": "text"})
        cat = {"key": "cat", "content": DOCS["cat"], "metadata": {"n": len(DOCS["cat"])}}
        again = await client.post("/documents", json=[cat])
    col = db.collection("notes")
    assert col.count() == len(DOCS)
    for (q, m), response in zip(calls, answers, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        expected = col.search(q, k=3, mode=m)
        assert [(h["key"], h["score"]) for h in body["hits"]] == [(h.key, h.score) for h in expected], (q, m)
        assert body["hits"][0]["metadata"] == {"n": len(body["hits"][0]["content"])}
    top = {q: r.json()["hits"][0]["key"] for (q, _), r in zip(calls, answers, strict=True)}
    assert (top["cats napping"], top["income tax deadline"], top["tomato soup"]) == ("cat", "tax", "soup")
    assert refused.status_code == 422 and "expected a non-empty query text" in refused.json()["detail"]
    assert again.json() == {"inserted": 0, "updated": 0, "unchanged": 1}


def test_the_fastapi_example_imports_without_connecting():
    # uvicorn imports `app` at startup: the connection is made by the lifespan, not at import
    assert _example().app.title == "semsearch example"
    assert isinstance(semsearch.__version__, str)
