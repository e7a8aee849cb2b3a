"""Where a two-stage query spends its time: EXPLAIN (ANALYZE, BUFFERS) of the catalog's ann_sql.

The function ``semsearch.search()`` runs ``ann_sql`` with EXECUTE (planned afresh on
every call, like ``plan_cache_mode = force_custom_plan``) after setting
``hnsw.ef_search`` and ``hnsw.iterative_scan`` for the transaction. This module does
the same by hand so the plan of the inner statement can be seen and timed.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
import psycopg
from harness import connect_raw
from psycopg import sql
from psycopg.types.composite import CompositeInfo, register_composite

import semsearch

PARAMS = "(vector, integer, integer, jsonb)"


def _vec(q: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in q) + "]"


def _catalog(conn: psycopg.Connection, name: str) -> tuple[str, float]:
    row = conn.execute("SELECT ann_sql, oversample FROM semsearch.collections WHERE name = %s", [name]).fetchone()
    assert row is not None
    return str(row[0]), float(row[1])


def _setup(conn: psycopg.Connection, ann: str, coarse: str, candidates: int) -> None:
    conn.execute("DEALLOCATE ALL")
    conn.execute(sql.SQL("PREPARE ann " + PARAMS + " AS " + ann))  # type: ignore[arg-type]
    conn.execute(sql.SQL("PREPARE coarse " + PARAMS + " AS " + coarse))  # type: ignore[arg-type]
    conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(min(1000, max(40, candidates)))])
    conn.execute("SET hnsw.iterative_scan = relaxed_order")
    conn.execute("SET plan_cache_mode = force_custom_plan")


def explain_text(url: str, col: semsearch.Collection, q: np.ndarray, oversample: float | None = None) -> dict[str, Any]:
    """The SQL one search runs and the text plan of one execution, vector elided."""
    with connect_raw(url) as conn:
        ann, default = _catalog(conn, col.name)
        over = oversample or default
        cand = math.ceil(10 * over)
        _setup(conn, ann, col.layout.coarse_sql().as_string(conn), cand)
        lit = _vec(q)
        rows = conn.execute(
            sql.SQL(
                "EXPLAIN (ANALYZE, BUFFERS) EXECUTE ann("  # type: ignore[arg-type]
                + "'"
                + lit
                + "'::vector, 10, "
                + str(cand)
                + ", NULL)"
            )
        ).fetchall()
        plan = "\n".join(r[0] for r in rows)
    return {
        "collection": col.name,
        "rows": col.count(),
        "compression": col.info.compression,
        "oversample": over,
        "candidates": cand,
        "ef_search": min(1000, max(40, cand)),
        "call": f"SELECT * FROM semsearch.search('{col.name}', '[...1536 floats...]'::vector, 10)",
        "ann_sql": ann,
        "prepare": f"PREPARE ann{PARAMS} AS <ann_sql>; SET hnsw.ef_search = "
        f"{min(1000, max(40, cand))}; SET hnsw.iterative_scan = relaxed_order;"
        f" EXPLAIN (ANALYZE, BUFFERS) EXECUTE ann('[...]'::vector, 10, "
        f"{cand}, NULL)",
        "plan": plan,
    }


def _client(text: str) -> str:
    """A catalog statement ($1..$4) as a psycopg query (%(p1)s ..), prepared client-side."""
    return re.sub(r"\$(\d)", r"%(p\1)s", text.replace("%", "%%"))


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out.extend(_walk(child))
    return out


def _ms(node: dict[str, Any]) -> float:
    return float(node["Actual Total Time"]) * float(node.get("Actual Loops", 1))


def _blocks(node: dict[str, Any]) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


def profile(
    url: str, col: semsearch.Collection, queries: np.ndarray, oversample: float, n: int = 100
) -> dict[str, Any]:
    """Median split of one two-stage query into coarse scan, rescore and the rest; plus
    client-side p50 of the whole function call, the bare ann_sql and the coarse pass alone."""
    cand = math.ceil(10 * oversample)
    parts: dict[str, list[float]] = {
        k: []
        for k in (
            "planning_ms",
            "execution_ms",
            "coarse_ms",
            "coarse_blocks",
            "rescore_ms",
            "rescore_blocks",
            "sort_agg_ms",
        )
    }
    with connect_raw(url) as conn:
        # parse the hit array like the function call's rows are parsed, so client times compare
        register_composite(CompositeInfo.fetch(conn, "semsearch.hit"), conn)  # type: ignore[arg-type]
        ann, _ = _catalog(conn, col.name)
        _setup(conn, ann, col.layout.coarse_sql().as_string(conn), cand)
        for q in queries[:n]:
            stmt = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE ann({}::vector, 10, {}, NULL)")
            doc = conn.execute(stmt.format(sql.Literal(_vec(q)), sql.Literal(cand))).fetchone()[0][0]
            nodes = _walk(doc["Plan"])
            coarse = [x for x in nodes if str(x.get("Index Name", "")).endswith("_hnsw")]
            fetch = [
                x
                for x in nodes
                if x.get("Node Type") in ("Index Scan", "Bitmap Heap Scan", "Seq Scan", "Tid Scan")
                and not str(x.get("Index Name", "")).endswith("_hnsw")
            ]
            join = [x for x in nodes if x.get("Node Type") in ("Nested Loop", "Hash Join", "Merge Join")]
            parts["planning_ms"].append(float(doc.get("Planning Time", 0)))
            parts["execution_ms"].append(float(doc.get("Execution Time", 0)))
            c_ms = _ms(coarse[0]) if coarse else float("nan")
            parts["coarse_ms"].append(c_ms)
            parts["coarse_blocks"].append(_blocks(coarse[0]) if coarse else 0)
            parts["rescore_ms"].append(_ms(join[0]) - c_ms if join else float("nan"))
            parts["rescore_blocks"].append(sum(_blocks(x) for x in fetch))
            parts["sort_agg_ms"].append(float(doc.get("Execution Time", 0)) - (_ms(join[0]) if join else 0))
        out: dict[str, Any] = {
            "collection": col.name,
            "compression": col.info.compression,
            "oversample": oversample,
            "candidates": cand,
            "queries": min(n, len(queries)),
            "medians": {k: round(float(np.median(v)), 3) for k, v in parts.items()},
        }
        out["shapes"] = [x["Node Type"] + (f" ({x['Index Name']})" if "Index Name" in x else "") for x in nodes]
        timings: dict[str, list[float]] = {"function_call": [], "prepared_ann_sql": [], "coarse_only": []}
        call = "SELECT key, content, score, metadata FROM semsearch.search(%s, %s::vector, 10, %s::real)"
        bare = _client(ann)
        only = _client(col.layout.coarse_sql().as_string(conn))
        # one pass per variant (not interleaved per query): an interleaved second statement
        # would find the first one's pages in shared_buffers and look cheaper than it is
        for label, stmt in (("coarse_only", only), ("prepared_ann_sql", bare), ("function_call", call)):
            for q in queries[:n]:
                params = {"p1": q, "p2": 10, "p3": cand, "p4": None}
                args = [col.name, q, oversample] if label == "function_call" else params
                t0 = time.perf_counter()
                conn.execute(stmt, args, prepare=True).fetchall()  # type: ignore[call-overload]
                timings[label].append(time.perf_counter() - t0)
        out["client_p50_ms"] = {k: round(float(np.median(v[5:])) * 1e3, 3) for k, v in timings.items()}
    return out
