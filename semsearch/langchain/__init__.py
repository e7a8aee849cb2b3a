"""LangChain: a semsearch collection as a ``VectorStore``, and LangChain embeddings as a semsearch embedder.

Needs ``pip install 'semsearch[langchain]'`` (langchain-core only). See README, "LangChain".

Example::

    from semsearch.langchain import SemsearchVectorStore

    store = SemsearchVectorStore(db.collection("kb"))
    docs = store.as_retriever(search_kwargs={"k": 4, "mode": "hybrid"}).invoke("cats")
"""

from semsearch.langchain.embeddings import LangChainEmbedder
from semsearch.langchain.vectorstore import SemsearchVectorStore

__all__ = ["LangChainEmbedder", "SemsearchVectorStore"]
