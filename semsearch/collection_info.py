"""A collection's definition as the catalog stores it: :class:`CollectionInfo`, public.

Read with ``db.collection(name).info`` or ``db.collections()``; :mod:`semsearch.catalog` reads
and writes the rows, and checks each one with :func:`check_tuning` as it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from semsearch.errors import ConfigurationError, SchemaVersionError
from semsearch.layout import Layout
from semsearch.plans import Plan
from semsearch.statements import STATEMENTS_VERSION
from semsearch.values import float4

#: the largest oversample, ef_search and fusion weight the catalog stores (its CHECKs say the same)
MAX_STORED_OVERSAMPLE = 1000


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's catalog row.

    Example::

        info = db.collection("movies").info
        info.compression, info.oversample     # ('bit', 16.0)
        info.plan_mode, info.plan_reason      # ('auto', 'bit: grew to 1,200,000 rows of 256 dims, past 1,000,000 ...')
    """

    name: str
    model: str
    dims: int
    storage: str
    compression: str
    hnsw_m: int
    hnsw_ef_construction: int
    oversample: float
    ef_search: int | None
    text_config: str
    table_name: str = ""
    #: tune after bulk loads and when the row count has grown 4x since the last tune
    autotune: bool = True
    #: rows when it was last tuned (None: never)
    tuned_rows: int | None = None
    #: writes and searches without a tenant are refused (and the table refuses rows without one)
    tenant_required: bool = False
    #: BM25's term saturation and length normalisation for text search
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    #: hybrid fusion chosen by tune_hybrid(): {"fusion": "rrf" | "blend", "vector_weight": w, ...}
    hybrid: dict[str, Any] | None = None
    #: the Citus distribution column ("key" or "tenant"); None: a plain table on one server
    distributed_by: str | None = None
    #: the setting that names a session's tenant once :meth:`Database.isolate_tenants` made the
    #: collection's row-level security policies (None: no policies)
    tenant_setting: str | None = None
    #: documents are split into passages: the splitter's settings ({"splitter": "default",
    #: "max_tokens": n, "overlap": n} or {"splitter": "custom", "name": ...}); None: rows are whole texts
    passages: dict[str, Any] | None = None
    #: ``"auto"``: the plan follows the collection's size (:mod:`semsearch.plan_choice`); ``"pinned"``: it was
    #: given (``compression=``) and stays
    plan_mode: str = "pinned"
    #: why the plan is what it is: the last decision (rows, dims, the rule that fired, when); None before 0012
    plan_reason: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CollectionInfo:
        """From a ``semsearch.collections`` row as a mapping (any driver), checked."""
        if "statements_version" in row and row["statements_version"] != STATEMENTS_VERSION:
            raise SchemaVersionError(
                f"expected collection {row['name']!r} at statements version {STATEMENTS_VERSION}, "
                f"got {row['statements_version']}: run `semsearch db upgrade`"
            )
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        # regconfig arrives as a driver-specific object; the info holds its name
        values["text_config"] = str(values["text_config"])
        for name in ("oversample", "bm25_k1", "bm25_b"):
            if name in values:
                values[name] = float4(values[name])  # real: 1.2 is 1.2000000477 in binary
        info = cls(**values)
        check_tuning(info)
        try:
            info.layout  # noqa: B018 - parses the plan, dims, storage and table name
        except ValueError as exc:
            raise ConfigurationError(f"expected a valid catalog row for {info.name!r}, got {exc}") from exc
        return info

    @property
    def layout(self) -> Layout:
        plan = Plan.parse(self.compression, dims=self.dims, storage=self.storage)
        return Layout(
            self.name,
            dims=self.dims,
            storage=self.storage,
            plan=plan,
            text_config=self.text_config,
            table_name=self.table_name,
            distributed_by=self.distributed_by,
            tenant_setting=self.tenant_setting,
        )


def check_tuning(info: CollectionInfo) -> None:
    """Refuse tuned values no search can use (the catalog's checks refuse them too, since 0006).

    >>> check_tuning(CollectionInfo("m", "x", 8, "vector", "none", 16, 64, float("nan"), None, "english"))
    Traceback (most recent call last):
    ...
    semsearch.errors.ConfigurationError: expected collection 'm' to store oversample between 1 and 1000, got nan: \
retune it (col.tune()) or run `semsearch alter m --oversample N`
    """
    fix = f"retune it (col.tune()) or run `semsearch alter {info.name} --oversample N`"

    def bad(column: str, expected: str, got: object) -> ConfigurationError:
        return ConfigurationError(f"expected collection {info.name!r} to store {column} {expected}, got {got!r}: {fix}")

    o = info.oversample
    if isinstance(o, bool) or not isinstance(o, (int, float)) or not 1 <= o <= MAX_STORED_OVERSAMPLE:
        raise bad("oversample", f"between 1 and {MAX_STORED_OVERSAMPLE}", o)
    ef = info.ef_search
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or not 1 <= ef <= MAX_STORED_OVERSAMPLE):
        raise bad("ef_search", f"between 1 and {MAX_STORED_OVERSAMPLE} or none", ef)
    h = info.hybrid
    if h is None:
        return
    if not isinstance(h, dict) or h.get("fusion") not in ("rrf", "blend"):
        raise bad("hybrid", "with fusion 'rrf' or 'blend'", h)
    for weight in ("vector_weight", "text_weight"):
        w = h.get(weight, 0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= MAX_STORED_OVERSAMPLE:
            raise bad(f"hybrid {weight}", f"between 0 and {MAX_STORED_OVERSAMPLE}", w)
