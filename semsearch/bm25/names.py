"""The names, limits and per-row quantities every BM25 statement shares (no database).

See :mod:`semsearch.bm25` for the design.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

#: default schema of collection tables
SCHEMA = "semsearch"
#: default number of counter slots, i.e. of writers that update statistics without waiting for each other
SLOTS = 8
#: a prefix this long (characters) always fits in a tsvector; see the module doc
MAX_TSV_CHARS = 250_000
#: BM25 defaults
K1 = 1.2
B = 0.75
#: the named placeholders of :func:`semsearch.bm25.ranking.search_statement`
PARAMS = ("text", "k", "k1", "b")
_MAX_IDENT = 63


@dataclass(frozen=True)
class Names:
    """The names of a collection's BM25 objects (all in the collection's schema).

    >>> Names("col_x").postings
    'col_x_bm25p'
    """

    table: str
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        longest = self.table + "_bm25p_pkey"
        if not self.table or len(longest.encode()) > _MAX_IDENT:
            raise ValueError(f"expected a table name of at most {_MAX_IDENT - 11} bytes, got {self.table!r}")

    @property
    def postings(self) -> str:
        return self.table + "_bm25p"

    @property
    def df(self) -> str:
        return self.table + "_bm25d"

    @property
    def stats(self) -> str:
        return self.table + "_bm25s"

    def fn(self, event: str) -> str:
        """Trigger function (and trigger) name for ``event`` in insert/update/delete/truncate."""
        return f"{self.table}_bm25_{event[:3]}"

    def ident(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)


EVENTS = ("insert", "update", "delete", "truncate")


def tsv_expression(config: str = "english", column: str = "content") -> sql.Composed:
    """The generated ``tsv`` column's expression that never fails on long texts.

    >>> tsv_expression().as_string(None)
    'to_tsvector(\\'english\\'::regconfig, left("content", 250000))'
    """
    return sql.SQL("to_tsvector({}::regconfig, left({}, {}))").format(
        sql.Literal(config), sql.Identifier(column), sql.Literal(MAX_TSV_CHARS)
    )


def term_frequency(positions: sql.Composable) -> sql.Composed:
    """A lexeme's tf from its positions array; one without positions (``strip()``) counts once,
    as in ``ts_rank``'s document length.

    >>> term_frequency(sql.SQL("u.positions")).as_string(None)
    'greatest(coalesce(cardinality(u.positions), 0), 1)'
    """
    return sql.SQL("greatest(coalesce(cardinality({}), 0), 1)").format(positions)


def document_length(tsv: sql.Composable) -> sql.Composed:
    """Total positions of a tsvector (not ``length()``, which counts distinct lexemes)."""
    return sql.SQL("(SELECT coalesce(sum({tf}), 0)::int FROM unnest({tsv}) dl_u)").format(
        tf=term_frequency(sql.SQL("dl_u.positions")), tsv=tsv
    )
