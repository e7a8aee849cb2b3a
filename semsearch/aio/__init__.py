"""semsearch for asyncio: the same collections, results and errors, on psycopg's ``AsyncConnectionPool``.

Example::

    import semsearch.aio

    async with await semsearch.aio.connect() as db:
        col = await db.create_collection("docs", model="local", dims=256)
        await col.add(keys=["a", "b"], contents=["cats purr", "dogs bark"])
        hits = await col.search("kittens", k=1)
"""

from semsearch.aio.collection import AsyncCollection
from semsearch.aio.database import AsyncDatabase, connect

__all__ = ["AsyncCollection", "AsyncDatabase", "connect"]
