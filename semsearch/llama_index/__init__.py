"""LlamaIndex over semsearch: a vector store on a collection, and semsearch's embedders as LlamaIndex models.

Needs the ``llama-index`` extra (``pip install 'semsearch[llama-index]'``: llama-index-core only).

Example::

    import semsearch
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from semsearch.llama_index import SemsearchEmbedding, SemsearchVectorStore

    col = semsearch.connect().create_collection("li_docs", model="local", dims=256)
    store = SemsearchVectorStore(col)
    index = VectorStoreIndex.from_documents(
        [Document(text="cats purr and nap in the sun")],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=SemsearchEmbedding(col.embedder),
    )
    index.as_retriever(vector_store_query_mode="hybrid", alpha=0.5).retrieve("napping kittens")
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:
    raise ImportError("semsearch.llama_index needs llama-index-core: pip install 'semsearch[llama-index]'") from exc

from semsearch.llama_index.embedding import SemsearchEmbedding
from semsearch.llama_index.metadata_filters import to_where
from semsearch.llama_index.store import SemsearchVectorStore

__all__ = ["SemsearchEmbedding", "SemsearchVectorStore", "to_where"]
