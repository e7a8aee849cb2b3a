"""A bounded soak: 3 writers and 3 searchers on one collection, every answer checked.

Every row's vector is a function of its text (:func:`vector_of`), its tenant a function
of its key (:func:`tenant_of`), so any hit and any stored row can be checked on its own,
whatever the other threads did meanwhile: a hit's score must be the cosine of the query
and its text's vector, its metadata and tenant must pass the search's filters, results
are sorted and at most ``k``. Writers upsert (with vectors, through the embedder, in
batches with ``add_many``, deferred then backfilled), change metadata and delete, on a
shared key range and on a private one each; the private keys must end exactly as their
writer last left them. Now and then a writer changes the compression plan, so an index
built concurrently is swapped in under the others.

``SEMSEARCH_SOAK_SECONDS`` sets the length (default 20); ``SEMSEARCH_SOAK_SECONDS=150``
runs a long soak. ``SEMSEARCH_SOAK_SEED`` (default 0) picks other operations. The counts
of what ran are asserted, and recorded as the test's properties
(``pytest -o junit_family=legacy --junitxml=soak.xml`` writes them).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

import semsearch
from semsearch.errors import BackfillRunningError

SECONDS = float(os.environ.get("SEMSEARCH_SOAK_SECONDS", "20"))
SEED = int(os.environ.get("SEMSEARCH_SOAK_SEED", "0"))
DIMS = 32
WORDS = ["apple", "banana", "cherry", "river", "mountain", "forest", "ocean", "desert"]
WORDS += ["garden", "music", "paper", "window", "engine", "planet", "castle", "bridge"]
COLORS = ("red", "green", "blue")
SHARED = [f"k{i:03d}" for i in range(300)]
#: each writer's own keys: nobody else writes them, so their final state is known exactly
PRIVATE = {w: [f"k{i:03d}" for i in range(300 + 100 * w, 400 + 100 * w)] for w in range(3)}
SEARCHERS = 3
#: seconds between two changes of the compression plan (by the first writer)
ALTER_EVERY = 3.0


def vector_of(text: str) -> np.ndarray:
    """The one vector of a text: seeded by its hash, unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIMS)
    return v / np.linalg.norm(v)


def tenant_of(key: str) -> str:
    return "a" if int(key[1:]) % 2 == 0 else "b"


class HashEmbedder:
    """A deterministic :class:`semsearch.embeddings.Embedder`: the same text, the same vector."""

    model = "soak-hash"
    dims = DIMS

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([vector_of(t) for t in texts], dtype=np.float32)


Row = tuple[str, dict[str, Any]]  # content, metadata


def _content(key: str, rev: str, rng: random.Random) -> str:
    return f"doc {key} rev {rev} " + " ".join(rng.sample(WORDS, 4))


def _metadata(rng: random.Random, writer: str) -> dict[str, Any]:
    return {"color": rng.choice(COLORS), "n": rng.randrange(10), "w": writer}


#: (filter, the same filter in Python)
FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"color": "red"}, lambda m: m["color"] == "red"),
    ({"n": {"$gte": 5}}, lambda m: m["n"] >= 5),
    ({"color": {"$in": ["green", "blue"]}}, lambda m: m["color"] in ("green", "blue")),
    ({"w": {"$ne": "w0"}, "color": "blue"}, lambda m: m["w"] != "w0" and m["color"] == "blue"),
]


class Writer:
    def __init__(self, db: semsearch.Database, w: int, initial: dict[str, Row]) -> None:
        self.col = db.collection("soak", embedder=HashEmbedder())
        self.w, self.name = w, f"w{w}"
        self.rng = random.Random(f"{SEED} writer {w}")
        self.own = PRIVATE[w]
        #: what each own key holds after this writer's last acknowledged write (None: deleted)
        self.model: dict[str, Row | None] = {k: initial.get(k) for k in self.own}
        #: every text this writer sent for each key (checked against the final table)
        self.written: dict[str, set[str]] = {}
        self.counts: Counter[str] = Counter()
        self.seq = 0
        self.next_alter = time.monotonic() + ALTER_EVERY

    def _keys(self, n: int) -> list[str]:
        pool = SHARED if self.rng.random() < 0.5 else self.own
        return self.rng.sample(pool, n)

    def _new_rows(self, keys: list[str]) -> dict[str, Row]:
        rows = {}
        for key in keys:
            self.seq += 1
            content = _content(key, f"{self.name}.{self.seq}", self.rng)
            self.written.setdefault(key, set()).add(content)
            rows[key] = (content, _metadata(self.rng, self.name))
        return rows

    def _acknowledged(self, rows: dict[str, Row | None]) -> None:
        for key, row in rows.items():
            if key in self.model:
                self.model[key] = row

    def step(self) -> None:
        op = self.rng.choices(
            ["add_vectors", "add_embedder", "add_many", "defer", "backfill", "delete", "metadata"],
            weights=[25, 15, 12, 14, 6, 12, 16],
        )[0]
        rng, col = self.rng, self.col
        if self.w == 0 and time.monotonic() >= self.next_alter:
            op = "alter"
            self.next_alter = time.monotonic() + ALTER_EVERY
        if op in ("add_vectors", "add_embedder", "defer"):
            # deferred batches are larger, as a web app's commit hooks pile them up for a backfill
            rows = self._new_rows(self._keys(rng.randint(1, 40 if op == "defer" else 16)))
            keys = list(rows)
            contents = [rows[k][0] for k in keys]
            vectors = np.array([vector_of(c) for c in contents]) if op == "add_vectors" else None
            col.add(
                keys=keys,
                contents=contents,
                embeddings=vectors,
                metadata=[rows[k][1] for k in keys],
                tenant=[tenant_of(k) for k in keys],
                defer=op == "defer",
            )
            self._acknowledged(dict(rows))
            if op == "defer" and rng.random() < 0.5:
                self._backfill()
        elif op == "add_many":
            rows = self._new_rows(self._keys(rng.randint(5, 30)))
            with_vectors = rng.random() < 0.5
            records = [
                {
                    "key": k,
                    "content": c,
                    "metadata": m,
                    "tenant": tenant_of(k),
                    **({"embedding": vector_of(c)} if with_vectors else {}),
                }
                for k, (c, m) in rows.items()
            ]
            col.add_many(records, batch_size=rng.randint(3, 12))
            self._acknowledged(dict(rows))
        elif op == "backfill":
            self._backfill()
        elif op == "alter":
            # a new index built concurrently and swapped in, under the writes and searches
            plan = "halfvec" if self.col.info.compression == "bit" else "bit"
            self.col.db.alter_collection("soak", compression=plan)
            self.col = self.col.db.collection("soak", embedder=HashEmbedder())
        elif op == "delete":
            keys = self._keys(rng.randint(1, 4))
            col.delete(keys)
            self._acknowledged(dict.fromkeys(keys))
        else:
            # the same texts with new metadata: their vectors are kept (or reused from the table)
            keys = [k for k in rng.sample(self.own, 6) if self.model[k] is not None]
            if not keys:
                return
            updated = {k: (self.model[k][0], _metadata(rng, self.name)) for k in keys}  # type: ignore[index]
            col.add(
                keys=keys,
                contents=[updated[k][0] for k in keys],
                metadata=[updated[k][1] for k in keys],
                tenant=[tenant_of(k) for k in keys],
                defer=rng.random() < 0.3,
            )
            self._acknowledged(dict(updated))
        self.counts[op] += 1

    def _backfill(self) -> None:
        try:
            self.col.backfill(batch_size=self.rng.choice([4, 16, 64]))
            self.counts["backfill_runs"] += 1
        except BackfillRunningError:
            # documented: one backfill of a collection at a time, a second is refused
            self.counts["backfill_refused"] += 1


def _check_hits(
    res: semsearch.SearchResult,
    *,
    k: int,
    query: np.ndarray | None,
    tenant: str | None,
    keep: Callable[[dict[str, Any]], bool] | None,
    words: list[str] | None,
    complete: bool,
) -> None:
    hits = list(res)
    assert len(hits) <= k, (len(hits), k)
    if complete:
        assert len(hits) == k, (len(hits), k)
    keys = [h.key for h in hits]
    assert len(set(keys)) == len(keys), keys
    scores = [h.score for h in hits]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(scores)), scores
    for h in hits:
        assert h.content.startswith(f"doc {h.key} rev "), (h.key, h.content)
        if query is not None:
            assert abs(h.score - float(query @ vector_of(h.content))) <= 1e-4, (h.key, h.content, h.score)
        if tenant is not None:
            assert tenant_of(h.key) == tenant, (h.key, tenant)
        if keep is not None:
            assert keep(h.metadata), (h.key, h.metadata)
        if words is not None:
            assert set(words) & set(h.content.split()), (words, h.content)


class Searcher:
    def __init__(self, db: semsearch.Database, s: int) -> None:
        self.db = db
        self.col = db.collection("soak", embedder=HashEmbedder())
        self.rng = random.Random(f"{SEED} searcher {s}")
        self.counts: Counter[str] = Counter()

    def step(self) -> None:
        rng = self.rng
        if rng.random() < 0.05:
            # a handle opened now, as a web request would
            self.col = self.db.collection("soak", embedder=HashEmbedder())
        mode = rng.choices(["vector", "exact", "filtered", "query_text", "text", "hybrid"], [25, 10, 25, 5, 15, 20])[0]
        k = rng.randint(1, 20)
        tenant = rng.choice(["a", "b"]) if rng.random() < 0.4 else None
        where, keep = (
            rng.choice(FILTERS) if mode in ("filtered", "text", "hybrid") and rng.random() < 0.7 else (None, None)
        )
        words = rng.sample(WORDS, rng.randint(1, 2))
        text = " ".join(words)
        if mode in ("vector", "exact", "filtered"):
            q = vector_of(f"query {rng.random()}")
            res = self.col.search(vector=q, k=k, exact=mode == "exact", where=where, tenant=tenant)
            # hundreds of embedded rows pass any filter here: a vector search always finds k
            _check_hits(res, k=k, query=q, tenant=tenant, keep=keep, words=None, complete=True)
        elif mode == "query_text":
            res = self.col.search(text, k=k, tenant=tenant)
            _check_hits(res, k=k, query=vector_of(text), tenant=tenant, keep=None, words=None, complete=True)
        elif mode == "text":
            res = self.col.search(text, k=k, mode="text", where=where, tenant=tenant)
            _check_hits(res, k=k, query=None, tenant=tenant, keep=keep, words=words, complete=False)
        else:
            res = self.col.search(text, k=k, mode="hybrid", where=where, tenant=tenant)
            _check_hits(res, k=k, query=None, tenant=tenant, keep=keep, words=None, complete=True)
        self.counts[mode] += 1
        self.counts["hits"] += len(res)
        if tenant is not None or where is not None:
            self.counts["with_filter"] += 1


def _run(workers: Sequence[Writer | Searcher], seconds: float) -> list[str]:
    stop = threading.Event()
    failures: list[str] = []

    def loop(worker: Writer | Searcher) -> None:
        try:
            while not stop.is_set():
                worker.step()
        except BaseException:  # any failure of any thread is reported by the test
            failures.append(traceback.format_exc())
            stop.set()

    threads = [threading.Thread(target=loop, args=(w,), name=type(w).__name__) for w in workers]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a soak thread did not stop"
    return failures


def _table(db: semsearch.Database, col: semsearch.Collection) -> list[tuple[Any, ...]]:
    with db.connection() as conn:
        return conn.execute(
            sql.SQL("SELECT key, content, metadata, tenant, embedding::vector FROM {} ORDER BY key").format(
                col.layout.table
            )
        ).fetchall()


def _check_table(
    rows: list[tuple[Any, ...]], writers: Sequence[Writer], initial: dict[str, Row], *, pending_allowed: bool
) -> int:
    keys = [r[0] for r in rows]
    assert len(set(keys)) == len(keys)
    written: dict[str, set[str]] = {k: {c} for k, (c, _) in initial.items()}
    for w in writers:
        for key, texts in w.written.items():
            written.setdefault(key, set()).update(texts)
    stored = {r[0]: r for r in rows}
    for key, content, _meta, tenant, vec in rows:
        assert content in written[key], (key, content)
        assert tenant == tenant_of(key), (key, tenant)
        if vec is None:
            assert pending_allowed, key
        else:
            np.testing.assert_allclose(vec.to_numpy(), vector_of(content), atol=1e-6, err_msg=key)
    for w in writers:
        for key, expected in w.model.items():
            got = stored.get(key)
            assert (None if got is None else (got[1], got[2])) == expected, (key, got, expected)
    return len(rows)


def _deadlocks_once_gone(conn: psycopg.Connection, keep: set[int]) -> int:
    """Deadlocks the server counted in this database, once every other session has ended
    (a session reports its counts when it ends, at the latest)."""
    deadline = time.monotonic() + 30
    others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND NOT (pid = ANY(%s))"
    while conn.execute(others, [[*keep, conn.info.backend_pid]]).fetchone()[0]:
        assert time.monotonic() < deadline, "the soak's sessions did not end"
        time.sleep(0.02)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def test_soak_writers_and_searchers_on_one_collection(db_url, pg_conn, request):
    with semsearch.connect(db_url, max_connections=10) as db:
        col = db.create_collection("soak", embedder=HashEmbedder(), compression="bit")
        rng = random.Random(0)
        initial = {
            k: (_content(k, "init", rng), _metadata(rng, "init"))
            for k in [*SHARED, *PRIVATE[0], *PRIVATE[1], *PRIVATE[2]]
        }
        col.add_many({"key": k, "content": c, "metadata": m, "tenant": tenant_of(k)} for k, (c, m) in initial.items())
        writers = [Writer(db, w, initial) for w in range(3)]
        searchers = [Searcher(db, s) for s in range(SEARCHERS)]
        failures = _run([*writers, *searchers], SECONDS)
        assert failures == [], "\n".join(failures)

        writes: Counter[str] = sum((w.counts for w in writers), Counter())
        searches: Counter[str] = sum((s.counts for s in searchers), Counter())
        # every row as the writers left it: the pending ones without a vector, the others with their text's
        rows = _table(db, col)
        pending = sum(r[4] is None for r in rows)
        assert col.pending() == pending
        checked = _check_table(rows, writers, initial, pending_allowed=True)
        col.backfill()
        rows = _table(db, col)
        checked += _check_table(rows, writers, initial, pending_allowed=False)
        assert col.pending() == 0 and len(rows) == col.count()
        with db.connection() as conn:
            indexes = conn.execute(
                "SELECT i.indexrelid::regclass::text, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                "WHERE a.amname = 'hnsw' AND i.indrelid = %s::regclass",
                [f"semsearch.{col.layout.table_name}"],
            ).fetchall()
            indexdef = conn.execute("SELECT pg_get_indexdef('semsearch.col_soak_hnsw'::regclass)").fetchone()[0]
        assert indexes == [("semsearch.col_soak_hnsw", True)]
        # on the expression of the plan the catalog names
        info = db.collection("soak").info
        assert info.layout.plan.opclass(info.storage).as_string(None) in indexdef
        assert ("binary_quantize" in indexdef) == (info.compression == "bit")

    # semsearch's writers all lock rows in key order: they wait for each other, never deadlock
    # (a deadlock they survive by retrying still stalls both for a second)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert _deadlocks_once_gone(conn, {pg_conn.info.backend_pid}) == 0

    ops = {op: writes[op] for op in ("add_vectors", "add_embedder", "add_many", "defer", "delete", "metadata", "alter")}
    counts = {**ops, "backfills": writes["backfill_runs"], **searches, "rows_checked": checked, "pending": pending}
    # in the junit xml as properties (pytest -o junit_family=legacy --junitxml=...)
    request.node.user_properties.extend(counts.items())
    assert all(n > 0 for n in ops.values()), ops
    assert writes["backfill_runs"] > 0, writes
    modes = {m: searches[m] for m in ("vector", "exact", "filtered", "query_text", "text", "hybrid")}
    assert all(n > 0 for n in modes.values()), modes
    # at least one search a second per searcher and one write a second per writer, on the slowest machine
    assert sum(modes.values()) >= SEARCHERS * SECONDS, modes
    assert sum(ops.values()) >= len(writers) * SECONDS, ops
    assert checked >= 2 * 900 * 0.5, checked  # the table is never far from its 900 keys


def test_backfill_locks_rows_in_key_order_like_every_other_writer(db):
    """The soak's contention found it: backfill updated its batch in id order, so with upserts and
    deletes (key order) of the same rows it deadlocked: a raw DeadlockDetected out of backfill(),
    or a WriteConflictError out of add() when the upsert lost twice."""
    col = db.create_collection("order", embedder=HashEmbedder(), compression="bit")
    # "b" gets the lower id: id order and key order disagree
    col.add(keys=["b"], contents=["doc b pending"], defer=True)
    col.add(keys=["a"], contents=["doc a pending"], defer=True)
    failures: list[BaseException] = []

    def backfill() -> None:
        try:
            col.backfill()
        except BaseException as exc:  # asserted below
            failures.append(exc)

    with psycopg.connect(db.url, autocommit=True) as holder, psycopg.connect(db.url, autocommit=True) as probe:
        with holder.transaction():
            # a writer in key order holds "a" ...
            holder.execute("SELECT 1 FROM semsearch.col_order WHERE key = 'a' FOR UPDATE")
            thread = threading.Thread(target=backfill)
            thread.start()
            deadline = time.monotonic() + 30
            while not probe.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone():
                assert time.monotonic() < deadline, "the backfill never waited for the row lock"
                time.sleep(0.02)
            # ... and would take "b" next: the backfill, waiting for "a", must not hold "b"
            with probe.transaction(force_rollback=True):
                probe.execute("SET LOCAL lock_timeout = '100ms'")
                probe.execute("SELECT 1 FROM semsearch.col_order WHERE key = 'b' FOR UPDATE")
        thread.join(timeout=30)
    assert failures == [] and col.pending() == 0
