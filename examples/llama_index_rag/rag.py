"""Retrieval for an LLM with LlamaIndex on semsearch, offline: long documents split into nodes, three ways to search.

The documents are Python's own: each standard-library module's docstrings make one long
document. LlamaIndex splits them (``SentenceSplitter``), semsearch's local model embeds them
(``SemsearchEmbedding``: offline, no API key) and ``SemsearchVectorStore`` keeps the nodes in a
collection, where semsearch searches them by meaning, by words (BM25) or both (hybrid)::

    pip install 'semsearch[local,llama-index]'
    python examples/llama_index_rag/rag.py "how do I open a zip archive?"

The answer comes from LlamaIndex's ``MockLLM`` so that the example runs offline; give
``answer()`` any LlamaIndex LLM (``llama-index-llms-openai``'s ``OpenAI()``, ...) for a real one.
``SEMSEARCH_DATABASE_URL`` points it at another Postgres (default: the embedded server).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeWithScore
from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

import semsearch
from semsearch.demo import stdlib_corpus
from semsearch.errors import CollectionNotFoundError
from semsearch.llama_index import SemsearchEmbedding, SemsearchVectorStore

MODULES = ("calendar", "configparser", "datetime", "logging", "math", "pathlib", "smtplib", "socket", "sqlite3",
           "tarfile", "threading", "zipfile")  # fmt: skip


def documents(modules: Sequence[str] = MODULES) -> list[Document]:
    """One document per module: its members' docstrings, one paragraph each (a few thousand characters)."""
    paragraphs: dict[str, list[str]] = {m: [] for m in modules}
    for record in stdlib_corpus():
        module = record["metadata"]["module"]
        if module in paragraphs:
            paragraphs[module].append(f"{record['key']}: {record['content']}")
    return [Document(text="\n\n".join(p), id_=m, metadata={"module": m}) for m, p in paragraphs.items()]


def build(db: semsearch.Database, collection: str = "llama_index_example") -> VectorStoreIndex:
    """The index over the collection (made on the first run); each run replaces the documents' nodes."""
    try:
        col = db.collection(collection)
    except CollectionNotFoundError:
        col = db.create_collection(collection, model="local", dims=256)
    store = SemsearchVectorStore(col)
    docs = documents()
    for doc in docs:  # a document's old nodes go (delete by ref_doc_id), its new ones come
        store.delete(doc.id_)
    return VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=SemsearchEmbedding(col.embedder),
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32)],
    )


def search(
    index: VectorStoreIndex, question: str, mode: str = "hybrid", *, k: int = 3, module: str | None = None
) -> list[NodeWithScore]:
    """The ``k`` best nodes for ``question``: ``mode`` is ``default`` (vector), ``text_search`` or ``hybrid``."""
    filters = MetadataFilters(filters=[MetadataFilter(key="module", value=module)]) if module else None
    retriever = index.as_retriever(vector_store_query_mode=mode, similarity_top_k=k, filters=filters)
    return retriever.retrieve(question)


def answer(index: VectorStoreIndex, question: str, llm: LLM | None = None) -> Response:
    """An LLM's answer from the best passages (hybrid search); ``response.source_nodes`` says which."""
    engine = index.as_query_engine(
        llm=llm or MockLLM(max_tokens=32), vector_store_query_mode="hybrid", similarity_top_k=3
    )
    response = engine.query(question)
    assert isinstance(response, Response)  # not streaming
    return response


def main(argv: Sequence[str]) -> None:
    question = argv[0] if argv else "how do I open a zip archive?"
    with semsearch.connect() as db:
        index = build(db)
        for mode in ("default", "text_search", "hybrid"):
            print(f"{mode}:")
            for hit in search(index, question, mode):
                first_line = hit.node.get_content().splitlines()[0]
                print(f"  {hit.score:7.3f}  {hit.node.ref_doc_id:12}  {first_line[:70]}")
        response = answer(index, question)
        print("sources:", sorted({str(n.node.ref_doc_id) for n in response.source_nodes}))


if __name__ == "__main__":
    main(sys.argv[1:])
