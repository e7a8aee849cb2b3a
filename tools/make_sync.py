"""Generate the sync modules from their async source (in the spirit of psycopg's async-to-sync script).

The I/O of a collection is written once, for asyncio, under ``semsearch/aio/``; each
module of :data:`PAIRS` is rewritten into its sync twin: ``async def`` -> ``def``,
``await x`` -> ``x``, ``async with`` / ``async for`` -> ``with`` / ``for``, ``Async*``
names -> their sync names, ``semsearch.aio.X`` imports -> ``semsearch.X`` (or the module
:data:`MODULES` names), ``@awaitable`` dropped. A block

    if True:  # ASYNC
        <async only>
    else:
        <sync only>

keeps only its ``else`` body (or nothing) in the sync module. The result is formatted with
ruff (imports sorted, the unused removed) and starts with a header naming its source.
What must really differ between the flavours (running a sync maintenance call, how records
are iterated) lives in the per-flavour modules ``semsearch/aio/flavour.py`` and
``semsearch/flavour.py``, which both sides import and which are not generated.

Usage::

    python tools/make_sync.py            # rewrite the generated modules
    python tools/make_sync.py --check    # exit 1 when one differs from what its source makes
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (async source, generated sync module), relative to the repository's root
PAIRS = [
    ("semsearch/aio/staging.py", "semsearch/staging.py"),
    ("semsearch/aio/retrying.py", "semsearch/retrying.py"),
    ("semsearch/aio/repairs.py", "semsearch/repairs.py"),
    ("semsearch/aio/writes.py", "semsearch/writes.py"),
    ("semsearch/aio/lookups.py", "semsearch/lookups.py"),
    ("semsearch/aio/measuring.py", "semsearch/measuring.py"),
    ("semsearch/aio/deferred.py", "semsearch/deferred.py"),
    ("semsearch/aio/upkeep.py", "semsearch/upkeep.py"),
    ("semsearch/aio/collection.py", "semsearch/collection.py"),
]

#: async modules whose sync twin is not ``semsearch.<same name>``
MODULES = {
    "semsearch.aio.search": "semsearch.searching",
    "semsearch.aio.batch": "semsearch.batch",
    "semsearch.aio.database": "semsearch.db",
}

#: names rewritten wherever they stand (whole words, not attributes); besides, every ``AsyncX`` is ``X``
NAMES = {
    "asynccontextmanager": "contextmanager",
    "aembed": "embed",
    "asyncio.sleep": "time.sleep",
}

HEADER = "# generated from {source} by tools/make_sync.py: do not edit (edit the source, then `make sync`)\n"

_IF_ASYNC = re.compile(r"^(\s*)if True:\s*# ASYNC\s*$")


def _blocks(lines: list[str]) -> list[str]:
    """Keep the ``else`` body of each ``if True:  # ASYNC`` block, dedented by one level."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _IF_ASYNC.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group(1)
        i += 1
        while i < len(lines) and _inside(lines[i], indent):
            i += 1  # the async body
        if i < len(lines) and lines[i].rstrip() == f"{indent}else:":
            i += 1
            while i < len(lines) and _inside(lines[i], indent):
                line = lines[i]
                out.append(line[4:] if line.strip() else line)
                i += 1
    return out


def _inside(line: str, indent: str) -> bool:
    """Whether ``line`` belongs to a block opened at ``indent`` (blank lines do)."""
    return not line.strip() or (line.startswith(indent + " ") and len(line) - len(line.lstrip()) > len(indent))


def _module(match: re.Match[str]) -> str:
    name = match.group(0)
    return MODULES.get(name, name.replace("semsearch.aio.", "semsearch."))


def transform(source: str, name: str) -> str:
    """The sync text of the async module ``source`` (unformatted); ``name``: its path, for the header."""
    lines = _blocks(source.splitlines())
    text = "\n".join(line for line in lines if line.strip() != "@awaitable") + "\n"
    text = re.sub(r"^from semsearch\.aio\.pending import awaitable\n", "", text, flags=re.M)
    text = re.sub(r"\bsemsearch\.aio\.\w+", _module, text)
    text = re.sub(r"^from semsearch\.aio import (.+)$", _from_aio, text, flags=re.M)
    text = re.sub(r"\basync (def|with|for)\b", r"\1", text)
    text = re.sub(r"(?<![\w\])])\(await ((?:[^()]|\([^()]*\))*)\)", r"\1", text)  # (await f(x))[0] -> f(x)[0]
    text = re.sub(r"\bawait ", "", text)
    text = re.sub(r"\bAwaitable\[(\w+)\]", r"\1", text)
    text = re.sub(r"(?<!\w)Async([A-Z]\w*)", r"\1", text)  # psycopg.AsyncConnection too
    for old, new in NAMES.items():
        text = re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text)  # not an attribute: embedder.aembed stays
    return HEADER.format(source=name) + text


def _from_aio(match: re.Match[str]) -> str:
    """``from semsearch.aio import a, b as c``: one sync import per module."""
    out = []
    for item in match.group(1).split(","):
        module, _, alias = item.strip().partition(" as ")
        target = MODULES.get(f"semsearch.aio.{module}", f"semsearch.{module}")
        package, _, leaf = target.rpartition(".")
        name = alias or module
        out.append(f"from {package} import {leaf}" + ("" if leaf == name else f" as {name}"))
    return "\n".join(out)


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        raise SystemExit("make_sync needs ruff (pip install ruff)")
    return found


def generate(source: str) -> str:
    """The generated sync module of ``source`` (a path relative to the repository), formatted."""
    target = dict(PAIRS)[source]
    text = transform((ROOT / source).read_text(encoding="utf-8"), source)
    ruff = _ruff()
    for args in (["check", "--fix", "--select", "I,F401", "--quiet", "--exit-zero"], ["format"]):
        text = subprocess.run(
            [ruff, *args, "--stdin-filename", str(ROOT / target), "-"],
            input=text, capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout  # fmt: skip
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which generated module is not current")
    args = parser.parse_args(argv)
    stale = []
    for source, target in PAIRS:
        text = generate(source)
        path = ROOT / target
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"expected the generated modules current, got stale: {', '.join(stale)} (run `make sync`)")
        return 1
    for target in [] if args.check else stale:
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
