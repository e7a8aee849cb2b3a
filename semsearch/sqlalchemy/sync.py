"""Keep collections in step with committed rows: session events, and full reindexing.

``after_flush`` notes the primary keys of registered instances inserted, deleted or
updated (an update only when an indexed attribute changed); ``do_orm_execute``
notes the rows an ORM ``update(...)`` / ``delete(...)`` statement is about to touch.
``after_commit`` then reconciles the noted rows with what was committed (read back
in a session of its own): rows with text are added (embedded now, or stored pending
with ``defer=True``), the others deleted from the collection; ``after_rollback``
discards the notes. Nothing is written to semsearch inside the app's transaction.

A failure to index never fails the app's commit, which has happened already: an
embedding failure stores the rows pending for ``backfill``, any other failure is
logged as a warning on the ``semsearch.sqlalchemy`` logger, and :func:`reindex`
repairs the drift (also after bulk statements that emit no events: Core
``insert``/``update``/``delete`` on the table, raw SQL, or ORM statements touching
more than :data:`NOTE_LIMIT` rows).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from semsearch import indexing
from semsearch.indexing import IndexReport
from semsearch.sqlalchemy.registration import Registration, registered, registration_for

logger = logging.getLogger("semsearch.sqlalchemy")
#: most rows one ORM update/delete statement notes; beyond it, run :func:`reindex`
NOTE_LIMIT = 10_000
_INFO_KEY = "semsearch_changes"


@dataclass
class _Noted:
    """The rows of one registration that one transaction touched, and where they live."""

    bind: Engine | Connection
    pks: set[Any] = field(default_factory=set)
    overflow: bool = False


def listen() -> None:
    """Attach the session hooks (to every :class:`~sqlalchemy.orm.Session`, once)."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _do_orm_execute),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


def _noted(session: Session, reg: Registration) -> _Noted:
    changes: dict[Registration, _Noted] = session.info.setdefault(_INFO_KEY, {})
    if reg not in changes:
        changes[reg] = _Noted(session.get_bind(mapper=reg.mapper))
    return changes[reg]


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    # history and session.new/dirty/deleted still show what this flush wrote
    try:
        for obj in [*session.new, *session.deleted, *session.dirty]:
            reg = registered(type(obj))
            if reg is None or (obj in session.dirty and not _indexed_change(reg, obj)):
                continue
            state = inspect(obj)
            pk = state.identity[0] if state.identity else reg.mapper.primary_key_from_instance(obj)[0]
            if pk is not None:
                _noted(session, reg).pks.add(pk)
    except Exception:  # never break the app's flush
        logger.warning("could not note changed rows; `reindex` repairs it", exc_info=True)


def _indexed_change(reg: Registration, obj: Any) -> bool:
    attrs = inspect(obj).attrs
    if reg.watched is None:
        return any(a.history.has_changes() for a in attrs)
    return any(attrs[name].history.has_changes() for name in reg.watched)


def _do_orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    try:
        mapper = state.bind_mapper
        reg = registered(mapper.class_) if mapper is not None else None
        if reg is None:
            return
        (column,) = reg.mapper.primary_key
        params = state.parameters
        if isinstance(params, list) and params:  # ORM bulk UPDATE by primary key
            attr = reg.mapper.get_property_by_column(column).key
            if _touches_index(reg, {k for p in params for k in p} - {attr}):
                _noted(state.session, reg).pks.update(p[attr] for p in params if attr in p)
            return
        # e.g. a view counter: an UPDATE of attributes that are not indexed costs nothing
        if state.is_update and not _touches_index(reg, getattr(state.statement, "_values", None)):
            return
        noted = _noted(state.session, reg)
        where = state.statement.whereclause  # type: ignore[attr-defined]
        query = select(column) if where is None else select(column).where(where)
        # the rows it will touch, read in the app's transaction before it runs
        pks = state.session.execute(query.limit(NOTE_LIMIT + 1)).scalars().all()
        if len(pks) > NOTE_LIMIT:
            noted.overflow = True
        else:
            noted.pks.update(pks)
    except Exception:  # never break the app's statement
        logger.warning("could not note the rows of a bulk statement; `reindex` repairs it", exc_info=True)


def _touches_index(reg: Registration, keys: Iterable[Any] | None) -> bool:
    """Whether setting ``keys`` (names, attributes or columns; ``None``: unknown) may change a document."""
    if reg.watched is None or keys is None:
        return True
    names = set()
    for key in keys:
        name = key if isinstance(key, str) else getattr(key, "key", None)
        if not isinstance(name, str):
            return True
        names.add(name)
    return bool(names & reg.watched) or not names <= set(reg.mapper.attrs.keys())


def _after_commit(session: Session) -> None:
    changes: dict[Registration, _Noted] = session.info.pop(_INFO_KEY, {})
    for reg, noted in changes.items():
        if noted.overflow:
            logger.warning(
                "a bulk statement touched more than %d %s rows; run semsearch.sqlalchemy.reindex(session, %s)",
                NOTE_LIMIT,
                reg.label,
                reg.model.__qualname__,
            )
        if noted.pks:
            reconcile(reg, noted.bind, noted.pks)


def _after_rollback(session: Session) -> None:
    # fires for the real rollback, not for a savepoint's: rows noted in a rolled-back
    # savepoint stay noted, harmless since reconcile reads the committed rows
    if not session.in_transaction():
        session.info.pop(_INFO_KEY, None)


def reconcile(reg: Registration, bind: Engine | Connection, pks: Iterable[Any]) -> None:
    """Make the collection hold exactly the committed rows among ``pks`` (logging, never raising)."""
    pks = list(pks)
    try:
        (column,) = reg.mapper.primary_key
        docs: dict[str, indexing.Document] = {}
        # the committed rows: an engine lends a connection of its own; a connection the session was
        # bound to (an outer transaction, as in test suites) is read as is, and left as it was
        with Session(bind) as reader:
            for i in range(0, len(pks), 1000):
                found: Iterable[Any] = reader.scalars(select(reg.model).where(column.in_(pks[i : i + 1000])))
                docs.update((reg.key(obj), reg.document(obj)) for obj in found)
        gone = {str(pk) for pk in pks} - set(docs)
        indexing.write(reg.collection(bind), docs, gone, defer=reg.defer, logger=logger, repair="reindex")
    # the rows are committed already: an error here must not fail the commit that saved them
    except Exception:
        logger.warning(
            "could not index %d %s row(s); semsearch.sqlalchemy.reindex(session, %s) repairs it",
            len(pks),
            reg.label,
            reg.model.__qualname__,
            exc_info=True,
        )


def reindex(session: Session, model: type, *, batch_size: int = 500, progress: bool = False) -> IndexReport:
    """Make ``model``'s collection match its table: upsert every row, drop keys that are gone, embed pending.

    Repairs what no event reported (Core or raw SQL writes, bulk statements over
    :data:`NOTE_LIMIT` rows, commits whose indexing failed). Unchanged texts are not
    re-embedded, so a rerun is cheap; rows are read in batches of ``batch_size``.
    Creates the collection when missing. Reads in ``session``'s transaction.

    Example::

        with Session(engine) as session:
            report = reindex(session, Article, progress=True)
            print(report.added.updated, report.removed)
    """
    reg = registration_for(model)
    (column,) = reg.mapper.primary_key
    col = reg.collection(session.get_bind(mapper=reg.mapper))
    total = session.scalar(select(func.count()).select_from(reg.model))
    rows: Iterable[Any] = session.scalars(select(reg.model).order_by(column).execution_options(yield_per=batch_size))
    documents = ((reg.key(obj), reg.document(obj)) for obj in rows)

    def alive(keys: list[str]) -> set[str]:
        pks = []
        for key in keys:
            try:
                pks.append(reg.pk_value(key))
            except ValueError:
                continue  # not a key this model can have: goes
        found: Iterable[Any] = session.scalars(select(reg.model).where(column.in_(pks)))
        return {reg.key(obj) for obj in found if reg.document(obj)[0].strip()}

    return indexing.reindex(col, documents, alive=alive, total=total, batch_size=batch_size, progress=progress)
