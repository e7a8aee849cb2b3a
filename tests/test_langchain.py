"""semsearch.langchain: LangChain's own standard VectorStore tests (sync and async, unmodified), then ours.

The standard suite (``langchain_tests.integration_tests.VectorStoreIntegrationTests``) gets an
empty store on a fresh collection per test, in one database per module; its async tests run
on ``semsearch.aio`` (anyio runs them: the suite's coroutine tests carry no marker of their own).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from inspect import iscoroutinefunction

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import semsearch
import semsearch.aio
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.langchain import LangChainEmbedder, SemsearchVectorStore

pytestmark = pytest.mark.anyio

_names = (f"lc{i}" for i in itertools.count())


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def module_adb(module_db: semsearch.Database) -> AsyncIterator[semsearch.aio.AsyncDatabase]:
    """The module's database on the async pool, opened in the test's event loop."""
    async with await semsearch.aio.connect(module_db.url) as adb:
        yield adb


@pytest.fixture
def fresh(module_db: semsearch.Database) -> Iterator[semsearch.Collection]:
    """A new, empty collection embedded by LangChain's standard fake embeddings; dropped afterwards."""
    col = module_db.create_collection(next(_names), embedder=LangChainEmbedder(STANDARD.get_embeddings()))
    try:
        yield col
    finally:
        module_db.drop_collection(col.name)


@pytest.fixture
async def fresh_async(fresh: semsearch.Collection, module_adb: semsearch.aio.AsyncDatabase) -> semsearch.aio.AsyncCollection:
    """The fresh collection's async handle."""
    return await module_adb.collection(fresh.name)


class TestSemsearchVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, fresh: semsearch.Collection, request: pytest.FixtureRequest) -> VectorStore:
        """An empty store on a fresh collection; an async test's store awaits on the async handle."""
        acol = request.getfixturevalue("fresh_async") if iscoroutinefunction(request.function) else None
        return SemsearchVectorStore(fresh, async_collection=acol, embedding=self.get_embeddings())


STANDARD = VectorStoreIntegrationTests
