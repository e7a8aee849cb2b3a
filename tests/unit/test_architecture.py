"""ARCHITECTURE.md stays the map of the package: every module is on it (its layer rules: test_layers.py)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import semsearch

ROOT = Path(semsearch.__file__).parent
MAP = (ROOT.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
# Django's management commands are found by Django by their file names; migrations are alembic's
MODULES = sorted(
    m.name.removeprefix("semsearch.")
    for m in pkgutil.walk_packages(semsearch.__path__, "semsearch.")
    if not m.name.startswith(("semsearch.django.management", "semsearch.migrations"))
)


def _named(module: str) -> bool:
    """A module is on the map by its dotted name, or by its last part next to its package's ``pkg/``."""
    parts = module.split(".")
    if f"`{module}" in MAP or (f"`{parts[0]}/`" in MAP and (len(parts) == 1 or f"`{parts[-1]}`" in MAP)):
        return True
    return len(parts) == 2 and parts[1] == "__main__"


def test_every_module_is_on_the_architecture_page():
    missing = [m for m in MODULES if not _named(m)]
    assert not missing, f"modules missing from ARCHITECTURE.md: {missing}"


def test_the_public_names_on_the_page_exist():
    public = [
        "server.resolve_url", "embedded.embedded_url", "config.Settings", "demo.stdlib_corpus",
        "filters.compile_filter", "evaluate.evaluate", "evaluate.sweep", "evaluate.plot_sweep", "evaluate.ndcg",
        "readers.read_qrels", "embeddings.local.LocalEmbedder", "embeddings.openai.OpenAIEmbedder",
    ]  # fmt: skip
    for name in public:
        module, attr = name.rsplit(".", 1)
        assert f"{name}`" in MAP or f"`{attr}`" in MAP, name
        assert hasattr(importlib.import_module(f"semsearch.{module}"), attr), name
    for attr in semsearch.__all__:
        assert f"`{attr}`" in MAP, attr


def test_every_file_a_comment_or_doc_names_exists():
    """Comments cite files by path (semsearch/..., sql/..., tests/...): each must exist, none left from a rename."""
    import re

    repo = ROOT.parent
    cited = re.compile(r"(?<![\w/.])(?:semsearch|sql|migrations|tests|bench|tools|examples)/[\w/]+\.(?:py|sql)\b")
    sources = [*repo.glob("*.md"), *(p for d in ("semsearch", "sql", "migrations", "tests", "bench", "tools")
                                     for p in (repo / d).rglob("*") if p.suffix in (".py", ".sql", ".md"))]  # fmt: skip
    missing = set()
    # 0.1.0's shipped SQL is history: its comments cite 0.1.0's own files
    sources = [s for s in sources if s.name != "0001_search.sql"]
    for source in sources:
        for path in cited.findall(source.read_text(encoding="utf-8")):
            # inside a wheel migrations/ and sql/ sit in the package (pyproject's force-include)
            in_repo = re.sub(r"^semsearch/(migrations|sql)/", r"\1/", path)
            if not (repo / in_repo).exists():
                missing.add(f"{source.relative_to(repo)}: {path}")
    assert not missing, sorted(missing)


def test_the_data_paths_name_real_functions():
    """Every `module.name` the page's data paths cite exists (a rename that forgets the page fails here)."""
    import re

    start = MAP.index("## The query path, by name")
    section = MAP[start : MAP.index("## Where each decision lives")]
    cited = set(re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)`", section))
    assert len(cited) > 25
    missing = []
    for name in sorted(cited):
        parts = name.split(".")
        if parts[0] in ("semsearch", "Collection", "Layout", "Plan"):
            continue  # SQL functions (semsearch.search()) and methods, checked below
        module, attrs = importlib.import_module(f"semsearch.{parts[0]}"), parts[1:]
        obj: object = module
        for attr in attrs:
            if not hasattr(obj, attr):
                missing.append(name)
                break
            obj = getattr(obj, attr)
    for method in re.findall(r"`Collection\.(\w+)", section):
        if not hasattr(semsearch.Collection, method):
            missing.append(f"Collection.{method}")
    assert missing == []
