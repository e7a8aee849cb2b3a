"""`semsearch demo`: a real corpus, offline, searched two-stage and exactly.

The corpus is the Python standard library's own docstrings, so nothing is
downloaded: the embedded Postgres, the local wordllama model and the text all
ship with what ``pip install`` put on the machine.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import psycopg

from semsearch.db import Database
from semsearch.embeddings import check_installed
from semsearch.server import redact
from semsearch.tune import autotune

COLLECTION = "stdlib_docs"
# Measured on this corpus (4,520 rows on Python 3.11), the queries below plus 300
# docstrings used as queries, each plan at its default oversampling: halfvec kept
# 99.9% of the exact top 10 (worst query 90%), mrl-bit:256 97.4% (worst 50%), and
# halfvec was also faster (1.1 vs 2.0 ms median: 20 candidates to rescore, not 100).
# mrl-bit's index is 2.5x smaller (1.5 vs 3.7 MiB), which matters only far beyond
# a demo; at 256 dims one bit per dim leaves too little to rank by.
COMPRESSION = "halfvec"

# Well-known stdlib modules; packages among them are walked with pkgutil. None of
# them is deprecated (an import warning would change the corpus) or acts on import.
MODULES = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "builtins", "bz2",
    "calendar", "cmath", "cmd", "codecs", "collections", "colorsys", "concurrent",
    "configparser", "contextlib", "contextvars", "copy", "csv", "ctypes", "dataclasses",
    "datetime", "decimal", "difflib", "dis", "doctest", "email", "enum", "filecmp", "fileinput",
    "fnmatch", "fractions", "ftplib", "functools", "gc", "getopt", "gettext", "glob", "graphlib",
    "gzip", "hashlib", "heapq", "hmac", "html", "http", "imaplib", "importlib", "inspect", "io",
    "ipaddress", "itertools", "json", "locale", "logging", "lzma", "mailbox", "math",
    "mimetypes", "multiprocessing", "netrc", "numbers", "operator", "optparse", "os", "pathlib",
    "pdb", "pickle", "pickletools", "platform", "plistlib", "posixpath", "pprint", "pstats",
    "queue", "random", "re", "reprlib", "runpy", "sched", "secrets", "selectors", "shelve",
    "shlex", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "stat",
    "statistics", "string", "struct", "subprocess", "sys", "sysconfig", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "tokenize", "tomllib", "traceback",
    "tracemalloc", "typing", "unicodedata", "unittest", "urllib", "uuid", "wave", "weakref",
    "webbrowser", "wsgiref", "xml", "xmlrpc", "zipfile", "zlib", "zoneinfo",
)  # fmt: skip

QUERIES = (
    "parse a date from a string",
    "read a compressed tar archive",
    "run a command in a subprocess and capture its output",
    "compute the median of a list",
    "send an HTTP request",
    "serialize an object to JSON",
)

_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(-+>.*)?$")


@dataclass(frozen=True)
class DemoReport:
    """What one demo run measured.

    Example::

        report = run_demo(db, rows=300)
        report.overlap  # mean two-stage/exact overlap@10, 0..1
    """

    rows: int
    rows_per_s: float
    overlap: float
    ann_ms: float
    exact_ms: float


def _modules() -> Iterator[ModuleType]:
    for name in MODULES:
        names = [name]
        module = _import(name)
        if module is None:
            continue
        if hasattr(module, "__path__"):
            found = pkgutil.walk_packages(module.__path__, prefix=name + ".", onerror=lambda _: None)
            names += sorted(m.name for m in found if not _private(m.name))
        for sub in names:
            got = module if sub == name else _import(sub)
            if got is not None:
                yield got


def _private(name: str) -> bool:
    return any(part.startswith("_") or part in ("test", "tests") for part in name.split("."))


def _import(name: str) -> ModuleType | None:
    # platform-specific submodules (asyncio.windows_events) fail here; they are skipped
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _summary(doc: Any) -> str | None:
    """A docstring's first paragraph on one line, skipping a leading signature line."""
    if not isinstance(doc, str):
        return None
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    if len(paragraphs) > 1 and _SIGNATURE.match(paragraphs[0]):
        paragraphs.pop(0)
    text = paragraphs[0] if paragraphs else ""
    # a few words at least: "Alias for field number 0" and the like teach nothing
    return text if len(text) >= 20 else None


def _home(obj: Any, module: ModuleType) -> bool:
    """Whether ``module`` is where ``obj`` is documented (not merely re-exported)."""
    home = getattr(obj, "__module__", None)
    # C accelerators (_heapq, _socket, posix) are documented by their public module
    return home == module.__name__ or (isinstance(home, str) and (home[:1] == "_" or home == "posix"))


def _members(module: ModuleType) -> Iterator[tuple[str, Any]]:
    yield module.__name__, module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not _home(obj, module):
            continue
        if inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj
            for attr, raw in sorted(vars(obj).items()):
                func = getattr(raw, "__func__", raw)  # classmethod / staticmethod
                if not attr.startswith("_") and (isinstance(raw, property) or inspect.isroutine(func)):
                    yield f"{module.__name__}.{name}.{attr}", func
        elif inspect.isroutine(obj):
            yield f"{module.__name__}.{name}", obj


def stdlib_corpus(rows: int | None = None) -> list[dict[str, Any]]:
    """Records ``{"key", "content", "metadata"}`` from stdlib docstrings, in a fixed order.

    ``rows`` takes that many spread evenly over the whole corpus.

    Example::

        stdlib_corpus(3)[0]["key"]   # 'abc'
    """
    records: list[dict[str, Any]] = []
    seen: set[object] = set()  # keys, texts and object ids: each once, first module wins
    with warnings.catch_warnings():
        # deprecated aliases (typing.io) warn when touched; they must not change the corpus
        warnings.simplefilter("ignore")
        for module in _modules():
            for key, obj in _members(module):
                text = _summary(obj.__doc__)
                if text is None or {key, text, id(obj)} & seen:
                    continue
                seen.update((key, text, id(obj)))
                records.append({"key": key, "content": text, "metadata": {"module": module.__name__}})
    if rows is not None and rows < len(records):
        records = [records[i * len(records) // rows] for i in range(rows)]
    return records


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _psql_url(url: str) -> str:
    has_password = bool(psycopg.conninfo.conninfo_to_dict(url).get("password"))
    return redact(url) if has_password else url


def run_demo(
    db: Database,
    *,
    rows: int | None = None,
    echo: Callable[[str], object] = print,
    repeat: int = 7,
) -> DemoReport:
    """Load stdlib docstrings into ``stdlib_docs`` and compare two-stage with exact search.

    Example::

        with semsearch.connect() as db:
            run_demo(db, rows=1000)
    """
    check_installed("local")  # before the demo's collection is dropped
    start = time.perf_counter()
    records = stdlib_corpus(rows)
    echo(f"corpus: {len(records)} docstrings from {len(MODULES)} stdlib modules ({time.perf_counter() - start:.1f}s)")
    db.drop_collection(COLLECTION, missing_ok=True)
    col = db.create_collection(COLLECTION, model="local", dims=256, compression=COMPRESSION)
    start = time.perf_counter()
    added = col.add_many(records, progress=True, total=len(records), autotune=False)
    rate = len(records) / (time.perf_counter() - start)
    echo(
        f"ingested {added.inserted} rows into {COLLECTION!r} (model local, 256 dims, "
        f"compression {COMPRESSION}): {rate:,.0f} rows/s including embedding"
    )
    # what add_many does by itself after a bulk load (autotune=True, the default), timed apart
    start = time.perf_counter()
    tuned = autotune(col, after_bulk_load=True)
    if tuned is not None:
        echo(f"autotune ({time.perf_counter() - start:.1f}s): {tuned}")

    overlaps, ann_times, exact_times = [], [], []
    k = 10
    for query in QUERIES:
        qvec = col.embedder.embed([query])[0]
        ann = col.search(vector=qvec, k=k)
        exact = col.search(vector=qvec, k=k, exact=True)
        overlap = len(set(ann.keys) & set(exact.keys)) / max(len(exact), 1)
        overlaps.append(overlap)
        # database time only: the query is embedded once, above
        ann_times.append(_median_ms(partial(col.search, vector=qvec, k=k), repeat))
        exact_times.append(_median_ms(partial(col.search, vector=qvec, k=k, exact=True), repeat))
        echo(f"\n{query!r}")
        for rank, hit in enumerate(ann[:3], 1):
            content = hit.content if len(hit.content) <= 70 else hit.content[:69] + "…"
            echo(f"  {rank}. {hit.score:.4f}  {hit.key}: {content}")
        echo(
            f"  two-stage vs exact overlap@{k}: {overlap:.0%}  "
            f"(median {ann_times[-1]:.2f} ms two-stage, {exact_times[-1]:.2f} ms exact)"
        )

    report = DemoReport(
        rows=len(records),
        rows_per_s=rate,
        overlap=statistics.mean(overlaps),
        ann_ms=statistics.median(ann_times),
        exact_ms=statistics.median(exact_times),
    )
    echo(
        f"\nsummary: {report.rows} rows, {report.rows_per_s:,.0f} rows/s ingest, "
        f"overlap@{k} {report.overlap:.0%}, median latency {report.ann_ms:.2f} ms two-stage "
        f"vs {report.exact_ms:.2f} ms exact"
    )
    echo(f'explore it: psql "{_psql_url(db.url)}"  (table semsearch.{col.layout.table_name})')
    return report
