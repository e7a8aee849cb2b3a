"""BM25 in SQL (semsearch.bm25) against a BM25 computed here from the rows' own tsvectors.

Real Postgres, real collection tables made by semsearch, Cranfield as data.
"""

from __future__ import annotations

import gzip
import importlib
import itertools
import math
import random
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import semsearch
from semsearch import bm25, statements
from semsearch.evaluate import ndcg
from semsearch.layout import Layout

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
benchdata = importlib.import_module("benchdata")  # the Cranfield parser bench/ uses


@pytest.fixture(scope="session")
def cran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Cranfield as ``benchdata.cranfield`` reads it (title + abstract; query n is the n-th)."""
    root = tmp_path_factory.mktemp("cranfield")
    src = ROOT / "tests" / "data" / "cranfield"
    with gzip.open(src / "cran.all.1400.gz", "rb") as f:
        (root / "cran.all.1400").write_bytes(f.read())
    for name in ("cran.qry", "cranqrel"):
        shutil.copy(src / name, root / name)
    data: dict[str, Any] = benchdata.cranfield(root)
    assert len(data["doc_ids"]) == 1400 and len(data["queries"]) == 225
    return data


def _collection(db: semsearch.Database, name: str, *, slots: int = bm25.SLOTS) -> semsearch.Collection:
    col = db.create_collection(name, model="bm25-test", dims=4)
    if slots == bm25.SLOTS:
        return col  # a collection comes with its BM25 statistics
    with db.connection() as conn, conn.transaction():
        for stmt in bm25.drop_statements(col.layout.table_name) + bm25.create_statements(
            col.layout.table_name, slots=slots
        ):
            conn.execute(stmt)
        for stmt in bm25.backfill_statements(col.layout.table_name):
            conn.execute(stmt)
    return col


def _records(keys: list[str], texts: list[str]) -> list[dict[str, Any]]:
    return [{"key": k, "content": t} for k, t in zip(keys, texts, strict=True)]


# --- the reference: BM25 from the rows' tsvectors, in Python ------------------------------


class Reference:
    """Lucene BM25 over ``SELECT id, key, unnest(tsv)`` of the table as it is now."""

    def __init__(self, conn: psycopg.Connection, layout: Layout, where: str = "true") -> None:
        self.tf: dict[int, dict[str, int]] = {}
        self.key: dict[int, str] = {}
        rows = conn.execute(
            sql.SQL(
                "SELECT c.id, c.key, u.lexeme, u.positions FROM {} c LEFT JOIN LATERAL unnest(c.tsv) u ON true WHERE {}"
            ).format(layout.table, sql.SQL(where))  # tests' own constant conditions
        )
        for rid, key, lexeme, positions in rows:
            self.key[rid] = key
            self.tf.setdefault(rid, {})
            if lexeme is not None:
                self.tf[rid][lexeme] = max(len(positions or []), 1)
        self.dl = {rid: sum(t.values()) for rid, t in self.tf.items()}
        self.df = Counter(lex for t in self.tf.values() for lex in t)
        self.n = len(self.tf)
        self.total = sum(self.dl.values())

    def rank(
        self, lexemes: list[str], k: int = 10, k1: float = 1.2, b: float = 0.75, among: Reference | None = None
    ) -> list[tuple[str, float]]:
        """Top k (key, score), ties by id; statistics from this table, candidates from ``among`` if given."""
        avgdl = self.total / self.n
        idf = {t: math.log(1 + (self.n - self.df[t] + 0.5) / (self.df[t] + 0.5)) for t in lexemes if self.df[t]}
        scores = {}
        for rid, tfs in (among or self).tf.items():
            s = 0.0
            for t in sorted(idf):
                tf = tfs.get(t)
                if tf:
                    s += idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * self.dl[rid] / avgdl))
            if s > 0:
                scores[rid] = s
        best = sorted(scores, key=lambda r: (-scores[r], r))[:k]
        return [(self.key[r], scores[r]) for r in best]


def _lexemes(conn: psycopg.Connection, text: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT lexeme FROM unnest(to_tsvector('english', %s::text))", [text])]


def _search(conn: psycopg.Connection, layout: Layout, text: str, k: int = 10, **kw: Any) -> list[tuple[str, float]]:
    stmt = bm25.search_statement(layout.table_name, "english", **kw.pop("stmt", {}))
    rows = conn.execute(stmt, {"text": text, "k": k, "k1": kw.get("k1", 1.2), "b": kw.get("b", 0.75), **kw})
    return [(r[0], r[2]) for r in rows]


def _assert_same_ranking(got: list[tuple[str, float]], want: list[tuple[str, float]], what: str) -> None:
    """Same keys in the same order, scores within 1e-9 relative.

    Two rows whose scores are equal in exact arithmetic (same tf and dl for terms of
    equal df, in another order) may come out 1 ulp apart in SQL or here, summed in
    another order; only such rows (scores within 1e-12) may swap places.
    """
    assert len(got) == len(want), what
    for (gk, gs), (wk, ws) in zip(got, want, strict=True):
        assert gs == pytest.approx(ws, rel=1e-9), what
        if gk != wk:
            assert gs == pytest.approx(ws, rel=1e-12, abs=0), f"{what}: {gk} in place of {wk}"


def _assert_stats_exact(conn: psycopg.Connection, layout: Layout) -> None:
    """Stored postings, df, N and total equal a recount from scratch (in Python and in SQL)."""
    ref = Reference(conn, layout)
    names = bm25.Names(layout.table_name)
    stored = {
        (lex, rid): (tf, dl)
        for rid, tf, dl, lex in conn.execute(
            sql.SQL("SELECT id, tf, dl, lexeme FROM {}").format(names.ident(names.postings))
        )
    }
    want = {(lex, rid): (tf, ref.dl[rid]) for rid, tfs in ref.tf.items() for lex, tf in tfs.items()}
    assert stored == want
    df = dict(
        conn.execute(
            sql.SQL("SELECT lexeme, sum(df)::bigint FROM {} GROUP BY lexeme HAVING sum(df) <> 0").format(
                names.ident(names.df)
            )
        ).fetchall()
    )
    assert df == dict(ref.df)
    n, total = conn.execute(
        sql.SQL("SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(total), 0)::bigint FROM {}").format(
            names.ident(names.stats)
        )
    ).fetchone() or (None, None)
    assert (n, total) == (ref.n, ref.total)
    assert conn.execute(bm25.verify_statement(layout.table_name)).fetchall() == []


# --- exactness ----------------------------------------------------------------------------


def test_scores_and_statistics_exact_after_churn(db, cran):
    """Every writer (COPY, upserts, deletes, raw UPDATE/MERGE, id changes): top-10 equals the reference."""
    ids, texts = cran["doc_ids"], cran["doc_texts"]
    rng = random.Random(7)
    col = _collection(db, "cran")
    lay = col.layout
    # bulk load through semsearch (empty collection: COPY straight into the table)
    col.add_many(_records(ids[:1000], texts[:1000]), bulk=True, defer=True, batch_size=400)
    copy = sql.SQL("COPY {} (key, content) FROM STDIN").format(lay.table)
    with db.connection() as conn, conn.cursor().copy(copy) as cp:  # a raw COPY of the next 200
        for k, t in zip(ids[1000:1200], texts[1000:1200], strict=True):
            cp.write_row((k, t))
    # semsearch's upsert for the last 200 (INSERT ... ON CONFLICT DO UPDATE, all new)
    col.add(ids[1200:], texts[1200:], defer=True)
    deleted = rng.sample(ids, 200)
    assert col.delete(deleted) == 200
    alive = [k for k in ids if k not in set(deleted)]
    rewritten = rng.sample(alive, 200)
    # 100 rewritten through the upsert (fires the UPDATE trigger), 100 by raw SQL
    col.add(rewritten[:100], [rng.choice(texts) + " revised" for _ in range(100)], defer=True)
    with db.connection() as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET content = reverse(content) || ' ' || content WHERE key = ANY(%s)").format(lay.table),
            [rewritten[100:]],
        )
        # statements that leave tsv alone write no statistics but must not break them
        conn.execute(sql.SQL("UPDATE {} SET metadata = jsonb_build_object('n', id)").format(lay.table))
        # an identity column can be reset: the row keeps its text under a new id
        conn.execute(sql.SQL("UPDATE {} SET id = DEFAULT WHERE key = ANY(%s)").format(lay.table), [alive[:5]])
    back = deleted[:100]
    col.add(back, [texts[ids.index(k)] for k in back], defer=True)
    with db.connection() as conn:
        conn.execute(
            sql.SQL(
                "MERGE INTO {t} t USING (SELECT k, 'merged text about supersonic wings ' || k AS c "
                "FROM unnest(%s::text[]) k) s ON t.key = s.k "
                "WHEN MATCHED AND t.key LIKE '1%%' THEN DELETE "
                "WHEN MATCHED THEN UPDATE SET content = s.c "
                "WHEN NOT MATCHED THEN INSERT (key, content) VALUES (s.k, s.c)"
            ).format(t=lay.table),
            [[*alive[5:25], *deleted[100:110]]],
        )
        _assert_stats_exact(conn, lay)
        ref = Reference(conn, lay)
        assert 1250 < ref.n < 1350
        queries = rng.sample(cran["queries"], 30)
        for q in queries:
            _assert_same_ranking(_search(conn, lay, q), ref.rank(_lexemes(conn, q)), q)
        # other k1 / b / k reach the statement too
        for q in queries[:5]:
            _assert_same_ranking(
                _search(conn, lay, q, k=25, k1=2.0, b=0.3), ref.rank(_lexemes(conn, q), k=25, k1=2.0, b=0.3), q
            )


def test_filtered_search_ranks_by_collection_statistics(db, cran):
    """An extra WHERE narrows the candidates; idf and avgdl stay the collection's."""
    col = _collection(db, "filtered")
    ids, texts = cran["doc_ids"], cran["doc_texts"]
    col.add(ids[:700], texts[:700], defer=True, tenant="a")
    col.add(ids[700:], texts[700:], defer=True, tenant="b")
    where = statements.spec_filter(sql.Placeholder("filter"))
    with db.connection() as conn:
        ref = Reference(conn, col.layout)
        only_b = Reference(conn, col.layout, where="tenant = 'b'")
        for q in cran["queries"][:10]:
            lex = _lexemes(conn, q)
            got = _search(conn, col.layout, q, stmt={"where": where}, filter=psycopg.types.json.Jsonb({"tenant": "b"}))
            _assert_same_ranking(got, ref.rank(lex, among=only_b), q)
            got = _search(conn, col.layout, q, stmt={"where": where}, filter=None)
            _assert_same_ranking(got, ref.rank(lex), q)


def test_truncate_backfill_and_drop(db, cran):
    ids, texts = cran["doc_ids"], cran["doc_texts"]
    col = db.create_collection("later", model="bm25-test", dims=4)
    table = col.layout.table_name
    with db.connection() as conn:
        for stmt in bm25.drop_statements(table):  # as a 0.1.0 collection had none
            conn.execute(stmt)
    col.add(ids[:300], texts[:300], defer=True)
    with db.connection() as conn:
        with conn.transaction():  # installed on a table that already has rows
            for stmt in bm25.create_statements(table) + bm25.backfill_statements(table):
                conn.execute(stmt)
        _assert_stats_exact(conn, col.layout)
        conn.execute(sql.SQL("TRUNCATE {}").format(col.layout.table))
        _assert_stats_exact(conn, col.layout)
        assert _search(conn, col.layout, "boundary layer") == []
    col.add(ids[300:400], texts[300:400], defer=True)
    with db.connection() as conn:
        _assert_stats_exact(conn, col.layout)
        # backfill doubles as a repair: damage the counters, rebuild, exact again
        names = bm25.Names(table)
        conn.execute(sql.SQL("DELETE FROM {}").format(names.ident(names.df)))
        assert conn.execute(bm25.verify_statement(table)).fetchall() != []
        with conn.transaction():
            for stmt in bm25.backfill_statements(table):
                conn.execute(stmt)
        _assert_stats_exact(conn, col.layout)
        with conn.transaction():
            for stmt in bm25.compact_statements(table):
                conn.execute(stmt)
        _assert_stats_exact(conn, col.layout)
        for stmt in bm25.drop_statements(table):
            conn.execute(stmt)
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE %s UNION ALL "
            "SELECT count(*) FROM pg_proc WHERE proname LIKE %s UNION ALL "
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s",
            [table + "_bm25%"] * 3,
        ).fetchall()
        assert left == [(0,), (0,), (0,)]
    col.add(["x"], ["still writable without the triggers"], defer=True)
    db.drop_collection("later")
    with db.connection() as conn:
        for stmt in bm25.drop_statements(table):  # safe when the table is gone
            conn.execute(stmt)


def test_statement_works_inside_a_function(db, cran):
    """The other placeholders style: a plpgsql function built from the same statement."""
    col = _collection(db, "fn")
    col.add(cran["doc_ids"][:400], cran["doc_texts"][:400], defer=True)
    table = col.layout.table_name
    body = bm25.search_statement(
        table, "english", params={"text": sql.SQL("$1"), "k": sql.SQL("$2"), "k1": sql.SQL("$3"), "b": sql.SQL("$4")}
    )
    with db.connection() as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION semsearch.bm25_fn(text, int, float8 DEFAULT 1.2, float8 DEFAULT 0.75) "
                "RETURNS TABLE (key text, content text, score float8, metadata jsonb) LANGUAGE plpgsql "
                "AS $f$ BEGIN RETURN QUERY {}; END $f$"
            ).format(body)
        )
        ref = Reference(conn, col.layout)
        for q in cran["queries"][:8]:  # more than 5 calls: plpgsql may switch to a generic plan
            rows = conn.execute("SELECT key, score FROM semsearch.bm25_fn(%s, 10)", [q]).fetchall()
            _assert_same_ranking([(r[0], r[1]) for r in rows], ref.rank(_lexemes(conn, q)), q)
    with pytest.raises(ValueError, match="expected params among"):
        bm25.search_statement(table, params={"query": sql.SQL("$1")})


def test_long_texts_and_tsvector_limits(db):
    """tf is capped at 255 positions and positions clamp at 16383; the stored stats follow the tsvector."""
    col = _collection(db, "long")
    text = "flutter " * 300 + "wing " * 20000 + "panel flutter panel"
    col.add(["long", "short"], [text, "panel flutter wing"], defer=True)
    with db.connection() as conn:
        _assert_stats_exact(conn, col.layout)
        names = bm25.Names(col.layout.table_name)
        got = dict(
            conn.execute(
                sql.SQL("SELECT lexeme, tf FROM {} p JOIN {} c ON c.id = p.id WHERE c.key = 'long'").format(
                    names.ident(names.postings), col.layout.table
                )
            ).fetchall()
        )
        assert got == {"flutter": 255, "wing": 255, "panel": 1}  # both panels sit at position 16383
        # a prefix of MAX_TSV_CHARS always fits in a tsvector, the full text not
        worst = " ".join(chr(0x20000 + i % 42000) + chr(0x20000 + i // 42000) for i in range(100_000))
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            conn.execute("SELECT to_tsvector('english', %s::text)", [worst])
        conn.rollback()
        fits = conn.execute(
            sql.SQL("SELECT length({}) FROM (SELECT %s::text AS content) t").format(bm25.tsv_expression()), [worst]
        ).fetchone()
        assert fits is not None and fits[0] > 60_000


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_writer_does_not_wait_on_counters(db_url, db, cran):
    """While one transaction holds new counts of 'flow' uncommitted, another adds 'flow' without waiting."""
    col = _collection(db, "hot")
    table = col.layout.table
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        a.execute(sql.SQL("INSERT INTO {} (key, content) VALUES ('a', 'supersonic flow over a wing')").format(table))
        b.execute("SET lock_timeout = '2s'")
        b.execute(sql.SQL("INSERT INTO {} (key, content) VALUES ('b', 'laminar flow on a wing')").format(table))
        b.execute(sql.SQL("DELETE FROM {} WHERE key = 'b'").format(table))
        b.execute(sql.SQL("INSERT INTO {} (key, content) VALUES ('c', 'flow')").format(table))
        b.commit()
        a.commit()
    with db.connection() as conn:
        _assert_stats_exact(conn, col.layout)
        names = bm25.Names(col.layout.table_name)
        slots = conn.execute(
            sql.SQL("SELECT array_agg(slot ORDER BY slot) FROM {} WHERE lexeme = 'flow'").format(names.ident(names.df))
        ).fetchone()
        assert slots == ([0, 1],)  # each writer counted in its own slot


@pytest.mark.parametrize("slots", [1, 8])
def test_concurrent_writers_keep_statistics_exact(db_url, db, cran, slots):
    """Two connections upsert, rewrite, delete and COPY overlapping keys at once; stats == recount."""
    col = _collection(db, "race", slots=slots)
    table = col.layout.table
    texts = cran["doc_texts"]
    pool = [f"k{i}" for i in range(60)]
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        fresh = itertools.count()
        # deadlocks are expected (and retried): found after 50 ms rather than the default second
        with psycopg.connect(db_url, options="-c deadlock_timeout=50ms") as conn:
            for _ in range(40):
                while True:
                    try:
                        with conn.transaction():
                            for _ in range(rng.randint(1, 3)):
                                op = rng.choice(["upsert", "rewrite", "delete", "copy"])
                                keys = sorted(rng.sample(pool, 6))
                                if op == "upsert":
                                    conn.execute(
                                        sql.SQL(
                                            "INSERT INTO {} AS t (key, content) SELECT * FROM unnest(%s::text[], "
                                            "%s::text[]) ON CONFLICT (key) DO UPDATE SET content = excluded.content"
                                        ).format(table),
                                        [keys, [rng.choice(texts) for _ in keys]],
                                    )
                                elif op == "rewrite":
                                    conn.execute(
                                        sql.SQL(
                                            "UPDATE {} SET content = content || ' ' || %s WHERE key = ANY(%s)"
                                        ).format(table),
                                        [rng.choice(texts)[:200], keys],
                                    )
                                elif op == "delete":
                                    conn.execute(sql.SQL("DELETE FROM {} WHERE key = ANY(%s)").format(table), [keys])
                                else:
                                    with conn.cursor().copy(
                                        sql.SQL("COPY {} (key, content) FROM STDIN").format(table)
                                    ) as cp:
                                        for _ in range(5):
                                            cp.write_row((f"s{seed}-{next(fresh)}", rng.choice(texts)))
                                time.sleep(rng.random() * 0.005)
                        break
                    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                        pass  # the two writers deadlocked: the transaction is retried, as an app would
                    except BaseException as exc:
                        errors.append(exc)
                        return

    threads = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with db.connection() as conn:
        _assert_stats_exact(conn, col.layout)
        used = conn.execute(
            sql.SQL("SELECT count(DISTINCT slot) FROM {}").format(
                bm25.Names(col.layout.table_name).ident(bm25.Names(col.layout.table_name).stats)
            )
        ).fetchone()
        assert used is not None and 1 <= used[0] <= slots
        ref = Reference(conn, col.layout)
        for q in cran["queries"][:5]:
            _assert_same_ranking(_search(conn, col.layout, q), ref.rank(_lexemes(conn, q)), q)


# --- relevance ----------------------------------------------------------------------------


def test_ndcg_on_cranfield_beats_ts_rank(db, cran):
    """All 225 Cranfield queries, english config: BM25 nDCG@10 around 0.4 and above ts_rank's."""
    col = _collection(db, "ndcg")
    col.add_many(_records(cran["doc_ids"], cran["doc_texts"]), bulk=True, defer=True)
    lay = col.layout
    ts_rank = sql.SQL(
        "SELECT key FROM {t}, semsearch.any_words('english'::regconfig, %s::text) q "
        "WHERE tsv @@ q ORDER BY ts_rank(tsv, q, 1) DESC, id LIMIT 10"
    ).format(t=lay.table)
    got: dict[str, list[float]] = {"bm25": [], "ts_rank": []}
    with db.connection() as conn:
        for n, q in enumerate(cran["queries"], start=1):
            gains = {d: g for d, g in cran["qrels"].get(n, {}).items()}
            if not gains:
                continue
            got["bm25"].append(ndcg([k for k, _ in _search(conn, lay, q)], gains))
            got["ts_rank"].append(ndcg([r[0] for r in conn.execute(ts_rank, [q])], gains))
    mean = {k: sum(v) / len(v) for k, v in got.items()}
    assert len(got["bm25"]) == 225
    assert 0.35 < mean["bm25"] < 0.5, mean
    assert mean["bm25"] > mean["ts_rank"] + 0.03, mean


def _key(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """The postings key's bytes and definition (by its constraint: still the primary key)."""
    names = bm25.Names(table)
    row = conn.execute(
        "SELECT pg_relation_size(c.conindid), pg_get_indexdef(c.conindid) FROM pg_constraint c "
        "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
        [f"semsearch.{names.postings}"],
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize("isolated", [False, True])
def test_a_bulk_load_leaves_the_postings_key_packed(db, cran, isolated):
    """add_many's batches split the key's pages half full; the bulk load rebuilds it in one pass."""
    ids, texts = cran["doc_ids"], cran["doc_texts"]
    col = db.create_collection("packed", model="bm25-test", dims=4)
    if isolated:
        col = db.isolate_tenants("packed")  # the per-tenant shape: the key also covers the tenant
    table = col.layout.table_name
    with db.connection() as conn:
        before = _key(conn, table)[1]
    records = [{**r, "tenant": "t1" if isolated else None} for r in _records(ids, texts)]
    col.add_many(records, batch_size=50, defer=True, autotune=False)
    with db.connection() as conn:
        loaded, definition = _key(conn, table)
        assert definition == before
        conn.execute(sql.SQL("REINDEX INDEX {}").format(sql.Identifier("semsearch", table + "_bm25p_pkey")))
        assert loaded == _key(conn, table)[0]  # as packed as a rebuild: without it ~27% larger
        _assert_stats_exact(conn, col.layout)
    col.delete(ids[:100])  # the triggers still find postings by the key
    col.add(ids[:50], texts[:50], defer=True, tenant="t1" if isolated else None)
    with db.connection() as conn:
        _assert_stats_exact(conn, col.layout)
    got = col.search("boundary layer transition", k=5, mode="text", tenant="t1" if isolated else None)
    assert len(got.keys) == 5
