"""What the API does, the command line does: tenants, typed CSV, --where, --embedder, alter,
rebuild-index, delete, server status|stop. Through click's CliRunner against a fresh database."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import semsearch
import semsearch.aio
from semsearch.cli import main
from semsearch.config import Settings
from semsearch.embedded import embedded_settings, embedded_status, embedded_url, stop_embedded

# a deterministic embedder a user could write: hashed words, 16 dims, unit norm
EMBEDDER_MODULE = """
import zlib
import numpy as np

class Hashed:
    model = "hashed-words"
    def __init__(self, dims=16):
        self.dims = dims
    def embed(self, texts):
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dims] += 1.0
            out[i, 0] += 0.01
        return out / np.linalg.norm(out, axis=1, keepdims=True)

def make():
    return Hashed()

def make_8():
    return Hashed(8)

def not_an_embedder():
    return "hello"

def broken():
    raise RuntimeError("no credentials")

NOT_CALLABLE = 3
"""


@pytest.fixture
def embedders(tmp_path, monkeypatch):
    (tmp_path / "my_embedders.py").write_text(EMBEDDER_MODULE)
    (tmp_path / "raises_on_import.py").write_text("raise ImportError('needs torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("my_embedders", "raises_on_import"):
        sys.modules.pop(name, None)


def _hits(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---- tenants at ingest --------------------------------------------------------------------


def test_ingest_reads_the_tenant_field_of_a_collection_with_tenants(run, db, tmp_path):
    run("create", "t", "--model", "toy", "--dims", 4, "--compression", "none", "--tenant-required")
    rows = [
        {"key": f"k{i}", "content": f"row {i}", "embedding": [1, i, 0, 0], "tenant": ["acme", "zeta"][i % 2]}
        for i in range(6)
    ]
    run("ingest", "t", _write_jsonl(tmp_path / "t.jsonl", rows))
    (tmp_path / "q.json").write_text("[1, 0, 0, 0]")
    acme = _hits(run("search", "t", "--vector-file", tmp_path / "q.json", "--tenant", "acme", "--json"))
    assert sorted(h["key"] for h in acme) == ["k0", "k2", "k4"]
    assert all("tenant" not in h["metadata"] for h in acme)

    # CSV, and a tenant column under another name
    (tmp_path / "t.csv").write_text('key,content,embedding,customer\nc1,csv row,"[0,1,0,0]",zeta\n')
    run("ingest", "t", tmp_path / "t.csv", "--tenant-field", "customer")
    zeta = _hits(run("search", "t", "--vector-file", tmp_path / "q.json", "--tenant", "zeta", "--json"))
    assert sorted(h["key"] for h in zeta) == ["c1", "k1", "k3", "k5"]

    # a row without a tenant in a tenant-required collection: refused, nothing written
    row = {"key": "x", "content": "x", "embedding": [1, 0, 0, 0]}
    bad = run("ingest", "t", _write_jsonl(tmp_path / "no.jsonl", [row]), ok=False)
    assert "tenant" in bad.output and db.collection("t").count() == 7
    empty = run("ingest", "t", _write_jsonl(tmp_path / "e.jsonl", [{**row, "tenant": 5}]), ok=False)
    assert "e.jsonl:1: expected the tenant to be a non-empty string or null, got 5" in empty.output


def test_a_tenant_field_becomes_the_tenant_of_a_new_collection_unless_told_otherwise(run, db, tmp_path):
    """As "key" and "content" do, a "tenant" field means the tenant, whatever the collection holds so far."""
    run("create", "plain", "--model", "toy", "--dims", 4, "--compression", "none")
    src = _write_jsonl(tmp_path / "p.jsonl", [{"key": "a", "content": "a", "embedding": [1, 0, 0, 0], "tenant": "x"}])
    run("ingest", "plain", src)
    col = db.collection("plain")
    assert col.search(vector=[1, 0, 0, 0], k=1, tenant="x")[0].metadata == {}
    assert col.get(["a"])[0].tenant == "x"
    # CSV: a tenant column too (an empty cell: no tenant)
    (tmp_path / "p.csv").write_text('key,content,embedding,tenant\nc1,one,"[0,1,0,0]",y\nc2,two,"[0,0,1,0]",\n')
    run("ingest", "plain", tmp_path / "p.csv")
    assert [(r.key, r.tenant, r.metadata) for r in col.get(["c1", "c2"])] == [("c1", "y", {}), ("c2", None, {})]
    # --no-tenant-field: the field is metadata like any other
    run("create", "meta", "--model", "toy", "--dims", 4, "--compression", "none")
    run("ingest", "meta", src, "--no-tenant-field")
    assert [(r.tenant, r.metadata) for r in db.collection("meta").get(["a"])] == [(None, {"tenant": "x"})]
    both = run("ingest", "meta", src, "--no-tenant-field", "--tenant-field", "customer", ok=False)
    assert "expected --tenant-field or --no-tenant-field, not both" in both.output
    # a collection that requires tenants cannot take its rows without one
    run("create", "req", "--model", "toy", "--dims", 4, "--compression", "none", "--tenant-required")
    refused = run("ingest", "req", src, "--no-tenant-field", ok=False)
    assert "expected a tenant field for collection 'req' (it requires tenants), got --no-tenant-field" in refused.output
    assert db.collection("req").count() == 0


def test_a_search_by_tenant_of_a_collection_without_tenants_is_an_error_not_nothing(run, db, db_url, tmp_path):
    """No row has a tenant: --tenant acme cannot match, and says so (CLI, Python, async), whatever the mode."""
    run("create", "plain", "--model", "local", "--dims", 64)
    rows = [{"key": "a", "content": "a red kettle"}, {"key": "b", "content": "a green tent"}]
    run("ingest", "plain", _write_jsonl(tmp_path / "p.jsonl", rows))
    message = "expected rows with tenants to search collection 'plain' with tenant='acme', got none with a tenant"
    for mode in ("vector", "text", "hybrid"):
        bad = run("search", "plain", "kettle", "--tenant", "acme", "--mode", mode, ok=False)
        assert bad.exit_code == 1 and message in bad.output
    col = db.collection("plain")
    with pytest.raises(semsearch.errors.InvalidInputError, match=message):
        col.search("kettle", tenant="acme")
    with pytest.raises(semsearch.errors.InvalidInputError, match=message):
        col.search("kettle", tenant="acme", offset=5, score_threshold=0.9)
    with pytest.raises(semsearch.errors.InvalidInputError, match=message):
        col.search_many(["kettle", "tent"], tenant="acme")

    async def search_async() -> None:
        async with await semsearch.aio.connect(db_url) as adb:
            acol = await adb.collection("plain")
            with pytest.raises(semsearch.errors.InvalidInputError, match=message):
                await acol.search("kettle", tenant="acme")
            with pytest.raises(semsearch.errors.InvalidInputError, match=message):
                await acol.search_many(["kettle"], tenant="acme", mode="text")

    asyncio.run(search_async())
    assert col.search("kettle", k=1).keys == ["a"]  # without tenant= it is a search like any other
    # once one row has a tenant, another tenant's search is simply empty
    col.add(["c"], ["a blue kettle"], tenant="zeta")
    assert col.search("kettle", tenant="acme").keys == [] and col.search("kettle", tenant="zeta").keys == ["c"]
    assert [r.keys for r in col.search_many(["kettle", "tent"], tenant="zeta")] == [["c"], ["c"]]
    assert run("search", "plain", "kettle", "--tenant", "acme").exit_code == 0


# ---- CSV typing ----------------------------------------------------------------------------

CSV = """key,content,embedding,year,price,ok,zip,note
a,first,"[1,0,0,0]",1995,9.5,true,007,hello
b,second,"[0,1,0,0]",2003,-1e2,FALSE,12345,
c,third,"[0,0,1,0]",2010,.5,yes,0,1,000
"""


def test_csv_metadata_is_typed_per_column_by_default(run, db, tmp_path):
    run("create", "c", "--model", "toy", "--dims", 4, "--compression", "none")
    (tmp_path / "c.csv").write_text(CSV.replace("0,1,000", '0,"1,000"'))
    run("ingest", "c", tmp_path / "c.csv")
    meta = {h.key: h.metadata for h in db.collection("c").search(vector=[1, 1, 1, 0], k=3)}
    # one type per column: "yes" keeps ok text, "007" keeps zip text, in every row
    assert meta["a"] == {"year": 1995, "price": 9.5, "ok": "true", "zip": "007", "note": "hello"}
    assert meta["b"] == {"year": 2003, "price": -100.0, "ok": "FALSE", "zip": "12345", "note": None}
    assert meta["c"] == {"year": 2010, "price": 0.5, "ok": "yes", "zip": "0", "note": "1,000"}
    # the symptom: a numeric filter from the command line finds the rows
    (tmp_path / "q.json").write_text("[1, 1, 1, 0]")
    recent = run("search", "c", "--vector-file", tmp_path / "q.json", "--where", '{"year": {"$gte": 2000}}', "--json")
    assert sorted(h["key"] for h in _hits(recent)) == ["b", "c"]
    nulls = run("search", "c", "--vector-file", tmp_path / "q.json", "--where", '{"note": null}', "--json")
    assert [h["key"] for h in _hits(nulls)] == ["b"]


def test_csv_types_forced_or_kept_as_text(run, db, tmp_path):
    run("create", "c", "--model", "toy", "--dims", 4, "--compression", "none")
    (tmp_path / "c.csv").write_text(CSV.replace("0,1,000", '0,"1,000"'))
    run("ingest", "c", tmp_path / "c.csv", "--metadata-types", "zip=str,year=float,note=json", ok=False)
    forced = run("ingest", "c", tmp_path / "c.csv", "--metadata-types", "zip=str, year=float", ok=True)
    assert "3 inserted" in forced.stdout
    meta = {h.key: h.metadata for h in db.collection("c").search(vector=[1, 1, 1, 0], k=3)}
    assert meta["a"]["zip"] == "007" and meta["b"]["zip"] == "12345" and meta["a"]["year"] == 1995.0
    assert isinstance(meta["a"]["year"], float)

    run("ingest", "c", tmp_path / "c.csv", "--no-infer-types")
    meta = {h.key: h.metadata for h in db.collection("c").search(vector=[1, 1, 1, 0], k=3)}
    assert meta["a"] == {"year": "1995", "price": "9.5", "ok": "true", "zip": "007", "note": "hello"}
    assert meta["b"]["note"] == ""

    (tmp_path / "bad.csv").write_text('key,content,embedding,year\na,x,"[1,0,0,0]",1995\nb,y,"[0,1,0,0]",soon\n')
    bad = run("ingest", "c", tmp_path / "bad.csv", "--metadata-types", "year=int", ok=False)
    assert "bad.csv:3: column 'year': expected an int in this column, got 'soon'" in bad.output
    missing = run("ingest", "c", tmp_path / "bad.csv", "--metadata-types", "yr=int", ok=False)
    assert "bad.csv:1: expected --metadata-types columns of the header" in missing.output
    wrong = run("ingest", "c", tmp_path / "bad.csv", "--metadata-types", "year=date", ok=False)
    assert "expected column=type with a type in str, int, float, bool, json, got 'year=date'" in wrong.output


# ---- --where -------------------------------------------------------------------------------


def test_search_and_explain_where_take_the_python_filter_language(run, tmp_path):
    run("create", "w", "--model", "toy", "--dims", 4, "--compression", "none")
    rows = [
        {
            "key": f"k{i}",
            "content": f"row {i}",
            "embedding": [1, i / 10, 0, 0],
            "year": 1990 + i,
            "lang": ["es", "en"][i % 2],
        }
        for i in range(10)
    ]
    run("ingest", "w", _write_jsonl(tmp_path / "w.jsonl", rows))
    (tmp_path / "q.json").write_text("[1, 0, 0, 0]")
    where = '{"$or": [{"year": {"$lt": 1992}}, {"$and": [{"lang": "en"}, {"$not": {"year": {"$lt": 1997}}}]}]}'
    got = _hits(run("search", "w", "--vector-file", tmp_path / "q.json", "--where", where, "--json"))
    assert sorted(h["key"] for h in got) == ["k0", "k1", "k7", "k9"]
    plan = run("explain", "w", "--vector-file", tmp_path / "q.json", "--where", where).stdout
    assert "jsonb_path_match" in plan
    for bad, message in [
        ('{"$or": []}', "non-empty list of non-empty objects (filters) for $or"),
        ("[1]", "--where: expected a JSON object"),
        ("{year", "--where: expected JSON"),
    ]:
        out = run("search", "w", "--vector-file", tmp_path / "q.json", "--where", bad, ok=False).output
        assert message in out and out.count("\n") == 1, out


# ---- --embedder ----------------------------------------------------------------------------


def test_embedder_everywhere_a_model_is_accepted(run, db, tmp_path, embedders):
    made = run("create", "e", "--embedder", "my_embedders:make", "--compression", "none")
    assert "created e: hashed-words, 16 dims" in made.stdout
    (tmp_path / "e.jsonl").write_text(
        "".join(
            json.dumps({"key": f"d{i}", "content": t}) + "\n"
            for i, t in enumerate(["red apple", "blue sky", "green tree", "red car"])
        )
    )
    emb = ("--embedder", "my_embedders:make")
    assert "4 embedded" in run("ingest", "e", tmp_path / "e.jsonl", *emb).stdout
    hits = _hits(run("search", "e", "red apple", "-k", 2, *emb, "--json"))
    assert hits[0]["key"] == "d0" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert "ORDER BY" in run("explain", "e", "red apple", *emb).stdout
    # without it, the collection's model is not a built-in one: say what to do
    plain = run("search", "e", "red apple", ok=False)
    assert "--embedder module:factory on the command line" in plain.output

    db.collection("e").add(keys=["late"], contents=["red apple pie"], defer=True)
    assert "embedded 1 rows" in run("backfill", "e", *emb).stdout
    assert json.loads(run("eval", "e", "--sample", 3, "-k", 2, *emb, "--json").stdout)["recall"] == 1.0
    (tmp_path / "qs.txt").write_text("red apple\nblue sky\n")
    tuned = run("tune", "e", "--queries", tmp_path / "qs.txt", "-k", 2, "--max-oversample", 2, *emb, "--json")
    assert json.loads(tuned.stdout)["reached"] is True

    # from a built-in model to one's own (the comparison searches the old one with its model)
    run("create", "m", "--model", "local", "--dims", 64, "--compression", "none")
    run("ingest", "m", tmp_path / "e.jsonl")
    migrated = run("migrate-model", "m", "--embedder", "my_embedders:make_8", "--sample", 3, "-k", 2, "--json")
    report = json.loads(migrated.stdout)
    assert report["switched"] is True
    assert (db.collection("m").info.model, db.collection("m").dims) == ("hashed-words", 8)
    assert db.collection("m").count() == 4


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("my_embedders", "expected an embedder as module:factory (e.g. mypkg.emb:make), got 'my_embedders'"),
        ("no_such_module_xyz:make", "expected an importable module for --embedder no_such_module_xyz:make, got"),
        ("raises_on_import:make", "needs torch"),
        ("my_embedders:nope", "expected my_embedders to define nope for --embedder my_embedders:nope, got no nope"),
        ("my_embedders:NOT_CALLABLE", "expected my_embedders:NOT_CALLABLE to be callable, got int"),
        (
            "my_embedders:broken",
            "expected my_embedders:broken() to return an embedder, got RuntimeError('no credentials')",
        ),
        ("my_embedders:not_an_embedder", "(model: str, dims: int, embed(texts)), got str"),
        ("my_embedders:make_8", "expected an embedder of 16 dims from my_embedders:make_8, got 8"),
    ],
)
def test_a_bad_embedder_is_one_clear_line(run, embedders, spec, message):
    run("create", "e", "--model", "label", "--dims", 16, "--compression", "none")
    for args in (("search", "e", "hello"), ("create", "e2", "--dims", 16), ("ingest", "e", __file__)):
        out = run(*args, "--embedder", spec, ok=False).output
        assert message in out and out.count("\n") == 1, out


def test_create_needs_a_model_or_an_embedder(run):
    assert "expected --model or --embedder" in run("create", "x", "--dims", 4, ok=False).output


# ---- alter, rebuild-index, delete ----------------------------------------------------------


def test_alter_and_rebuild_index(run, db, tmp_path):
    run("create", "a", "--model", "toy", "--dims", 64, "--compression", "halfvec")
    vecs = np.random.default_rng(4).normal(size=(50, 64)).round(4).tolist()
    rows = [{"key": f"k{i}", "content": f"r{i}", "embedding": vecs[i]} for i in range(50)]
    run("ingest", "a", _write_jsonl(tmp_path / "a.jsonl", rows))
    out = run("alter", "a", "--compression", "bit", "--m", 8, "--oversample", 3, "--no-autotune").stdout
    assert out == (
        "altered a: toy, 64 dims, vector storage, compression bit (pinned), hnsw m=8 ef_construction=64, "
        "oversample 3, autotune off\n"
    )
    info = db.collection("a").info
    assert (info.compression, info.hnsw_m, info.oversample, info.autotune) == ("bit", 8, 3.0, False)
    assert len(db.collection("a").search(vector=rows[3]["embedding"], k=5)) == 5
    assert "autotune on" in run("alter", "a", "--autotune", "--blocking").stdout
    assert "expected at least one change" in run("alter", "a", ok=False).output
    assert (
        "expected mrl dims between 1 and 64, got 9999"
        in run("alter", "a", "--compression", "mrl:9999", ok=False).output
    )

    assert run("rebuild-index", "a").stdout.startswith("rebuilt the hnsw index of a in ")
    assert run("rebuild-index", "a", "--blocking").stdout.startswith("rebuilt the hnsw index of a in ")
    assert db.collection("a").search(vector=rows[3]["embedding"], k=1).keys == ["k3"]
    assert "expected an existing collection, got unknown 'nope'" in run("rebuild-index", "nope", ok=False).output


def test_delete_keys_and_keys_from_a_file(run, db, tmp_path):
    run("create", "d", "--model", "toy", "--dims", 4, "--compression", "none")
    rows = [{"key": f"k{i}", "content": f"r{i}", "embedding": [1, i, 0, 0]} for i in range(6)]
    run("ingest", "d", _write_jsonl(tmp_path / "d.jsonl", rows))
    assert run("delete", "d", "k0", "k1", "k1", "nope").stdout == "deleted 2 of 3 key(s) from d\n"
    (tmp_path / "keys.txt").write_text("k2\n\nk3\n")
    assert run("delete", "d", "k4", "--from-file", tmp_path / "keys.txt").stdout == "deleted 3 of 3 key(s) from d\n"
    assert db.collection("d").search(vector=[1, 0, 0, 0], k=10).keys == ["k5"]
    assert "expected KEYs or --from-file" in run("delete", "d", ok=False).output


# ---- server status | stop ------------------------------------------------------------------


def test_server_status_and_stop_on_a_data_dir_of_its_own(monkeypatch):
    # not the test run's server: a second one, started and stopped here
    parent = Settings.from_env().data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)  # a fresh machine whose test server lives elsewhere has none yet
    data_dir = Path(tempfile.mkdtemp(prefix="ss-server-test-", dir=parent))
    os.chmod(data_dir, 0o755)  # run as root, postgres runs as its own user and must reach it
    try:
        url = embedded_url(data_dir)
        monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(data_dir))
        monkeypatch.delenv("SEMSEARCH_DATABASE_URL", raising=False)
        runner = CliRunner()
        status = runner.invoke(main, ["server", "status"])
        pid = embedded_status(data_dir).pid
        assert status.exit_code == 0, status.output
        tuned = "".join(f"{s.describe()}\n" for s in embedded_settings(data_dir))  # tests/test_embedded_server.py
        assert status.output == (
            f"embedded server: running\ndata dir: {data_dir}\nurl: {url}\npid: {pid}\n{tuned}"
        )  # fmt: skip
        assert tuned.count("(sized for this machine)") == 4
        with semsearch.connect() as db:  # a session open while it stops: disconnected, not waited for
            assert db.url == url
            stop = runner.invoke(main, ["server", "stop"])
        assert stop.exit_code == 0 and stop.output == f"stopped the embedded server (pid {pid}, data dir {data_dir})\n"
        status = runner.invoke(main, ["--url", "postgresql://u:secret@db.example/app", "server", "status"])
        assert status.exit_code == 3
        assert status.output == (
            f"embedded server: not running\ndata dir: {data_dir}\n"
            "commands use --url / SEMSEARCH_DATABASE_URL instead: user=u password=*** dbname=app host=db.example\n"
        )
        again = runner.invoke(main, ["server", "stop"])
        assert again.output == f"embedded server not running (data dir {data_dir})\n"
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
