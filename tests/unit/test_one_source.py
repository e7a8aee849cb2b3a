"""One source for sync and async: the generated sync modules are current, and every sync call has its async twin."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

from semsearch import Collection, Database
from semsearch.aio import AsyncCollection, AsyncDatabase

ROOT = Path(__file__).resolve().parents[2]


def _make_sync():
    spec = importlib.util.spec_from_file_location("make_sync", ROOT / "tools" / "make_sync.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sync"] = module
    spec.loader.exec_module(module)
    return module


make_sync = _make_sync()


@pytest.mark.parametrize(("source", "target"), make_sync.PAIRS)
def test_the_generated_module_is_what_its_source_makes(source, target):
    committed = (ROOT / target).read_text(encoding="utf-8")
    assert committed == make_sync.generate(source), f"{target} is stale: edit {source}, then run `make sync`"
    assert committed.startswith(f"# generated from {source} by tools/make_sync.py: do not edit")


def test_the_rewrite_of_each_async_construct():
    source = '''from semsearch.aio import ingest as staging, repairs
from semsearch.aio.pending import awaitable
from semsearch.aio.search import execute


class AsyncThing(AsyncLookups):
    @awaitable
    async def get(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Example::

            (await thing.get(c))[0]
        """
        async with conn.transaction():
            async for row in records_of(rows):
                await asyncio.sleep(1)
        if True:  # ASYNC
            return (await aembed(self.embedder, ["a"]))[0]
        else:
            return self.embedder.aembed(["a"])[0]
'''
    got = make_sync.transform(source, "x.py")
    assert (
        got
        == '''# generated from x.py by tools/make_sync.py: do not edit (edit the source, then `make sync`)
from semsearch import ingest as staging
from semsearch import repairs
from semsearch.searching import execute


class Thing(Lookups):
    def get(self, conn: psycopg.Connection[Any]) -> int:
        """Example::

            thing.get(c)[0]
        """
        with conn.transaction():
            for row in records_of(rows):
                time.sleep(1)
        return self.embedder.aembed(["a"])[0]
'''
    )


def _public(cls: type) -> dict[str, inspect.Signature]:
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            out[name] = None
        elif callable(member):
            out[name] = inspect.signature(member)
    return out


def _parameters(sig):
    if sig is None:
        return "property"
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(
    ("sync", "asynchronous"),
    [(Database, AsyncDatabase), (Collection, AsyncCollection)],
    ids=["Database", "Collection"],
)
def test_every_public_sync_call_has_an_async_twin_with_the_same_parameters(sync, asynchronous):
    theirs = _public(asynchronous)
    mine = _public(sync)
    # pool, router and liveness are attributes, set in __init__: not in these lists
    missing = sorted(set(mine) - set(theirs))
    assert missing == [], f"{asynchronous.__name__} lacks {missing}"
    differ = {
        name: (_parameters(sig), _parameters(theirs[name]))
        for name, sig in mine.items()
        if _parameters(sig) != _parameters(theirs[name])
    }
    assert differ == {}


def test_the_sync_modules_never_import_the_async_ones():
    from tests.unit.test_layers import _reached, import_graph

    edges = import_graph()
    generated = [f"semsearch.{Path(target).stem}" for _, target in make_sync.PAIRS]
    wrong = {m: sorted(r for r in _reached(edges, m) if r.startswith("semsearch.aio")) for m in generated}
    assert {m: r for m, r in wrong.items() if r} == {}
