"""SQLAlchemy ORM integration: mapped classes indexed on commit, searched as instances.

Example::

    from semsearch.sqlalchemy import register, reindex, search

    register(Article, text=("title", "body"), metadata=("lang",))

    with Session(engine) as session:
        session.add(Article(title="Green tea", body="Brew it at 80 °C", lang="en"))
        session.commit()                                   # indexed after the commit
        search(session, Article, "how do I make tea?", k=5)   # [<Article>, ...] with .semsearch_score

How rows are kept in sync: :mod:`semsearch.sqlalchemy.sync`; the table-valued
function for Core queries: :func:`search_function`.
"""

from semsearch.sqlalchemy.registry import (
    Registration,
    close,
    register,
    registration_for,
    registrations,
    unregister,
)
from semsearch.sqlalchemy.search import search, search_function
from semsearch.sqlalchemy.sync import reindex
from semsearch.sqlalchemy.urls import engine_url

__all__ = [
    "Registration",
    "close",
    "engine_url",
    "register",
    "registration_for",
    "registrations",
    "reindex",
    "search",
    "search_function",
    "unregister",
]
