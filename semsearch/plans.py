"""Compression plans: one table of kinds, and the one helper that writes their SQL.

A plan names the compressed copy of the full vector that the coarse HNSW pass
searches. The database derives that copy from the full vector with the kind's
expression, in the index *and* in the query: Postgres only uses an expression
index when the query repeats the indexed expression exactly, so both come from
:meth:`Plan.expression`.

Every fact about a kind (its expression, operator, operator class, HNSW limit,
default oversampling) is one row of :data:`KINDS`; parsing, the SQL, the README's
table (:func:`kinds_table`, checked by a test) and the CLI's help read it.
Adding a kind is adding a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from semsearch.errors import CompressionPlanError

# pgvector's HNSW limits per indexed type
MAX_HNSW_VECTOR_DIMS = 2000
MAX_HNSW_HALFVEC_DIMS = 4000
MAX_HNSW_BIT_DIMS = 64000
# what a vector / halfvec column can hold at all
MAX_STORED_DIMS = 16000


@dataclass(frozen=True)
class Kind:
    """One kind of compressed copy: a row of :data:`KINDS`."""

    name: str
    #: the copy has its own size ``<kind>:<d>`` (a Matryoshka prefix) instead of the full ``D``
    sized: bool
    #: SQL template of the copy; ``{source}`` is the full vector (column or query), ``{d}`` the copy's dims
    template: str
    #: distance operator the index orders by (stored vectors are unit-norm: inner product ranks like cosine)
    operator: str
    #: HNSW operator class, by the full vectors' storage (``vector`` or ``halfvec``)
    opclass: Callable[[str], str]
    #: most dims pgvector's HNSW takes for the copy, by storage
    hnsw_limit: Callable[[str], int]
    #: candidates per wanted row before tuning, from the copy's dims
    oversample: Callable[[int], float]
    #: the error when the copy is larger than :attr:`hnsw_limit`
    too_big: str = "expected at most {limit} dims for {kind}, got {size}"
    #: the copy ranks rows as the full vectors' cosine does (``halfvec``: to half precision), so the
    #: HNSW scan's own order is nearly the rescore's: unfiltered, the rescore needs only this many rows
    #: per wanted row (halfvec 2: at ef_search 60 on Jeopardy ada-002, its 10 best by halfvec had
    #: recall@10 0.989 where 60 rescored had 0.994); a wider ef_search finds the rest. None: all candidates
    rows_per_k: int | None = None
    #: the coarse distance is the full vectors' cosine itself (``none``): its ``k`` best need no rescore
    exact: bool = False


def _bits_oversample(dims: int) -> float:
    # fewer bits rank more coarsely: 1,536 bits need ~16 candidates per row for recall@10 >= 0.99
    # on real ada-002 vectors, 256 bits ~60 (tune() on 5,000 abstracts, local model)
    return float(min(64.0, max(16.0, 16.0 * 1536 / dims)))


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            name="bit",
            sized=False,
            template="binary_quantize({source})::bit({d})",
            operator="<~>",
            opclass=lambda _: "bit_hamming_ops",
            hnsw_limit=lambda _: MAX_HNSW_BIT_DIMS,
            oversample=_bits_oversample,
        ),
        Kind(
            name="mrl",
            sized=True,
            template="l2_normalize(subvector({source}, 1, {d}))::halfvec({d})",
            operator="<#>",
            opclass=lambda _: "halfvec_ip_ops",
            hnsw_limit=lambda _: MAX_HNSW_HALFVEC_DIMS,
            oversample=lambda _: 8.0,
            too_big="expected mrl dims <= {limit} (halfvec hnsw limit), got {size}",
        ),
        Kind(
            name="mrl-bit",
            sized=True,
            template="binary_quantize(subvector({source}, 1, {d}))::bit({d})",
            operator="<~>",
            opclass=lambda _: "bit_hamming_ops",
            hnsw_limit=lambda _: MAX_HNSW_BIT_DIMS,
            oversample=_bits_oversample,
            too_big="expected mrl-bit dims <= {limit}, got {size}",
        ),
        Kind(
            name="halfvec",
            sized=False,
            template="({source})::halfvec({d})",
            operator="<#>",
            opclass=lambda _: "halfvec_ip_ops",
            hnsw_limit=lambda _: MAX_HNSW_HALFVEC_DIMS,
            oversample=lambda _: 2.0,
            too_big="expected at most {limit} dims for halfvec (hnsw limit), got {size}; use bit or mrl:<d>",
            rows_per_k=2,
        ),
        Kind(
            name="none",
            sized=False,
            template="{source}",
            operator="<=>",
            opclass=lambda storage: f"{storage}_cosine_ops",
            hnsw_limit=lambda storage: MAX_HNSW_VECTOR_DIMS if storage == "vector" else MAX_HNSW_HALFVEC_DIMS,
            oversample=lambda _: 1.0,
            too_big="expected at most {limit} dims for an hnsw index on the full {storage}, got {size}; "
            "use bit, halfvec or mrl:<d>",
            rows_per_k=1,
            exact=True,
        ),
    )
}

_PLAN = re.compile(r"^(" + "|".join(re.escape(k) for k in sorted(KINDS, key=len, reverse=True)) + r")(?::(\d{1,5}))?$")


def plan_examples() -> str:
    """The kinds as a user writes them: ``bit, mrl:<d>, mrl-bit:<d>, halfvec, none``."""
    return ", ".join(f"{k.name}:<d>" if k.sized else k.name for k in KINDS.values())


@dataclass(frozen=True)
class Plan:
    """One compression plan, e.g. ``bit``, ``mrl:256``, ``mrl-bit:512``, ``halfvec``, ``none``.

    Example::

        plan = Plan.parse("mrl:256", dims=1536)
        plan.expression(sql.Identifier("embedding"), dims=1536, storage="vector")
    """

    kind: str
    #: dims of the compressed copy
    dims: int
    #: a funnel's middle stages: stored ``mrl:<d>`` copies that rescore the candidates before the full vectors
    middle: tuple[int, ...] = ()

    @property
    def spec(self) -> Kind:
        """This plan's row of :data:`KINDS`."""
        return KINDS[self.kind]

    @classmethod
    def parse(cls, text: str, *, dims: int, storage: str = "vector") -> Plan:
        """Parse and check a plan against the full dimension ``dims``.

        A funnel chains stages with ``->``: ``bit->mrl:256`` (or ``bit->mrl:256->full``)
        takes HNSW candidates on the bits, keeps the best quarter by a stored
        ``mrl:256`` copy, and rescores those on the full vectors.

        >>> str(Plan.parse("bit->mrl:256->full", dims=1536))
        'bit->mrl:256'
        """
        if isinstance(text, str) and "->" in text:
            return cls._parse_funnel(text, dims=dims, storage=storage)
        match = _PLAN.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise CompressionPlanError(f"expected a compression plan like {plan_examples()}, got {text!r}")
        kind, arg = KINDS[match.group(1)], match.group(2)
        if kind.sized and arg is None:
            raise CompressionPlanError(f"expected {kind.name}:<dims>, got {text!r} without dims")
        if not kind.sized and arg is not None:
            raise CompressionPlanError(f"expected {kind.name} without dims, got {text!r}")
        size = int(arg) if arg is not None else dims
        if kind.sized and not 1 <= size <= dims:
            raise CompressionPlanError(f"expected {kind.name} dims between 1 and {dims}, got {size}")
        limit = kind.hnsw_limit(storage)
        if size > limit:
            raise CompressionPlanError(kind.too_big.format(limit=limit, kind=kind.name, size=size, storage=storage))
        return cls(kind.name, size)

    @classmethod
    def _parse_funnel(cls, text: str, *, dims: int, storage: str) -> Plan:
        first, *rest = [part.strip() for part in text.split("->")]
        if rest and rest[-1] == "full":
            rest = rest[:-1]
        coarse = cls.parse(first, dims=dims, storage=storage)
        middle = []
        for part in rest:
            stage = cls.parse(part, dims=dims, storage=storage)
            if stage.kind != "mrl" or stage.dims >= dims:
                raise CompressionPlanError(f"expected middle stages like mrl:<d> with d < {dims}, got {part!r}")
            middle.append(stage.dims)
        if not middle:
            raise CompressionPlanError(f"expected a funnel like bit->mrl:256, got {text!r}")
        return cls(coarse.kind, coarse.dims, tuple(middle))

    def __str__(self) -> str:
        head = f"{self.kind}:{self.dims}" if self.spec.sized else self.kind
        return head + "".join(f"->mrl:{d}" for d in self.middle)

    @property
    def default_oversample(self) -> float:
        """Candidates fetched per wanted row before the exact rescore (before tuning).

        >>> Plan("bit", 1536).default_oversample, Plan("mrl-bit", 512).default_oversample
        (16.0, 48.0)
        """
        # a middle stage makes extra coarse candidates cheap: it reads only a small stored copy
        return self.spec.oversample(self.dims) * 4 ** len(self.middle)

    @property
    def rows_per_k(self) -> int | None:
        """Rows per wanted row an unfiltered rescore needs, when the coarse pass ranks as the full vectors do.

        >>> Plan("none", 1536).rows_per_k, Plan("halfvec", 1536).rows_per_k, Plan("bit", 1536).rows_per_k
        (1, 2, None)
        """
        return None if self.middle else self.spec.rows_per_k

    def expression(self, source: sql.Composable, *, dims: int, storage: str) -> sql.Composable:
        """The compressed copy of ``source`` (the column, or the query parameter)."""
        return sql.SQL(self.spec.template).format(source=source, d=sql.Literal(self.dims))

    def operator(self) -> sql.SQL:
        """The distance operator the index orders by."""
        return sql.SQL(self.spec.operator)

    def opclass(self, storage: str) -> sql.SQL:
        """The HNSW operator class for :meth:`expression`."""
        return sql.SQL(self.spec.opclass(storage))


def kinds_table() -> str:
    """The README's table of kinds, made from :data:`KINDS` (a test keeps the README equal to it)."""
    lines = [
        "| compression | compressed copy (derived in SQL from `embedding`) | index | dims allowed |",
        "|---|---|---|---|",
    ]
    for kind in KINDS.values():
        size = "d" if kind.sized else "D"
        copy = kind.template.format(source="embedding", d=size)
        limits = sorted({kind.hnsw_limit("vector"), kind.hnsw_limit("halfvec")})
        limit = " (vector) / ".join(f"{n:,}" for n in limits) + (" (halfvec)" if len(limits) > 1 else "")
        opclasses = sorted({kind.opclass("vector"), kind.opclass("halfvec")})
        name = f"{kind.name}:<d>" if kind.sized else kind.name
        lines.append(f"| `{name}` | `{copy}` | {', '.join(f'`{o}`' for o in opclasses)} | {size} ≤ {limit} |")
    lines.append("| funnel, e.g. `bit->mrl:256` | coarse on bits, then a stored `mrl:256` column, then full | | |")
    return "\n".join(lines)
