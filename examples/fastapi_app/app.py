"""A JSON search API with FastAPI on ``semsearch.aio``: add documents, search them by meaning, words or both.

Run it (the embedded Postgres and the local model need no setup)::

    pip install 'semsearch[local]' fastapi uvicorn
    uvicorn --app-dir examples/fastapi_app app:app

    curl -X POST localhost:8000/documents -H 'content-type: application/json' \\
         -d '[{"key": "cat", "content": "cats purr and nap"}, {"key": "dog", "content": "dogs bark"}]'
    curl 'localhost:8000/search?q=kitten&k=3&mode=hybrid'

Every request runs on the event loop: searches and writes are awaited on
psycopg's async pool, so one worker serves many requests at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import semsearch.aio
from semsearch.errors import CollectionNotFoundError, InvalidInputError, SemsearchError


class Document(BaseModel):
    key: str
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)


def create_app(
    url: str | None = None, *, collection: str = "fastapi_example", model: str = "local", dims: int = 256
) -> FastAPI:
    """The example app on ``url`` (default: ``SEMSEARCH_DATABASE_URL``, else the embedded server).

    Example::

        app = create_app("postgresql://localhost/app", collection="notes", dims=64)
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # one pool for the app's lifetime; the collection is created on the first start
        async with await semsearch.aio.connect(url, max_connections=int(os.environ.get("POOL_SIZE", 4))) as db:
            try:
                app.state.docs = await db.collection(collection)
            except CollectionNotFoundError:
                app.state.docs = await db.create_collection(collection, model=model, dims=dims)
            yield

    app = FastAPI(title="semsearch example", lifespan=lifespan)

    @app.exception_handler(InvalidInputError)
    async def refused(request: Request, exc: InvalidInputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(SemsearchError)
    async def failed(request: Request, exc: SemsearchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.post("/documents", status_code=201)
    async def add_documents(documents: list[Document]) -> dict[str, int]:
        """Insert or update documents by key (texts already stored are not embedded again)."""
        result = await app.state.docs.add(
            [d.key for d in documents], [d.content for d in documents], metadata=[d.metadata for d in documents]
        )
        return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}

    @app.get("/search")
    async def search(
        q: str,
        k: int = Query(10, ge=1, le=100),
        mode: Literal["vector", "text", "hybrid"] = "vector",
    ) -> dict[str, Any]:
        """The ``k`` documents best matching ``q``, best first."""
        result = await app.state.docs.search(q, k=k, mode=mode)
        return {
            "query": q,
            "mode": mode,
            "complete": result.complete,
            "hits": [{"key": h.key, "content": h.content, "score": h.score, "metadata": h.metadata} for h in result],
        }

    return app


app = create_app()
