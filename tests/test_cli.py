"""The `semsearch` command, run through click's CliRunner against a fresh database."""

from __future__ import annotations

import json

import numpy as np
import psycopg

from semsearch import migrate
from semsearch.cli import main

# 4-dim toy vectors: each key points along its own axis, so a query vector's
# nearest key is known without any model
TOY = {"north": [1, 0, 0, 0], "east": [0, 1, 0, 0], "south": [0, 0, 1, 0], "west": [0, 0, 0.1, 1]}


def test_jsonl_with_embeddings_then_vector_search(run, tmp_path):
    run("create", "compass", "--model", "toy", "--dims", 4, "--compression", "none")
    lines = [
        {
            "key": k,
            "content": f"the {k} wind",
            "embedding": v,
            "metadata": {"axis": i},
            "lang": "en",
        }
        for i, (k, v) in enumerate(TOY.items())
    ]
    src = tmp_path / "compass.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    got = run("ingest", "compass", src)
    assert "4 inserted, 0 updated, 0 unchanged; 0 embedded, 0 reused" in got.stdout

    q = tmp_path / "q.json"
    q.write_text(json.dumps([0, 0, 0.1, 2]))
    hits = [json.loads(x) for x in run("search", "compass", "--vector-file", q, "--json").stdout.splitlines()]
    assert [h["key"] for h in hits][:2] == ["west", "south"]
    assert hits[0]["rank"] == 1 and hits[0]["metadata"] == {"axis": 3, "lang": "en"}

    npy = tmp_path / "q.npy"
    np.save(npy, np.array([[0, 3.0, 0, 0]]))  # (1, d) is one vector too
    table = run("search", "compass", "--vector-file", npy, "-k", 2).stdout.splitlines()
    assert table[0].split() == ["rank", "score", "key", "content"]
    assert table[1].split() == ["1", "1.0000", "east", "the", "east", "wind"]
    assert len(table) == 3

    where = run("search", "compass", "--vector-file", npy, "--where", '{"axis": 0}', "-k", 3)
    assert [line.split()[2] for line in where.stdout.splitlines()[1:]] == ["north"]
    assert "only 1 of 3 requested rows exist" in where.stderr


def test_csv_and_text_with_the_local_model(run, tmp_path):
    run("create", "notes", "--model", "local", "--dims", 256, "--compression", "halfvec")
    csv_file = tmp_path / "pets.csv"
    csv_file.write_text(
        "id,title,year\n"
        "c1,a kitten purring on the sofa,1995\n"
        'c2,"stock markets fall as interest rates rise",2001\n'
        "c3,how to bake sourdough bread at home,1995\n"
    )
    got = run("ingest", "notes", csv_file, "--key-field", "id", "--text-field", "title", "--batch-size", 2)
    assert "3 inserted" in got.stdout and "3 embedded" in got.stdout

    text = tmp_path / "handbook.txt"
    text.write_text("Rotate the server logs nightly.\nKeep a week of them.\n\n\n  Back up the database daily.\n")
    run("ingest", "notes", text)

    cat = [json.loads(x) for x in run("search", "notes", "cute cat", "--json", "-k", 1).stdout.splitlines()]
    assert cat[0]["key"] == "c1" and cat[0]["metadata"] == {"year": 1995}  # CSV cells are typed
    backup = json.loads(run("search", "notes", "database backups", "--json").stdout.splitlines()[0])
    assert backup["key"] == f"{text}:2"
    assert backup["content"] == "Back up the database daily."
    assert backup["metadata"] == {"file": str(text), "line": 5}
    filtered = run("search", "notes", "food", "--where", '{"year": 1995}', "--json").stdout.splitlines()
    assert sorted(json.loads(x)["key"] for x in filtered) == ["c1", "c3"]

    again = run("ingest", "notes", csv_file, text, "--key-field", "id", "--text-field", "title")
    assert "5 rows from 2 file(s)" in again.stdout
    assert "0 inserted, 0 updated, 5 unchanged; 0 embedded, 5 reused" in again.stdout


def test_list_and_drop(run):
    run("create", "alpha", "--model", "toy", "--dims", 8)
    run("create", "beta", "--model", "local")
    table = run("list").stdout.splitlines()
    assert table[0].split() == ["name", "model", "dims", "compression", "rows"]
    assert table[1].split() == ["alpha", "toy", "8", "halfvec", "0"]
    assert table[2].split() == ["beta", "wordllama-l2-supercat", "256", "halfvec", "0"]
    rows = [json.loads(x) for x in run("list", "--json").stdout.splitlines()]
    assert [(r["name"], r["rows"], r["storage"]) for r in rows] == [
        ("alpha", 0, "vector"),
        ("beta", 0, "vector"),
    ]

    kept = run("drop", "alpha", input="n\n", ok=False)
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert "dropped alpha (0 rows)" in run("drop", "alpha", input="y\n").stdout
    run("drop", "beta", "--yes")
    assert run("list", "--json").stdout == ""


def test_unknown_collection_is_a_one_line_error(run):
    got = run("search", "nope", "anything", ok=False)
    assert got.exit_code == 1
    assert got.output == "Error: expected an existing collection, got unknown 'nope'\n"


def test_malformed_jsonl_names_file_and_line(run, tmp_path):
    run("create", "compass", "--model", "toy", "--dims", 4)
    bad = tmp_path / "bad.jsonl"
    rows = [{"key": k, "content": k, "embedding": v} for k, v in TOY.items()]
    bad.write_text(f"{json.dumps(rows[0])}\n\n{json.dumps(rows[1])[:-5]}\n")
    got = run("ingest", "compass", bad, ok=False)
    assert got.exit_code == 1
    assert f"Error: {bad}:3: expected JSON, got" in got.output

    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"key": "x", "content": "x", "embedding": [1, 2]}) + "\n")
    assert f"{short}:1: expected an embedding of 4 finite numbers" in run("ingest", "compass", short, ok=False).output
    dup = tmp_path / "dup.jsonl"
    dup.write_text("\n".join(json.dumps(r) for r in [rows[0], rows[1], rows[0]]))
    assert (
        f"{dup}:3: expected unique keys, got 'north' again (first: {dup}:1)"
        in run("ingest", "compass", dup, ok=False).output
    )


def test_malformed_csv_names_file_and_line(run, tmp_path):
    run("create", "compass", "--model", "toy", "--dims", 4)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('key,content,embedding\nn,north,"[1, 0, 0, 0]"\ne,east,"[0, 1, 0, 0]",extra\n')
    assert (
        f"Error: {ragged}:3: expected 3 cells, as many as the header"
        in run("ingest", "compass", ragged, ok=False).output
    )
    unterminated = tmp_path / "open.csv"
    unterminated.write_text('key,content\nn,"north\n')
    assert (
        f"Error: {unterminated}:2: expected UTF-8 CSV, got unexpected end of data"
        in run("ingest", "compass", unterminated, ok=False).output
    )


def test_name_injection_is_refused(run):
    got = run("create", "x; drop table y", "--model", "local", ok=False)
    assert got.exit_code == 1
    assert "expected a collection name of lowercase letters" in got.output
    assert "'x; drop table y'" in got.output
    assert run("list", "--json").stdout == ""


def test_db_current_downgrade_upgrade(run):
    assert run("db", "current").stdout == f"{migrate.head()} (head)\n"
    run("db", "downgrade", input="n\n", ok=False)
    assert run("db", "current").stdout.startswith(migrate.head())
    run("db", "downgrade", "--yes")
    assert "none (head is" in run("db", "current").stdout
    assert "expected semsearch schema" in run("list", ok=False).output
    run("db", "upgrade")
    assert run("db", "current").stdout == f"{migrate.head()} (head)\n"


def test_every_command_has_an_example_in_its_help(run):
    def paths(group, prefix):
        yield prefix
        for name, command in getattr(group, "commands", {}).items():
            yield from paths(command, [*prefix, name])

    found = list(paths(main, []))
    assert len(found) == 33  # main, db and its 3, create, ingest, search, explain, grant, eval, tune, backfill,
    # migrate-model, list, drop, demo, alter, info, rebuild-index, doctor, delete, server and its 2, sync-table,
    # unsync-table, synced-tables, distribute, isolate-tenants, get, count, more-like
    for path in found:
        assert "Example:\n    semsearch" in run(*path, "--help").stdout, path


def test_demo_runs_offline_and_reports_agreement(run):
    got = run("demo", "--rows", 300).stdout
    assert "corpus: 300 docstrings" in got
    assert "ingested 300 rows into 'stdlib_docs'" in got
    assert got.count("two-stage vs exact overlap@10: ") == 6
    assert "summary: 300 rows" in got
    rows = [json.loads(x) for x in run("list", "--json").stdout.splitlines()]
    assert [(r["name"], r["rows"]) for r in rows] == [("stdlib_docs", 300)]


def test_explain_prints_the_statement_and_its_plan(run, tmp_path):
    run("create", "compass", "--model", "toy", "--dims", 4, "--compression", "bit")
    src = tmp_path / "compass.jsonl"
    src.write_text(
        "\n".join(json.dumps({"key": k, "content": f"the {k} wind", "embedding": v}) for k, v in TOY.items())
    )
    run("ingest", "compass", src)
    q = tmp_path / "q.json"
    q.write_text(json.dumps([0, 0, 0.1, 2]))
    out = run("explain", "compass", "--vector-file", q, "-k", 2).stdout
    assert out.startswith("SET LOCAL hnsw.ef_search = 128;\nSELECT key, content")  # 64 x k=2 for 4 bits
    assert "binary_quantize" in out and "Execution Time" in out and "Buffers" in out
    text = run("explain", "compass", "wind", "--mode", "text", "--where", '{"lang": "en"}').stdout
    assert "col_compass_bm25p" in text and "metadata @>" in text and "Execution Time" in text
    # explaining changed nothing
    assert "west" in run("search", "compass", "--vector-file", q, "-k", 1).stdout


def test_sync_table_backfill_and_unsync_table(run, db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.items (sku text PRIMARY KEY, body text, price int, store text)")
        conn.execute("INSERT INTO shop.items VALUES ('k1', 'a red kettle', 20, 'x'), ('k2', 'a green tent', 90, 'y')")
    out = run("sync-table", "shop.items", "--collection", "items", "--key", "sku", "--text", "body",
              "--metadata", "price", "--tenant", "store", "--model", "local", "--dims", "64").output  # fmt: skip
    assert "synced shop.items to items: 2 rows pending" in out
    assert "shop.items  items       sku  body  price     store" in run("synced-tables").output
    assert "embedded 2 rows" in run("backfill", "items").output
    hits = json.loads(run("search", "items", "kettle", "-k", "1", "--json", "--tenant", "x").output.splitlines()[0])
    assert (hits["key"], hits["metadata"]) == ("k1", {"price": 20})
    bad = run("sync-table", "shop.items", "--collection", "items", "--key", "body", "--text", "body", ok=False)
    assert bad.exit_code == 1 and "expected key column 'body' unique on its own" in bad.output
    bad = run("sync-table", "shop.items", "--collection", "items", "--key", "sku", "--text", "body", "--passages",
              ok=False)  # fmt: skip
    assert bad.exit_code == 1 and "expected passages=None for existing collection 'items'" in bad.output
    assert (
        "unsynced shop.items from items and dropped it" in run("unsync-table", "shop.items", "--drop-collection").output
    )
    assert "no synced tables" in run("synced-tables").output
    # several --text columns: one text, "name: value" lines
    run("sync-table", "shop.items", "--collection", "items", "--key", "sku", "--text", "body", "--text", "store",
        "--model", "local", "--dims", "64")  # fmt: skip
    assert "shop.items  items       sku  body,store" in run("synced-tables").output
    got = json.loads(run("get", "items", "k2", "--json").output)
    assert got["content"] == "body: a green tent\nstore: y"
    # --passages: each row a document, split into passages by backfill
    run("unsync-table", "shop.items", "--drop-collection")
    out = run("sync-table", "shop.items", "--collection", "docs", "--key", "sku", "--text", "body", "--passages",
              "--model", "local", "--dims", "64").output  # fmt: skip
    assert "synced shop.items to docs: 2 documents queued" in out
    assert "2 documents of the synced table queued" in run("backfill", "docs", "--dry-run").output
    assert "wrote 2 queued documents of the synced table as passages" in run("backfill", "docs").output
    assert json.loads(run("get", "docs", "k2", "--json").output)["content"] == "a green tent"
