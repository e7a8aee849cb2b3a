"""The contenders: semsearch collections and pgvector HNSW written by hand, as a user would.

Each setup function loads the rows, builds the HNSW index under the same settings as
every other contender (``harness.timed_build``) and returns a ``search(q, knob)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
from harness import HNSW_EF_CONSTRUCTION, HNSW_M, Search, connect_raw, timed_build, vacuum
from psycopg import sql
from tqdm import tqdm

import semsearch

MODEL = "text-embedding-ada-002"
K = 10


def records(base: np.ndarray, texts: list[str]) -> Iterator[dict[str, Any]]:
    for i in range(len(base)):
        yield {"key": str(i), "content": texts[i], "embedding": base[i]}


def semsearch_search(col: semsearch.Collection, *, exact: bool = False) -> Search:
    def search(q: np.ndarray, knob: Any) -> list[int]:
        res = col.search(vector=q, k=K, oversample=None if knob is None else float(knob), exact=exact)
        return [int(h.key) for h in res]

    return search


def semsearch_bulk(
    db: semsearch.Database, name: str, plan: str | None, base: np.ndarray, texts: list[str]
) -> tuple[semsearch.Collection, dict[str, Any]]:
    """The documented bulk path: ``add_many(bulk=True)`` with precomputed vectors.

    Load-only and load+index are told apart by timing the ``rebuild_index`` call that
    ``add_many`` makes after the load (with the library's own build memory).
    """
    col = db.create_collection(
        name,
        dims=base.shape[1],
        model=MODEL,
        compression=plan,
        hnsw_m=HNSW_M,
        hnsw_ef_construction=HNSW_EF_CONSTRUCTION,
    )
    timed: list[float] = []
    rebuild = col.rebuild_index

    def timed_rebuild(**kw: Any) -> float:
        seconds = rebuild(**kw)
        timed.append(seconds)
        return seconds

    col.rebuild_index = timed_rebuild  # type: ignore[method-assign]
    started = time.perf_counter()
    got = col.add_many(records(base, texts), bulk=True, batch_size=1000, progress=True, total=len(base))
    total = time.perf_counter() - started
    del col.rebuild_index
    index = timed[0] if timed else float("nan")
    n = len(base)
    return col, {
        "path": "Collection.add_many(bulk=True, batch_size=1000), precomputed vectors",
        "rows": n,
        "inserted": got.inserted,
        "load_s": round(total - index, 3),
        "index_s": round(index, 3),
        "load_index_s": round(total, 3),
        "load_rows_per_s": round(n / (total - index), 1),
        "load_index_rows_per_s": round(n / total, 1),
    }


def semsearch_copy(
    db: semsearch.Database,
    name: str,
    plan: str,
    source: semsearch.Collection,
) -> semsearch.Collection:
    """Another plan over the same rows, filled server-side from the source collection."""
    col = db.create_collection(
        name, dims=source.dims, model=MODEL, compression=plan, hnsw_m=HNSW_M, hnsw_ef_construction=HNSW_EF_CONSTRUCTION
    )
    drop_hnsw(db, col)
    with db.connection() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (key, content, metadata, embedding) "
                "SELECT key, content, metadata, embedding FROM {} ORDER BY id"
            ).format(col.layout.table, source.layout.table)
        )
    return col


def drop_hnsw(db: semsearch.Database, col: semsearch.Collection) -> None:
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(col.layout.index_name("hnsw", schema=True)))


def semsearch_build(db: semsearch.Database, col: semsearch.Collection, memory: str) -> dict[str, Any]:
    """Rebuild the collection's HNSW index with the library's DDL under the shared settings."""
    drop_hnsw(db, col)
    vacuum(db, table_of(col))
    ddl = col.layout.hnsw_index_sql(m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
    b = timed_build(db, ddl, memory=memory)
    with db.connection() as conn:
        text = ddl.as_string(conn)
    return {"seconds": b.seconds, "memory": b.memory, "notices": b.notices, "ddl": text}


def table_of(col: semsearch.Collection) -> str:
    return f"semsearch.{col.layout.table_name}"


def index_of(col: semsearch.Collection) -> str:
    return f"semsearch.{col.layout.table_name}_hnsw"


# --- pgvector by hand ------------------------------------------------------------------

PG_TABLE = "items"


def pgvector_load(url: str, base: np.ndarray, texts: list[str]) -> dict[str, Any]:
    """What a user writes today: a table with a vector(D) column, filled by one binary COPY."""
    d = int(base.shape[1])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(PG_TABLE)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, content text NOT NULL, embedding vector({}) NOT NULL)"
            ).format(sql.Identifier(PG_TABLE), sql.Literal(d))
        )
    conn = connect_raw(url)
    started = time.perf_counter()
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY {} (id, content, embedding) FROM STDIN WITH (FORMAT BINARY)").format(sql.Identifier(PG_TABLE))
        ) as copy,
    ):
        copy.set_types(["int8", "text", "vector"])
        for i in tqdm(range(len(base)), desc="  COPY items", unit="rows", leave=False, mininterval=1):
            copy.write_row((i, texts[i], base[i]))
    seconds = time.perf_counter() - started
    conn.close()
    return {
        "path": f"one COPY ... FROM STDIN (FORMAT BINARY) into (id bigint, content text, embedding vector({d}))",
        "rows": len(base),
        "load_s": round(seconds, 3),
        "load_rows_per_s": round(len(base) / seconds, 1),
    }


def pgvector_index_sql(kind: str, d: int) -> tuple[sql.Composed, str, sql.Composable]:
    """(DDL, index name, the ORDER BY expression of the query) for 'vector' or 'halfvec'."""
    name = f"{PG_TABLE}_{kind}_hnsw"
    if kind == "vector":
        col: sql.Composable = sql.Identifier("embedding")
        ops = sql.SQL("vector_cosine_ops")
    else:
        col = sql.SQL("(embedding::halfvec({}))").format(sql.Literal(d))
        ops = sql.SQL("halfvec_cosine_ops")
    ddl = sql.SQL("CREATE INDEX {} ON {} USING hnsw ({} {}) WITH (m = {}, ef_construction = {})").format(
        sql.Identifier(name), sql.Identifier(PG_TABLE), col, ops, sql.Literal(HNSW_M), sql.Literal(HNSW_EF_CONSTRUCTION)
    )
    return ddl, name, col


def pgvector_search(url: str, kind: str, d: int) -> tuple[Search, psycopg.Connection, sql.Composed]:
    """``SET hnsw.ef_search`` once per setting, then the textbook ORDER BY <=> LIMIT query."""
    conn = connect_raw(url)
    _, _, col = pgvector_index_sql(kind, d)
    qexpr = sql.SQL("%(q)s::vector({})").format(sql.Literal(d))
    if kind == "halfvec":
        qexpr = sql.SQL("{}::halfvec({})").format(qexpr, sql.Literal(d))
    query = sql.SQL("SELECT id, content, 1 - ({c} <=> {q}) AS score FROM {t} ORDER BY {c} <=> {q} LIMIT {k}").format(
        c=col, q=qexpr, t=sql.Identifier(PG_TABLE), k=sql.Literal(K)
    )
    state: dict[str, Any] = {"ef": None}
    uses_index: dict[int, bool] = {}

    def search(q: np.ndarray, knob: Any) -> list[int]:
        ef = 40 if knob is None else int(knob)
        if ef != state["ef"]:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(ef)])
            state["ef"] = ef
            # the planner may prefer a full scan + sort at small ef_search on small tables
            uses_index[ef] = any("_hnsw" in x for x in plan_lines(conn, query, {"q": q}))
        return [r[0] for r in conn.execute(query, {"q": q}).fetchall()]

    search.uses_index = uses_index  # type: ignore[attr-defined]
    return search, conn, query


def plan_lines(conn: psycopg.Connection, query: sql.Composable, params: dict[str, Any]) -> list[str]:
    """EXPLAIN of a query with long vector literals elided (to show which index it uses)."""
    rows = conn.execute(sql.SQL("EXPLAIN ") + query, params).fetchall()  # type: ignore[operator]
    return [re.sub(r"'\[[^\]]{40,}\]'", "'[...]'", r[0]) for r in rows]
