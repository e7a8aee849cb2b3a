"""What an async call returns before it is awaited: awaiting it runs the call, other uses say to await it.

Called without ``await``, an ``async def`` returns a coroutine, and using that as the
result fails in Python's words (``'coroutine' object has no attribute 'search'``,
``... does not support the context manager protocol``). semsearch.aio's public calls
return a :class:`Pending` instead: the same coroutine (``asyncio.create_task``,
``gather`` and task groups take it), whose misuse raises
:class:`~semsearch.errors.NotAwaitedError` naming the fix.

Example::

    @awaitable
    async def count(self) -> int: ...

    await col.count()        # 3
    col.count().real         # NotAwaitedError: expected `await AsyncCollection.count(...)` before `.real`, ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator
from typing import Any, NoReturn, ParamSpec, TypeVar

from semsearch.errors import NotAwaitedError

P = ParamSpec("P")
T = TypeVar("T")


class Pending(Coroutine[Any, Any, T]):
    """A semsearch.aio call not awaited yet (a coroutine that names the fix when misused)."""

    __slots__ = ("_call", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, T], call: str) -> None:
        self._coro = coro
        self._call = call

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def _refuse(self, got: str) -> NoReturn:
        # it can no longer run as written: no "never awaited" warning on top of this error
        self._coro.close()
        raise NotAwaitedError(f"expected `await {self._call}`{got}, got the call not awaited")

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("_", "cr_")):
            # asyncio's task reprs read the coroutine's __qualname__, cr_code, cr_frame
            return getattr(self._coro, name)
        self._refuse(f" before `.{name}`")

    def __iter__(self) -> NoReturn:
        self._refuse(" before iterating")

    def __len__(self) -> NoReturn:
        self._refuse(" before len()")

    def __getitem__(self, index: Any) -> NoReturn:
        self._refuse(" before indexing")

    def __enter__(self) -> NoReturn:
        self._coro.close()
        raise NotAwaitedError(f"expected `await {self._call}`, got `with`")

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"<not awaited: {self._call}>"


def awaitable(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Pending[T]]:
    """``fn`` (an ``async def``) returning a :class:`Pending` of its coroutine."""
    call = f"{fn.__qualname__}(...)"

    @functools.wraps(fn)
    def pending(*args: P.args, **kwargs: P.kwargs) -> Pending[T]:
        return Pending(fn(*args, **kwargs), call)

    return pending
