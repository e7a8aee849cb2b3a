"""Long documents: one row per document vs passages, on a judged set built from Cranfield (offline).

    python bench/documents.py [--group 11] [--edits 20] [--rounds 2] [--out bench/results/documents.json]

The set: Cranfield's 1,400 abstracts (title + abstract, as bench/run.py reads them) sorted
by id and cut into consecutive groups of ``--group`` (11: 128 documents of ~12,000
characters, the last one shorter); a document is its abstracts joined by blank lines (each
abstract one paragraph), keyed ``d001``...; its judgment for a query is the highest gain
(5 - cranqrel grade) of its abstracts. All 225 judged queries are scored; nothing is tuned
on them (default hybrid, default splitter).

Measured, with the local model (wordllama, 256 dims) and default plans:

- nDCG@10 at document level of a collection with one row per document against one made
  with ``passages=True`` (the default splitter: paragraphs then sentences, 256 tokens,
  overlap 32), in vector, text and hybrid modes;
- ingest throughput of each (``add_many`` into an empty collection, embedding included),
  ``--rounds`` times in alternating order, the median;
- search p50 of each mode, the two collections interleaved per query (same query, same
  query vector, one after the other), median over the queries;
- editing: one paragraph (abstract) in the middle of ``--edits`` documents gets a sentence
  appended; what each collection sends to the embedder (texts and characters, counted by
  a wrapping embedder) to store the edit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from benchdata import cranfield  # bench/ is on sys.path when run as a script
from psycopg import sql

import semsearch
from semsearch.embeddings.local import LocalEmbedder
from semsearch.evaluate import ndcg

ROWS, PASSAGES = "bench_docs_rows", "bench_docs_passages"
MODES = ("vector", "text", "hybrid")
EDIT = " this paragraph was revised after the experiments were repeated at higher reynolds numbers ."


def documents(group: int) -> dict[str, Any]:
    """Cranfield grouped into long documents with document-level judgments (see the module docstring)."""
    data = cranfield()
    pairs = sorted(zip(data["doc_ids"], data["doc_texts"], strict=True), key=lambda p: int(p[0]))
    docs: dict[str, str] = {}
    owner: dict[str, str] = {}  # abstract id -> document key
    paragraphs: dict[str, list[str]] = {}
    for start in range(0, len(pairs), group):
        key = f"d{start // group + 1:03d}"
        chunk = pairs[start : start + group]
        paragraphs[key] = [" ".join(text.split()) for _, text in chunk]
        docs[key] = "\n\n".join(paragraphs[key])
        owner.update({abstract: key for abstract, _ in chunk})
    qrels: dict[int, dict[str, float]] = {}
    for n, judged in data["qrels"].items():
        for abstract, gain in judged.items():
            doc = owner[abstract]
            qrels.setdefault(n, {})[doc] = max(gain, qrels.get(n, {}).get(doc, 0.0))
    queries = [(n, " ".join(q.split())) for n, q in enumerate(data["queries"], start=1) if qrels.get(n)]
    return {"docs": docs, "paragraphs": paragraphs, "qrels": qrels, "queries": queries}


class Counting:
    """The local embedder, counting what it is sent (texts and characters)."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.model, self.dims = inner, inner.model, inner.dims
        self.texts = self.chars = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        self.chars += sum(len(t) for t in texts)
        return self.inner.embed(texts)


def create(db: semsearch.Database, name: str, embedder: Counting) -> semsearch.Collection:
    db.drop_collection(name, missing_ok=True)
    passages = True if name == PASSAGES else None
    return db.create_collection(name, dims=256, embedder=embedder, passages=passages)


def table_rows(db: semsearch.Database, col: semsearch.Collection) -> int:
    """Rows of the collection's table (``count()`` of a collection with passages counts documents)."""
    with db.connection() as conn:
        found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(col.layout.table)).fetchone()
    return int(found[0]) if found else 0


def ingest(db: semsearch.Database, docs: dict[str, str], rounds: int) -> dict[str, Any]:
    """Each collection loaded ``rounds`` times into an empty table, alternating which goes first."""
    seconds: dict[str, list[float]] = {ROWS: [], PASSAGES: []}
    rows: dict[str, int] = {}
    for r in range(rounds):
        for name in (ROWS, PASSAGES) if r % 2 == 0 else (PASSAGES, ROWS):
            col = create(db, name, Counting(LocalEmbedder(256)))
            started = time.perf_counter()
            col.add_many({"key": k, "content": t} for k, t in docs.items())
            seconds[name].append(time.perf_counter() - started)
            rows[name] = table_rows(db, col)
    chars = sum(len(t) for t in docs.values())
    out = {}
    for name, label in ((ROWS, "rows"), (PASSAGES, "passages")):
        s = statistics.median(seconds[name])
        out[label] = {
            "seconds": [round(x, 2) for x in seconds[name]],
            "documents_per_s": round(len(docs) / s, 1),
            "chars_per_s": round(chars / s),
            "table_rows": rows[name],
        }
    return out


def measure(
    sides: dict[str, Callable[[str, np.ndarray, str], list[str]]],
    queries: list[tuple[int, str]],
    vectors: np.ndarray,
    qrels: dict[int, dict[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """nDCG@10 and p50 ms per (side, mode), every side and mode run on a query in turn."""
    scores: dict[str, list[float]] = {}
    ms: dict[str, list[float]] = {}
    for (n, q), v in zip(queries, vectors, strict=True):
        for mode in MODES:
            for side, run in sides.items():
                label = f"{side} {mode}"
                started = time.perf_counter()
                keys = run(q, v, mode)
                ms.setdefault(label, []).append((time.perf_counter() - started) * 1000)
                scores.setdefault(label, []).append(ndcg(keys, qrels[n]))
    return (
        {k: round(float(np.mean(v)), 4) for k, v in scores.items()},
        {k: round(float(np.median(v)), 3) for k, v in ms.items()},
    )


def search(col: semsearch.Collection) -> Callable[[str, np.ndarray, str], list[str]]:
    def run(q: str, v: np.ndarray, mode: str) -> list[str]:
        if mode == "vector":
            return col.search(vector=v, k=10).keys
        if mode == "text":
            return col.search(q, k=10, mode="text").keys
        return col.search(q, vector=v, k=10, mode="hybrid").keys

    return run


def edits(db: semsearch.Database, data: dict[str, Any], n: int) -> dict[str, Any]:
    """One middle paragraph of ``n`` documents edited: what each collection re-embeds."""
    keys = list(data["docs"])
    chosen = keys[:: max(1, len(keys) // n)][:n]
    out: dict[str, Any] = {"documents_edited": len(chosen)}
    for name, label in ((ROWS, "rows"), (PASSAGES, "passages")):
        counter = Counting(LocalEmbedder(256))
        col = db.collection(name, embedder=counter)
        passages_before = table_rows(db, col)
        embedded: list[int] = []
        kept = doc_chars = 0
        for key in chosen:
            paras = list(data["paragraphs"][key])
            paras[len(paras) // 2] += EDIT
            text = "\n\n".join(paras)
            doc_chars += len(text)
            got = col.add([key], [text])
            embedded.append(got.passages_embedded if label == "passages" else got.embedded)
            kept += got.passages_kept + got.unchanged if label == "passages" else 0
        out[label] = {
            "texts_embedded": counter.texts,
            "chars_embedded": counter.chars,
            "share_of_edited_documents_chars": round(counter.chars / doc_chars, 4),
        }
        if label == "passages":
            per_doc = (passages_before / len(keys)) if keys else 0
            out[label].update(
                {
                    "passages_per_document_mean": round(per_doc, 1),
                    "passages_embedded_per_edit_mean": round(sum(embedded) / len(chosen), 2),
                    "passages_embedded_per_edit": embedded,
                    "passages_kept_or_unchanged": kept,
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", type=int, default=11, help="consecutive abstracts per document")
    ap.add_argument("--edits", type=int, default=20, help="documents whose middle paragraph is edited")
    ap.add_argument("--rounds", type=int, default=2, help="ingests of each collection (median)")
    ap.add_argument("--out", default="bench/results/documents.json")
    args = ap.parse_args()
    data = documents(args.group)
    lengths = [len(t) for t in data["docs"].values()]
    judged_docs = [len(v) for v in data["qrels"].values()]
    with semsearch.connect() as db:
        loads = ingest(db, data["docs"], args.rounds)
        rows, passages = db.collection(ROWS), db.collection(PASSAGES)
        vectors = LocalEmbedder(256).embed([q for _, q in data["queries"]])
        for q, v in zip(data["queries"][:5], vectors[:5], strict=True):  # warm both
            search(rows)(q[1], v, "hybrid"), search(passages)(q[1], v, "hybrid")
        scores, p50 = measure({"rows": search(rows), "passages": search(passages)}, data["queries"], vectors,
                              data["qrels"])  # fmt: skip
        edited = edits(db, data, args.edits)
        for name in (ROWS, PASSAGES):
            db.drop_collection(name)
    result = {
        "command": f"python bench/documents.py --group {args.group} --edits {args.edits} --rounds {args.rounds}",
        "machine": f"{platform.machine()}, {platform.python_version()}, 2 cores shared with other jobs",
        "dataset": {
            "source": "Cranfield 1,400 abstracts (title + abstract), ids sorted, consecutive groups",
            "abstracts_per_document": args.group,
            "documents": len(lengths),
            "chars_per_document": {"mean": round(float(np.mean(lengths))), "min": min(lengths), "max": max(lengths)},
            "queries": len(data["queries"]),
            "relevant_documents_per_query_mean": round(float(np.mean(judged_docs)), 2),
            "judgment": "a document's gain for a query is the highest gain (5 - grade) of its abstracts",
        },
        "model": "local (wordllama 256 dims), default plan; passages=True: default splitter 256 tokens, overlap 32",
        "ndcg_at_10": scores,
        "search_p50_ms": p50,
        "ingest": loads,
        "edit_one_paragraph": edited,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


def markdown(r: dict[str, Any]) -> str:
    d, s, p, ing, ed = r["dataset"], r["ndcg_at_10"], r["search_p50_ms"], r["ingest"], r["edit_one_paragraph"]
    lines = [
        "# Long documents: one row per document vs passages",
        "",
        f"`{r['command']}` ({r['machine']}). {d['documents']} documents of {d['abstracts_per_document']} "
        f"consecutive Cranfield abstracts (mean {d['chars_per_document']['mean']:,} characters, "
        f"{d['chars_per_document']['min']:,}-{d['chars_per_document']['max']:,}); {d['queries']} judged queries, "
        f"{d['relevant_documents_per_query_mean']} relevant documents each on average; {d['judgment']}. "
        f"Model: {r['model']}.",
        "",
        "| mode | nDCG@10 rows | nDCG@10 passages | p50 ms rows | p50 ms passages |",
        "|---|---|---|---|---|",
    ]
    for mode in MODES:
        lines.append(
            f"| {mode} | {s[f'rows {mode}']:.4f} | {s[f'passages {mode}']:.4f} | {p[f'rows {mode}']:.2f} "
            f"| {p[f'passages {mode}']:.2f} |"
        )
    lines += [
        "",
        "| ingest (embedding included) | documents/s | characters/s | table rows | seconds per round |",
        "|---|---|---|---|---|",
    ]
    for side in ("rows", "passages"):
        x = ing[side]
        lines.append(
            f"| {side} | {x['documents_per_s']} | {x['chars_per_s']:,} | {x['table_rows']:,} | "
            f"{', '.join(map(str, x['seconds']))} |"
        )
    e_rows, e_pass = ed["rows"], ed["passages"]
    lines += [
        "",
        f"Editing one paragraph of {ed['documents_edited']} documents: one row per document sends "
        f"{e_rows['texts_embedded']} texts, {e_rows['chars_embedded']:,} characters "
        f"({e_rows['share_of_edited_documents_chars']:.0%} of the edited documents) to the embedder; passages send "
        f"{e_pass['texts_embedded']} texts, {e_pass['chars_embedded']:,} characters "
        f"({e_pass['share_of_edited_documents_chars']:.1%}), {e_pass['passages_embedded_per_edit_mean']} passages per "
        f"edit of {e_pass['passages_per_document_mean']} per document (each edit: "
        f"{', '.join(map(str, e_pass['passages_embedded_per_edit']))}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
