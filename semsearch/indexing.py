"""Keep a collection in step with an application's rows: what every framework integration shares.

An integration (:mod:`semsearch.django`, :mod:`semsearch.sqlalchemy`) decides *when*
(signals, session events) and *which* rows; this module decides how a row becomes a
:data:`Document`, how documents are written once the app's transaction has committed
(an embedding failure leaves the rows pending for ``backfill``, never fails the app),
how a whole table is reconciled with its collection, and how hits become instances
in score order. It imports no framework.

Example::

    docs = {"12": ("Green tea\\n\\nBrew it at 80 °C", {"lang": "en"}, None)}
    write(col, docs, gone=["7"], defer=False, logger=log, repair="reindex")
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg import sql

from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.passages import placement
from semsearch.passages.splitter import Splitter

if TYPE_CHECKING:
    from semsearch.backfill import BackfillResult
    from semsearch.collection import Collection
    from semsearch.results import AddResult, SearchResult

#: ``(text, metadata, tenant)`` of one row, as stored in its collection
Document = tuple[str, dict[str, Any], str | None]
T = TypeVar("T")


class MetadataEncoder(json.JSONEncoder):
    """JSON for metadata: dates and times as ISO 8601, decimals and UUIDs as strings, enums by value.

    Example::

        json.dumps({"at": datetime.date(2024, 5, 1)}, cls=MetadataEncoder)    # '{"at": "2024-05-01"}'
    """

    def default(self, o: Any) -> Any:
        if isinstance(o, (datetime.date, datetime.time)):  # datetime is a date
            return o.isoformat()
        if isinstance(o, (decimal.Decimal, uuid.UUID)):
            return str(o)
        if isinstance(o, enum.Enum):
            return o.value
        return super().default(o)


def document(
    text: Any, metadata: Mapping[str, Any] | None, tenant: Any, *, encoder: type = MetadataEncoder
) -> Document:
    """A row's values as stored: text as a string, metadata as plain JSON, an empty tenant as none.

    Example::

        document("Green tea", {"lang": "en"}, 3)      # ('Green tea', {'lang': 'en'}, '3')
    """
    meta = json.loads(json.dumps(dict(metadata or {}), cls=encoder))
    return ("" if text is None else str(text)), meta, (None if tenant in (None, "") else str(tenant))


def value_function(owner: type, spec: Any, what: str, *, label: str | None = None) -> Callable[[Any], Any]:
    """``spec`` as a function of an instance: a callable as is, or an attribute (a method is called).

    Example::

        value_function(Article, "account_id", "tenant")(article)     # article.account_id
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not hasattr(owner, spec):
        name = label or owner.__name__
        raise ConfigurationError(f"expected {what} as a function or an attribute of {name}, got {spec!r}")

    def value(obj: Any) -> Any:
        got = getattr(obj, spec)
        return got() if callable(got) else got

    return value


def check_passages(passages: Any, label: str) -> Any:
    """``register(passages=...)`` checked before anything is created: what ``create_collection`` takes, or None.

    Example::

        check_passages(Splitter(max_tokens=200), "articles.Manual")      # the splitter, as given
    """
    if passages is None or passages is False:
        return None
    if passages is True or isinstance(passages, Splitter) or callable(passages) or hasattr(passages, "split_text"):
        return passages
    raise ConfigurationError(
        f"expected passages=True, a Splitter, a callable or an object with split_text for {label}, got {passages!r}"
    )


def opened(col: Collection, passages: Any, label: str) -> Collection:
    """``col`` if it can hold what the registration writes: documents split into passages need a collection made so.

    Example::

        opened(db.collection("articles_manual", passages=split), split, "articles.Manual")
    """
    if passages is not None and col.info.passages is None:
        raise ConfigurationError(
            f"expected collection {col.name!r} of {label} to split documents into passages, got one made "
            "without passages=: drop it (its rows are re-indexed from the table) or register without passages="
        )
    return col


def joined_text(names: Sequence[str]) -> Callable[[Any], str]:
    """A function joining the non-blank values of attributes ``names`` by blank lines (a row's text)."""
    names = tuple(names)

    def joined(obj: Any) -> str:
        values = (getattr(obj, n) for n in names)
        return "\n\n".join(str(v) for v in values if v is not None and str(v).strip())

    return joined


def write(
    col: Collection,
    docs: Mapping[str, Document],
    gone: Iterable[str] = (),
    *,
    defer: bool,
    logger: logging.Logger,
    repair: str,
) -> None:
    """Store ``docs`` (rows with empty text are removed instead) and delete keys ``gone``.

    When embedding fails, whatever the embedder raised, the rows are stored pending
    (as ``add(defer=True)``) and a warning naming ``repair`` is logged: ``backfill``
    embeds them later. Other failures (the database) raise, for the caller to log.
    """
    kept = {key: doc for key, doc in docs.items() if doc[0].strip()}
    gone = sorted(set(gone) | (set(docs) - set(kept)))
    if kept:
        keys = list(kept)
        texts, metas, tenants = (list(x) for x in zip(*kept.values(), strict=True))
        try:
            col.add(keys, texts, metadata=metas, tenant=tenants, defer=defer)
        except InvalidInputError:
            raise  # the rows themselves are wrong: storing them pending would fail the same way
        except Exception:
            logger.warning(
                "could not embed %d row(s) of %s now; stored pending, `%s` (or backfill) embeds them",
                len(keys),
                col.name,
                repair,
                exc_info=True,
            )
            col.add(keys, texts, metadata=metas, tenant=tenants, defer=True)
    if gone:
        col.delete(gone)


@dataclass(frozen=True)
class IndexReport:
    """What :func:`reindex` did to one collection."""

    collection: str
    added: AddResult
    removed: int
    backfill: BackfillResult | None


def reindex(
    col: Collection,
    rows: Iterable[tuple[str, Document]],
    *,
    alive: Callable[[list[str]], set[str]],
    total: int | None = None,
    batch_size: int = 500,
    progress: bool = False,
) -> IndexReport:
    """Make ``col`` hold exactly ``rows`` (``(key, document)``): upsert them, drop other keys, embed pending.

    Unchanged texts are not re-embedded (content-hash reuse), so a rerun is cheap.
    ``alive(keys)`` says which of the keys the scan did not see are rows now (saved
    since the scan began, indexed by their own commit): those are kept.
    """
    seen: set[str] = set()

    def records() -> Iterator[dict[str, Any]]:
        for key, (text, meta, tenant) in rows:
            if text.strip():
                seen.add(key)
                yield {"key": key, "content": text, "metadata": meta, "tenant": tenant}

    added = col.add_many(records(), batch_size=batch_size, progress=progress, total=total)
    removed = remove_others(col, seen, alive)
    pending = col.backfill(batch_size=min(batch_size, 2048), progress=progress) if col.pending() else None
    return IndexReport(col.name, added, removed, pending)


def remove_others(col: Collection, seen: set[str], alive: Callable[[list[str]], set[str]]) -> int:
    """Delete the collection's keys that are neither in ``seen`` nor ``alive``; return how many went.

    In a collection with passages the keys are the documents' (a row's key is a passage's).
    """
    if col.info.passages is None:
        query, params = sql.SQL("SELECT key FROM {}").format(col.layout.table), []
    else:
        query = sql.SQL("SELECT DISTINCT metadata -> %s ->> 'doc' FROM {}").format(col.layout.table)
        params = [placement.PASSAGE]
    with col.db.connection() as conn:
        keys = [r[0] for r in conn.execute(query, params) if r[0] is not None]
    candidates = [k for k in keys if k not in seen]
    removed = 0
    for i in range(0, len(candidates), 1000):
        chunk = candidates[i : i + 1000]
        living = alive(chunk)
        removed += col.delete([k for k in chunk if k not in living])
    return removed


def in_score_order(result: SearchResult, found: Mapping[str, T]) -> list[T]:
    """The instances of ``result``'s hits (``found``: key -> instance), best first, with ``semsearch_score`` set.

    Hits with no instance (rows deleted since they were indexed) are skipped. Each instance also
    gets ``semsearch_passage``: in a collection with passages (one hit per document) the best
    :class:`~semsearch.Passage` found (``seq``, ``start``, ``end``, ``text``, ``score``), else None;
    and ``semsearch_snippet``: text and hybrid searches of passages, the query's words in ``<b>``.

    Example::

        in_score_order(col.search("tea", k=3), {"12": a12, "7": a7})   # [a7, a12] if '7' scored higher
    """
    out = []
    for hit in result:
        obj = found.get(hit.key)
        if obj is not None:
            obj.semsearch_score = hit.score  # type: ignore[attr-defined]
            obj.semsearch_passage = hit.passages[0] if hit.passages else None  # type: ignore[attr-defined]
            obj.semsearch_snippet = hit.snippet  # type: ignore[attr-defined]
            out.append(obj)
    return out
