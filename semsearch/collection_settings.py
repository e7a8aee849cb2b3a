"""A new collection's settings: checked, with their defaults filled in; nothing touches the database.

:func:`make_info` is what every frontend (:class:`~semsearch.Database`, alembic's and Django's
operations, a model switch, a table sync) turns its arguments into: the
:class:`~semsearch.collection_info.CollectionInfo` that :mod:`semsearch.ddl` makes statements of.
:func:`new_info` adds the checks of a collection created from Python (a user's name, the model installed).

Example::

    info = make_info("docs", model="local", compression="halfvec")
    info.dims   # 256
"""

from __future__ import annotations

from typing import Any

from semsearch import bm25, distributed, plan_choice
from semsearch.collection_info import CollectionInfo
from semsearch.embeddings import Embedder, check_dims, check_installed, default_dims
from semsearch.errors import ConfigurationError, InvalidNameError
from semsearch.layout import MAX_USER_NAME, Layout, check_name
from semsearch.passages import splitter
from semsearch.plans import Plan
from semsearch.values import check_text

LOCAL_MODEL = "wordllama-l2-supercat"


def make_info(
    name: str,
    *,
    dims: int | None = None,
    model: str | None = None,
    embedder: Embedder | None = None,
    compression: str | None = None,
    storage: str = "vector",
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    oversample: float | None = None,
    text_config: str = "english",
    table_name: str = "",
    autotune: bool = True,
    tenant_required: bool = False,
    bm25_k1: float = bm25.K1,
    bm25_b: float = bm25.B,
    distribute_by: str | None = None,
    passages: Any = None,
) -> CollectionInfo:
    """Check a collection's settings and fill in defaults; nothing touches the database.

    ``distribute_by`` (``"key"`` or ``"tenant"``) makes it a Citus distributed table
    (see :mod:`semsearch.distributed`).

    Example::

        info = make_info("docs", model="local", compression="halfvec")
        info.dims   # 256
    """
    check_name(name)
    if embedder is not None:
        if model is not None and model != embedder.model:
            raise ConfigurationError(f"expected model= to match embedder.model {embedder.model!r}, got {model!r}")
        if dims is not None and dims != embedder.dims:
            raise ConfigurationError(f"expected dims={embedder.dims} for this embedder, got {dims}")
        model, dims = embedder.model, embedder.dims
    if model is None:
        raise ConfigurationError("expected model= (a built-in model or a label) or embedder=, got neither")
    if model == "local":
        model = LOCAL_MODEL
    dims = dims if dims is not None else default_dims(model)
    if dims is None:
        raise ConfigurationError(f"expected dims= for model {model!r}, got none")
    if isinstance(dims, bool) or not isinstance(dims, int):
        raise ConfigurationError(f"expected dims as an int, got {dims!r}")
    # a built-in model must be able to produce them: refused here, not at the first ingest
    check_dims(model, dims)
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"expected model as a non-empty str, got {model!r}")
    check_text(model, "a model name")
    if not isinstance(text_config, str) or not text_config:
        raise ConfigurationError(
            f"expected text_config as the name of a text search configuration, got {text_config!r}"
        )
    check_text(text_config, "a text_config")
    if compression is None or compression == plan_choice.AUTO:
        mode, choice = plan_choice.AUTO, plan_choice.choose_plan(0, dims, storage)
        compression, reason = choice.plan, choice.reason
    else:
        mode, reason = plan_choice.PINNED, ""  # said once the plan is parsed
    if (
        not isinstance(hnsw_m, int)
        or not isinstance(hnsw_ef_construction, int)
        or not (2 <= hnsw_m <= 100 and 2 * hnsw_m <= hnsw_ef_construction <= 1000)
    ):
        raise ConfigurationError(
            f"expected 2 <= hnsw_m <= 100 and 2*m <= ef_construction <= 1000, got m={hnsw_m}, "
            f"ef_construction={hnsw_ef_construction}"
        )
    layout = Layout(
        name,
        dims=dims,
        storage=storage,
        plan=Plan.parse(compression, dims=dims, storage=storage),
        text_config=text_config,
        table_name=table_name,
    )
    over = float(oversample if oversample is not None else layout.plan.default_oversample)
    if not 1 <= over <= 1000:
        raise ConfigurationError(f"expected oversample between 1 and 1000, got {over}")
    return CollectionInfo(
        name=name,
        model=model,
        dims=dims,
        storage=storage,
        compression=str(layout.plan),
        hnsw_m=hnsw_m,
        hnsw_ef_construction=hnsw_ef_construction,
        oversample=over,
        ef_search=None,
        text_config=text_config,
        table_name=layout.table_name,
        autotune=bool(autotune),
        tenant_required=bool(tenant_required),
        bm25_k1=_bm25_param("bm25_k1", bm25_k1, 0.0, 10.0),
        bm25_b=_bm25_param("bm25_b", bm25_b, 0.0, 1.0),
        distributed_by=None if distribute_by is None else distributed.check_by(distribute_by),
        passages=splitter.resolve(passages, model)[0],
        plan_mode=mode,
        plan_reason=plan_choice.stamped(reason or f"{layout.plan}: pinned by compression= at creation"),
    )


def _bm25_param(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigurationError(f"expected {name} between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def new_info(name: str, **settings: Any) -> CollectionInfo:
    """A new collection's checked settings (see :meth:`Database.create_collection`); nothing is sent."""
    if isinstance(name, str) and len(name) > MAX_USER_NAME:
        raise InvalidNameError(f"expected a collection name of at most {MAX_USER_NAME} characters, got {len(name)}")
    info = make_info(name, **settings)
    if settings.get("embedder") is None:
        check_installed(info.model)  # the local model without its extra: refused now, not at the first embedding
    return info
