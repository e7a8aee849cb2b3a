"""A LangChain ``VectorStore`` over a semsearch collection: BM25, hybrid fusion and compressed plans in LangChain.

Documents are rows: ``Document.id`` is the row's key, ``page_content`` its content and
``metadata`` its metadata, so a row written here is a row semsearch's own API, CLI and SQL
functions see. Searches take semsearch's options as keyword arguments (``mode``, ``filter``,
``tenant``, ...), so a retriever's ``search_kwargs`` choose vector, text or hybrid search.

Example::

    import semsearch
    from semsearch.langchain import SemsearchVectorStore

    db = semsearch.connect()
    store = SemsearchVectorStore(db.create_collection("kb", model="local", dims=256))
    store.add_texts(["cats purr", "dogs bark"], metadatas=[{"pet": "cat"}, {"pet": "dog"}], ids=["c", "d"])
    store.similarity_search("kitten", k=1)[0].id                                  # 'c'
    retriever = store.as_retriever(search_kwargs={"k": 4, "mode": "hybrid", "filter": {"pet": "cat"}})
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("semsearch.langchain needs langchain-core: pip install 'semsearch[langchain]'") from exc

from semsearch.aio import AsyncCollection
from semsearch.collection import Collection
from semsearch.db import Database, connect
from semsearch.errors import CollectionNotFoundError, ConfigurationError, InvalidInputError
from semsearch.langchain.embeddings import LangChainEmbedder
from semsearch.results import SearchResult
from semsearch.stored import Row

#: what a search takes besides the query and ``k`` (``filter`` is semsearch's ``where=``)
SEARCH_OPTIONS = frozenset(
    {
        "filter", "tenant", "mode", "fusion", "vector_weight", "text_weight", "oversample", "ef_search", "exact",
        "score_threshold", "offset",
    }
)  # fmt: skip


class SemsearchVectorStore(VectorStore):
    """A semsearch collection as a LangChain ``VectorStore`` (sync, async, retriever).

    ``collection`` serves the sync methods and ``async_collection`` (a
    :class:`semsearch.aio.AsyncCollection` of the same name) the async ones, awaited on
    psycopg's async pool; without it the async methods run the sync ones in a worker thread.
    ``embedding`` (a LangChain ``Embeddings``) embeds documents and queries
    (``embed_documents`` / ``embed_query``); without it the collection's own embedder does
    (the model it was created with). ``tenant`` is every call's tenant unless a call names one.

    Searches take ``k`` and semsearch's options: ``mode`` (``"vector"``, ``"text"`` for BM25,
    ``"hybrid"``), ``filter`` (a semsearch filter, see :mod:`semsearch.filters`),
    ``tenant``, ``fusion``/``vector_weight``/``text_weight``, ``oversample``,
    ``ef_search``, ``exact``, ``score_threshold``, ``offset``. Scores are
    :class:`semsearch.Hit`'s: cosine similarity for vector search, which is also the
    relevance score (``similarity_search_with_relevance_scores``).

    Example::

        store = SemsearchVectorStore(col, async_collection=acol, embedding=OpenAIEmbeddings())
        await store.aadd_documents([Document("cats purr", metadata={"year": 2020})], ids=["c"])
        store.similarity_search_with_score("kitten", k=3, mode="hybrid", filter={"year": {"$gte": 2000}})
    """

    def __init__(
        self,
        collection: Collection | None = None,
        *,
        async_collection: AsyncCollection | None = None,
        embedding: Embeddings | None = None,
        tenant: str | None = None,
    ) -> None:
        if collection is None and async_collection is None:
            raise ConfigurationError("expected a collection or async_collection=, got neither")
        if collection is not None and not isinstance(collection, Collection):
            raise ConfigurationError(f"expected a semsearch Collection, got {type(collection).__name__}")
        if async_collection is not None and not isinstance(async_collection, AsyncCollection):
            raise ConfigurationError(
                f"expected async_collection= an AsyncCollection, got {type(async_collection).__name__}"
            )
        if collection is not None and async_collection is not None and collection.name != async_collection.name:
            raise ConfigurationError(
                f"expected handles of one collection, got {collection.name!r} and {async_collection.name!r}"
            )
        handle = collection if collection is not None else async_collection
        assert handle is not None
        self.collection = collection
        self.async_collection = async_collection
        self.embedding = embedding
        self.tenant = tenant
        self._embedder = None if embedding is None else LangChainEmbedder(embedding, dims=handle.dims)

    @property
    def embeddings(self) -> Embeddings | None:
        """The LangChain ``Embeddings`` given (None: the collection's own embedder embeds)."""
        return self.embedding

    def __repr__(self) -> str:
        handle = self.collection if self.collection is not None else self.async_collection
        return f"SemsearchVectorStore({handle!r})"

    # -- writes -----------------------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Insert or update texts by id in one transaction; return their ids (new ones are UUIDs).

        An id already stored is updated. Without ``embedding=`` the collection's embedder embeds
        only texts not stored yet (an unchanged text keeps its vector); with it, LangChain's
        ``embed_documents`` embeds every text given.

        Example::

            store.add_texts(["cats purr"], metadatas=[{"pet": "cat"}], ids=["c"])     # ['c']
        """
        col = self._sync("add_texts")
        texts, metadatas, keys = _rows(texts, metadatas, ids, kwargs)
        vectors = None if self._embedder is None or not texts else self._embedder.embed(texts)
        col.add(keys, texts, embeddings=vectors, metadata=metadatas, tenant=self._tenant(tenant))
        return keys

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`add_texts`, awaited on the async collection."""
        if self.async_collection is None:
            return await super().aadd_texts(texts, metadatas, ids=ids, tenant=tenant, **kwargs)
        texts, metadatas, keys = _rows(texts, metadatas, ids, kwargs)
        vectors = None if self._embedder is None or not texts else await self._embedder.aembed(texts)
        await self.async_collection.add(
            keys, texts, embeddings=vectors, metadata=metadatas, tenant=self._tenant(tenant)
        )
        return keys

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete rows by id; ids not stored are no error. Without ids: the rows ``filter``/``tenant`` keep.

        Without ids nor a filter every row is deleted (LangChain's contract for ``delete()``).
        A store with a ``tenant`` deletes that tenant's rows only.

        Example::

            store.delete(["c", "d"])
            store.delete(filter={"source": "old.pdf"})
        """
        col = self._sync("delete")
        args = self._deletion(ids, kwargs)
        if ids is not None and args["tenant"] is not None:
            # keys are the collection's; only those the tenant holds go
            args = {"keys": [r.key for r in col.get(args["keys"], tenant=args["tenant"])], "tenant": None}
        if args.get("keys") != []:
            col.delete(**args)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """:meth:`delete`, awaited on the async collection."""
        if self.async_collection is None:
            return await super().adelete(ids, **kwargs)
        col = self.async_collection
        args = self._deletion(ids, kwargs)
        if ids is not None and args["tenant"] is not None:
            args = {"keys": [r.key for r in await col.get(args["keys"], tenant=args["tenant"])], "tenant": None}
        if args.get("keys") != []:
            await col.delete(**args)
        return True

    def _deletion(self, ids: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """``Collection.delete``'s arguments: keys (with the tenant to check), a filter, or every row."""
        _only(kwargs, {"filter", "tenant"}, "delete")
        tenant = self._tenant(kwargs.get("tenant"))
        where = kwargs.get("filter")
        if ids is not None:
            if where is not None:
                raise InvalidInputError("expected ids or filter= to delete by, got both")
            return {"keys": _keys(ids), "tenant": tenant}
        if not where and tenant is None:
            return {"all_rows": True}
        return {"where": where or None, "tenant": tenant}

    # -- lookups ----------------------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked; ids not stored are absent.

        Example::

            store.get_by_ids(["c", "nope"])     # [Document(id='c', page_content='cats purr', ...)]
        """
        return [_document(r) for r in self._sync("get_by_ids").get(_keys(ids), tenant=self.tenant)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """:meth:`get_by_ids`, awaited on the async collection."""
        if self.async_collection is None:
            return await super().aget_by_ids(ids)
        return [_document(r) for r in await self.async_collection.get(_keys(ids), tenant=self.tenant)]

    # -- searches ---------------------------------------------------------------------------------------------

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents best matching ``query`` (see the class for the options).

        Example::

            store.similarity_search("kitten", k=3, mode="hybrid", filter={"pet": "cat"})
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search`, awaited on the async collection."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` best documents with their scores (cosine similarity; BM25 or fused for text and hybrid).

        Example::

            [(d.id, round(s, 2)) for d, s in store.similarity_search_with_score("kitten", k=2)]
        """
        col = self._sync("similarity_search")
        search = self._search_args(query, k, kwargs)
        if self._embedder is not None and search["mode"] != "text":
            search["vector"] = self._embedder.embed_query(query)
            if search["mode"] == "vector":
                search["query"] = None
        return _scored(col.search(**search))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_with_score`, awaited on the async collection."""
        if self.async_collection is None:
            return await super().asimilarity_search_with_score(query, k, **kwargs)
        search = self._search_args(query, k, kwargs)
        if self._embedder is not None and search["mode"] != "text":
            search["vector"] = await self._embedder.aembed_query(query)
            if search["mode"] == "vector":
                search["query"] = None
        return _scored(await self.async_collection.search(**search))

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to a query vector (vector search; the options of the class).

        Example::

            store.similarity_search_by_vector(embeddings.embed_query("kitten"), k=3, filter={"pet": "cat"})
        """
        col = self._sync("similarity_search_by_vector")
        return [doc for doc, _ in _scored(col.search(**self._vector_args(embedding, k, kwargs)))]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search_by_vector`, awaited on the async collection."""
        if self.async_collection is None:
            return await super().asimilarity_search_by_vector(embedding, k, **kwargs)
        found = await self.async_collection.search(**self._vector_args(embedding, k, kwargs))
        return [doc for doc, _ in _scored(found)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # a vector search's score is the cosine similarity already: LangChain's relevance for cosine
        return _identity

    def _search_args(self, query: str, k: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        _only(kwargs, SEARCH_OPTIONS, "a search")
        args = {name: value for name, value in kwargs.items() if name != "filter"}
        mode = args.setdefault("mode", "vector")
        if not isinstance(query, str):
            raise InvalidInputError(f"expected the query as a str, got {type(query).__name__}")
        return {
            **args,
            "query": query,
            "k": k,
            "mode": mode,
            "where": kwargs.get("filter"),
            "tenant": self._tenant(args.get("tenant")),
        }

    def _vector_args(self, embedding: Sequence[float], k: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if kwargs.get("mode", "vector") != "vector":
            raise InvalidInputError(f"expected mode 'vector' for a search by vector, got {kwargs['mode']!r}")
        args = self._search_args("", k, {**kwargs, "mode": "vector"})
        return {**args, "query": None, "vector": list(embedding)}

    # -- handles ----------------------------------------------------------------------------------------------

    def _sync(self, method: str) -> Collection:
        if self.collection is None:
            raise ConfigurationError(
                f"expected a sync collection for {method}, got only async_collection=: await a{method}"
            )
        return self.collection

    def _tenant(self, tenant: str | None) -> str | None:
        return self.tenant if tenant is None else tenant

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        db: Database | None = None,
        collection_name: str = "langchain",
        tenant: str | None = None,
        **kwargs: Any,
    ) -> SemsearchVectorStore:
        """A store on collection ``collection_name`` (created for ``embedding`` if missing) holding these texts.

        ``db`` defaults to :func:`semsearch.connect` (``SEMSEARCH_DATABASE_URL``, else the
        embedded server); other keyword arguments go to :meth:`semsearch.Database.create_collection`
        when the collection is created (``compression=``, ``tenant_required=``, ...).

        Example::

            store = SemsearchVectorStore.from_texts(["cats purr", "dogs bark"], OpenAIEmbeddings(), db=db)
        """
        db = connect() if db is None else db
        try:
            col = db.collection(collection_name)
        except CollectionNotFoundError:
            col = db.create_collection(collection_name, embedder=LangChainEmbedder(embedding), **kwargs)
        store = cls(col, embedding=embedding, tenant=tenant)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _identity(score: float) -> float:
    return score


def _only(kwargs: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InvalidInputError(f"expected options of {what} among {', '.join(sorted(allowed))}, got {unknown[0]!r}")


def _keys(ids: Any) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidInputError(f"expected ids as a list of str, got {type(ids).__name__}")
    return list(ids)


def _rows(
    texts: Iterable[str],
    metadatas: list[dict[str, Any]] | None,
    ids: Sequence[str | None] | None,
    kwargs: Mapping[str, Any],
) -> tuple[list[str], list[dict[str, Any]] | None, list[str]]:
    """Texts, metadata and keys checked to line up; a missing id becomes a new UUID."""
    _only(kwargs, (), "add_texts")
    if isinstance(texts, str):
        raise InvalidInputError("expected texts as a list of str, got one str")
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidInputError(f"expected {len(texts)} metadatas, one per text, got {len(metadatas)}")
    if ids is not None and len(ids) != len(texts):
        raise InvalidInputError(f"expected {len(texts)} ids, one per text, got {len(ids)}")
    keys = [str(uuid.uuid4()) if i is None else i for i in (ids or [None] * len(texts))]
    return texts, metadatas, keys


def _document(row: Row) -> Document:
    return Document(id=row.key, page_content=row.content, metadata=dict(row.metadata or {}))


def _scored(result: SearchResult) -> list[tuple[Document, float]]:
    return [
        (Document(id=h.key, page_content=h.content, metadata=dict(h.metadata or {})), float(h.score)) for h in result
    ]
