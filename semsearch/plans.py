"""Compression plans and the one helper that writes their SQL expressions.

A plan names the compressed copy of the full vector that the coarse HNSW pass
searches. The database derives that copy from the full vector with the
expression below, in the index *and* in the query: Postgres only uses an
expression index when the query repeats the indexed expression exactly, so both
come from :meth:`Plan.expression`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from semsearch.errors import CompressionPlanError

# pgvector's HNSW limits per indexed type
MAX_HNSW_VECTOR_DIMS = 2000
MAX_HNSW_HALFVEC_DIMS = 4000
MAX_HNSW_BIT_DIMS = 64000
# what a vector / halfvec column can hold at all
MAX_STORED_DIMS = 16000

_PLAN = re.compile(r"^(bit|halfvec|none|mrl|mrl-bit)(?::(\d{1,5}))?$")


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

    @classmethod
    def parse(cls, text: str, *, dims: int, storage: str = "vector") -> Plan:
        """Parse and check a plan against the full dimension ``dims``.

        A funnel chains stages with ``->``: ``bit->mrl:256`` (or ``bit->mrl:256->full``)
        takes HNSW candidates on the bits, keeps the best quarter by a stored
        ``mrl:256`` copy, and rescores those on the full vectors.
        """
        if isinstance(text, str) and "->" in text:
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
        match = _PLAN.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise CompressionPlanError(
                f"expected a compression plan like bit, halfvec, none, mrl:<d> or mrl-bit:<d>, got {text!r}"
            )
        kind, arg = match.group(1), match.group(2)
        if kind in ("mrl", "mrl-bit"):
            if arg is None:
                raise CompressionPlanError(f"expected {kind}:<dims>, got {text!r} without dims")
            sub = int(arg)
            if not 1 <= sub <= dims:
                raise CompressionPlanError(f"expected {kind} dims between 1 and {dims}, got {sub}")
            if kind == "mrl" and sub > MAX_HNSW_HALFVEC_DIMS:
                raise CompressionPlanError(
                    f"expected mrl dims <= {MAX_HNSW_HALFVEC_DIMS} (halfvec hnsw limit), got {sub}"
                )
            if kind == "mrl-bit" and sub > MAX_HNSW_BIT_DIMS:
                raise CompressionPlanError(f"expected mrl-bit dims <= {MAX_HNSW_BIT_DIMS}, got {sub}")
            return cls(kind, sub)
        if arg is not None:
            raise CompressionPlanError(f"expected {kind} without dims, got {text!r}")
        if kind == "halfvec" and dims > MAX_HNSW_HALFVEC_DIMS:
            raise CompressionPlanError(
                f"expected at most {MAX_HNSW_HALFVEC_DIMS} dims for halfvec (hnsw limit), got {dims}; "
                "use bit or mrl:<d>"
            )
        if kind == "none":
            limit = MAX_HNSW_VECTOR_DIMS if storage == "vector" else MAX_HNSW_HALFVEC_DIMS
            if dims > limit:
                raise CompressionPlanError(
                    f"expected at most {limit} dims for an hnsw index on the full {storage}, got {dims}; "
                    "use bit, halfvec or mrl:<d>"
                )
        if kind == "bit" and dims > MAX_HNSW_BIT_DIMS:
            raise CompressionPlanError(f"expected at most {MAX_HNSW_BIT_DIMS} dims for bit, got {dims}")
        return cls(kind, dims)

    def __str__(self) -> str:
        head = f"{self.kind}:{self.dims}" if self.kind in ("mrl", "mrl-bit") else self.kind
        return head + "".join(f"->mrl:{d}" for d in self.middle)

    @property
    def default_oversample(self) -> float:
        """Candidates fetched per wanted row before the exact rescore (before tuning).

        Fewer bits rank more coarsely: 1,536 bits need about 16 candidates per row for
        recall@10 >= 0.99 on real ada-002 vectors, 256 bits about 60 (measured by tune()
        on 5,000 abstracts with the local model), so bit plans scale with 1,536 / bits.

        >>> Plan("bit", 1536).default_oversample, Plan("mrl-bit", 512).default_oversample
        (16.0, 48.0)
        """
        if self.kind in ("bit", "mrl-bit"):
            base = float(min(64.0, max(16.0, 16.0 * 1536 / self.dims)))
        else:
            base = {"none": 1.0, "halfvec": 2.0, "mrl": 8.0}[self.kind]
        # a middle stage makes extra coarse candidates cheap: it reads only a small stored copy
        return base * 4 ** len(self.middle)

    def expression(self, source: sql.Composable, *, dims: int, storage: str) -> sql.Composable:
        """The compressed copy of ``source`` (the column, or the query parameter)."""
        d = sql.Literal(self.dims)
        if self.kind == "none":
            return source
        if self.kind == "halfvec":
            return sql.SQL("({})::halfvec({})").format(source, d)
        if self.kind == "bit":
            return sql.SQL("binary_quantize({})::bit({})").format(source, d)
        if self.kind == "mrl":
            return sql.SQL("l2_normalize(subvector({}, 1, {}))::halfvec({})").format(source, d, d)
        return sql.SQL("binary_quantize(subvector({}, 1, {}))::bit({})").format(source, d, d)

    def operator(self) -> sql.SQL:
        """The distance operator the index orders by."""
        # stored vectors are unit-norm, so inner product ranks exactly like cosine, cheaper
        return sql.SQL({"bit": "<~>", "mrl-bit": "<~>", "none": "<=>"}.get(self.kind, "<#>"))

    def opclass(self, storage: str) -> sql.SQL:
        """The HNSW operator class for :meth:`expression`."""
        if self.kind in ("bit", "mrl-bit"):
            return sql.SQL("bit_hamming_ops")
        if self.kind == "none":
            return sql.SQL({"vector": "vector_cosine_ops", "halfvec": "halfvec_cosine_ops"}[storage])
        return sql.SQL("halfvec_ip_ops")
