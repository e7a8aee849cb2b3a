"""Tenants apart in every table a reader can select from (``Database.isolate_tenants``), real LOGIN roles.

With the README's recipe a session that names tenant ``acme`` reads acme's rows, postings and
counters only, and its BM25 scores are those of a collection holding acme's rows alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import semsearch
from semsearch import bm25, errors

WORDS = [
    "wing",
    "flutter",
    "boundary",
    "layer",
    "shock",
    "wave",
    "nozzle",
    "laminar",
    "turbulent",
    "heat",
    "transfer",
    "cylinder",
    "plate",
]


def _texts(tenant: str, n: int, rng: np.random.Generator) -> list[str]:
    # each tenant has words of its own (its name, a secret) beside shared ones, in different proportions
    secret = {"acme": "zeppelin", "globex": "quasar"}[tenant]
    return [
        " ".join([*rng.choice(WORDS, size=int(rng.integers(3, 12))), tenant] + ([secret] * int(i % 3 == 0)))
        for i in range(n)
    ]


@pytest.fixture
def reader(db: semsearch.Database) -> Iterator[str]:
    name = f"ss_tenant_reader_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    with db.connection() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _load(col: semsearch.Collection, tenants: list[str], seed: int = 1) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    by_tenant = {t: _texts(t, 20, rng) for t in tenants}
    for t, texts in by_tenant.items():
        vectors = rng.normal(size=(len(texts), 16))
        col.add([f"{t}-{i}" for i in range(len(texts))], texts, embeddings=vectors, tenant=t)
    return by_tenant


def _session(db_url: str, role: str, tenant: str | None) -> psycopg.Connection:
    conn = psycopg.connect(make_conninfo(db_url, user=role), autocommit=True)
    if tenant is not None:
        conn.execute("SELECT set_config('app.tenant', %s, false)", [tenant])
    return conn


def test_a_reader_of_one_tenant_reads_no_other_tenants_data_from_any_table(db, db_url, reader):
    col = db.create_collection("t", dims=16, model="label", compression="none")
    _load(col, ["acme", "globex"])
    db.grant(reader, "t")
    db.isolate_tenants("t")
    names = bm25.Names("col_t")
    with _session(db_url, reader, "acme") as conn:
        assert conn.execute("SELECT count(*), min(tenant), max(tenant) FROM semsearch.col_t").fetchone() == (
            20,
            "acme",
            "acme",
        )
        for side in (names.postings, names.df, names.stats):
            got = conn.execute(
                sql.SQL("SELECT DISTINCT tenant FROM {}").format(sql.Identifier("semsearch", side))
            ).fetchall()
            assert got == [("acme",)], side
        lexemes = {r[0] for r in conn.execute(sql.SQL("SELECT lexeme FROM {}").format(names.ident(names.df)))}
        assert "zeppelin" in lexemes and "quasar" not in lexemes and "globex" not in lexemes
        keys = [r[0] for r in conn.execute("SELECT key FROM semsearch.text_search('t', 'quasar globex wing', 40)")]
        assert keys and all(k.startswith("acme-") for k in keys)
        hits = conn.execute("SELECT key FROM semsearch.search('t', %s::vector, 40)", ["[" + ",".join(["1"] * 16) + "]"])
        assert {k for (k,) in hits} == {f"acme-{i}" for i in range(20)}
    # a session that names no tenant sees nothing at all
    with _session(db_url, reader, None) as conn:
        for table in ("col_t", names.postings, names.df, names.stats):
            n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("semsearch", table))).fetchone()
            assert n == (0,), table


def test_bm25_statistics_are_per_tenant(db, db_url, reader):
    """A tenant's text scores equal those of a collection holding its rows alone, whoever asks."""
    shared = db.create_collection("t", dims=16, model="label", compression="none")
    alone = db.create_collection("t_acme", dims=16, model="label", compression="none")
    by_tenant = _load(shared, ["acme", "globex"])
    _load(alone, ["acme", "globex"])
    alone.delete([f"globex-{i}" for i in range(20)])
    db.grant(reader, "t")
    shared = db.isolate_tenants("t")
    query = "wing flutter zeppelin boundary"
    expected = [(h.key, round(h.score, 9)) for h in alone.search(query, k=10, mode="text").hits]
    owner = [(h.key, round(h.score, 9)) for h in shared.search(query, k=10, mode="text", tenant="acme").hits]
    assert owner == expected
    with _session(db_url, reader, "acme") as conn:
        got = [
            (k, round(s, 9))
            for k, s in conn.execute("SELECT key, score FROM semsearch.text_search('t', %s, 10)", [query])
        ]
    assert got == expected
    # the owner's search across tenants ranks by the sums: another idf than either tenant's alone
    both = shared.search("zeppelin", k=40, mode="text").hits
    assert {h.key.split("-")[0] for h in both} == {"acme"} and len(both) == sum(
        "zeppelin" in t for t in by_tenant["acme"]
    )
    assert both[0].score != pytest.approx(alone.search("zeppelin", k=1, mode="text").hits[0].score)


def test_statistics_stay_exact_per_tenant_through_writes_and_back(db):
    col = db.create_collection("t", dims=16, model="label", compression="none")
    _load(col, ["acme", "globex"])
    col = db.isolate_tenants("t")

    def differences() -> list[tuple]:
        with db.connection() as conn:
            return conn.execute(bm25.verify_statement("col_t", tenants=col.info.tenant_setting is not None)).fetchall()

    rng = np.random.default_rng(7)
    col.add(
        ["acme-0", "new"], ["laminar zeppelin", "nozzle heat"], embeddings=rng.normal(size=(2, 16)), tenant="globex"
    )
    col.delete(["acme-1", "globex-2"])
    with db.connection() as conn:  # raw SQL: a row moves tenant without a text change; a row without tenant
        conn.execute("UPDATE semsearch.col_t SET tenant = 'acme' WHERE key = 'globex-3'")
        conn.execute("INSERT INTO semsearch.col_t (key, content) VALUES ('orphan', 'wing orphan text')")
    assert differences() == []
    col = db.isolate_tenants("t", setting=None)
    assert col.info.tenant_setting is None
    assert differences() == []
    with db.connection() as conn:
        assert conn.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'semsearch.col_t'::regclass"
        ).fetchone() == (False,)
    assert col.search("zeppelin laminar", k=3, mode="text").keys[0] == "acme-0"


def test_isolation_keeps_the_users_own_policies_and_grants(db, db_url, reader):
    col = db.create_collection("t", dims=16, model="label", compression="none")
    _load(col, ["acme", "globex"])
    db.grant(reader, "t")
    with db.connection() as conn:
        conn.execute("ALTER TABLE semsearch.col_t ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY only_short ON semsearch.col_t USING (length(key) < 7)")
    db.isolate_tenants("t")
    db.isolate_tenants("t", setting=None)
    with _session(db_url, reader, None) as conn:
        # the user's policy stays (and with it row-level security); the reader's grants on the side tables too
        assert conn.execute("SELECT count(*) FROM semsearch.col_t").fetchone() == (10,)  # acme-0 .. acme-9
        assert conn.execute("SELECT count(*) > 0 FROM semsearch.col_t_bm25p").fetchone() == (True,)


def test_bad_settings_and_distributed_collections_are_refused(db):
    db.create_collection("t", dims=16, model="label", compression="none")
    for bad in ("tenant", "App.Tenant", "a.b; DROP TABLE x", 3):
        with pytest.raises(errors.ConfigurationError, match=r"expected a custom setting like 'app\.tenant'"):
            db.isolate_tenants("t", setting=bad)
    with pytest.raises(errors.CollectionNotFoundError):
        db.isolate_tenants("nope")


def test_the_readmes_tenant_recipe_runs(db_url, reader, monkeypatch, capsys):
    monkeypatch.setenv("SEMSEARCH_DATABASE_URL", db_url)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Tenants") : readme.index("## Existing tables")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    ns: dict = {}
    try:
        exec(compile(blocks[0], "README.md", "exec", dont_inherit=True), ns)  # the README example, as a user runs it
        exec(compile(blocks[1].replace('"web_reader"', repr(reader)), "README.md", "exec", dont_inherit=True), ns)
    finally:
        if "db" in ns:
            ns["db"].close()
    assert capsys.readouterr().out == "['t1', 't2']\n"
    with _session(db_url, reader, "acme") as conn:
        got = conn.execute("SELECT key FROM semsearch.text_search('tickets_example', 'printer refund password', 10)")
        assert sorted(r[0] for r in got) == ["t1", "t2"]
        assert conn.execute("SELECT count(*) FROM semsearch.col_tickets_example").fetchone() == (2,)


def test_a_model_switch_keeps_the_tenants_apart(db, db_url, reader):
    """migrate-model builds a new table: it is isolated in the switch's own transaction."""
    from semsearch import model_switch

    col = db.create_collection("t", model="local", dims=128, compression="none")
    rng = np.random.default_rng(3)
    for t in ("acme", "globex"):
        col.add([f"{t}-{i}" for i in range(10)], _texts(t, 10, rng), tenant=t)
    db.isolate_tenants("t")
    model_switch.migrate_model(db, "t", dims=64, sample=5)
    col = db.collection("t")
    assert (col.info.dims, col.info.tenant_setting) == (64, "app.tenant")
    db.grant(reader, "t")
    with _session(db_url, reader, "globex") as conn:
        table = bm25.Names(col.info.table_name)
        assert conn.execute(
            sql.SQL("SELECT DISTINCT tenant FROM {}").format(sql.Identifier("semsearch", col.info.table_name))
        ).fetchall() == [("globex",)]
        for side in (table.postings, table.df, table.stats):
            got = conn.execute(sql.SQL("SELECT DISTINCT tenant FROM {}").format(table.ident(side))).fetchall()
            assert got == [("globex",)], side
