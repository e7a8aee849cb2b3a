"""Layers without a circle: the package's import graph has no cycle, and the foundation imports nothing above it.

Every import statement of a module counts, wherever it is: at the top, inside a function
(a lazy import is still a dependency) and under ``if TYPE_CHECKING:`` (a type is one too).
A lower module that needs something of a higher one types it with a protocol of its own
(as :mod:`semsearch.aio.faces` does) or gets it passed in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import semsearch

ROOT = Path(semsearch.__file__).parent

# The foundation (values, plans, the SQL it makes, the catalog row, filters, BM25, embedders)
# is what the API and the frontends are built on: it never imports them, not even lazily.
FOUNDATION = (
    "errors",
    "values",
    "plans",
    "layout",
    "statements",
    "collection_info",
    "catalog",
    "filters",
    "bm25",
    "embeddings",
)
ABOVE_IT = ("collection", "db", "aio", "cli", "django", "sqlalchemy", "flask", "langchain", "llama_index")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports (itself left out)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:  # the longest prefix that is a module: `from semsearch.db import connect` is semsearch.db
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts.pop()
        return None

    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                found.update(resolve(f"{base}.{alias.name}") or resolve(base) for alias in node.names)
        found.discard(None)
        found.discard(name)
        edges[name] = {m for m in found if m is not None}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _reached(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in edges[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def _under(module: str, names: tuple[str, ...]) -> bool:
    return any(module == f"semsearch.{n}" or module.startswith(f"semsearch.{n}.") for n in names)


def test_the_graph_sees_every_kind_of_import():
    edges = import_graph()
    assert len(edges) > 50
    assert "semsearch.embeddings.local" in edges["semsearch.embeddings"]  # inside a function
    assert "semsearch.collection" in edges["semsearch.indexing"]  # under TYPE_CHECKING
    assert "semsearch.bm25.names" in edges["semsearch.bm25.ranking"]  # relative or absolute, the same module


def test_the_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    """Before issue 18: 14 (later 18) modules in one circle, and four more circles (aio, embeddings, ORMs)."""
    found = cycles(import_graph())
    assert found == [], f"import cycles (each module of one imports, in the end, itself): {found}"


#: the helpers of the write and measuring paths: they take semsearch.faces' narrow faces
HELPERS = ("writes", "backfill", "watch", "doctor", "table_sync", "sync_source", "workload", "evaluate", "tune",
           "fusion", "lookups", "measuring", "ingest", "searching", "explaining", "batch", "paging", "stored", "guards",
           "repairs", "flavour", "deferred", "upkeep", "retrying", "staging", "passages")  # fmt: skip
#: the query path: it never imports the write path
QUERY_PATH = ("searching", "statements", "explaining", "guards", "batch", "paging", "layout", "plans", "retrying",
              "passages.grouping")  # fmt: skip
WRITE_PATH = ("writes", "ingest", "backfill", "watch", "table_sync", "sync_source", "model_switch", "doctor", "repairs",
              "staging", "passages.edits")  # fmt: skip


def test_helpers_take_faces_not_the_api():
    """No helper imports Collection or Database (not even for a type): they take semsearch.faces."""
    edges = import_graph()
    wrong = {h: sorted(r for r in _reached(edges, f"semsearch.{h}") if _under(r, ABOVE_IT)) for h in HELPERS}
    assert {h: r for h, r in wrong.items() if r} == {}


def test_the_query_path_never_imports_the_write_path():
    edges = import_graph()
    wrong = {q: sorted(r for r in _reached(edges, f"semsearch.{q}") if _under(r, WRITE_PATH)) for q in QUERY_PATH}
    assert {q: r for q, r in wrong.items() if r} == {}


def test_the_foundation_never_imports_the_api_or_a_frontend():
    edges = import_graph()
    foundation = [m for m in edges if _under(m, FOUNDATION)]
    assert len(foundation) >= 15
    wrong = {m: sorted(r for r in _reached(edges, m) if _under(r, ABOVE_IT)) for m in foundation}
    assert {m: r for m, r in wrong.items() if r} == {}
