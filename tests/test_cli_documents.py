"""Documents from the command line: create --passages, ingest a folder (and JSONL, and one text file), search."""

from __future__ import annotations

import json

TOPICS = {
    "kettle": "The kettle boils water for tea. Fill it to the line and press the switch until it clicks.",
    "router": "To reset the router hold the small button on its back for ten seconds until the lights blink.",
    "tent": "Pitch the tent on flat ground. Stake the corners first, then raise the poles and tighten the lines.",
    "bread": "Knead the dough for ten minutes, let it rise for an hour and bake the loaf at two hundred degrees.",
    "bike": "Pump the bicycle tyres to the pressure printed on their side and oil the chain every month.",
}


def _manual(*topics: str) -> str:
    """A document of several paragraphs, each long enough to be a passage of its own at 40 tokens."""
    return "\n\n".join(f"{TOPICS[t]} {TOPICS[t]}" for t in topics) + "\n"


def test_a_folder_of_documents_is_ingested_searched_and_edited(run, db, tmp_path):
    bad = run("create", "manuals", "--model", "local", "--dims", 64, "--max-tokens", 40, ok=False)
    assert "expected --passages with --max-tokens or --overlap" in bad.output
    out = run("create", "manuals", "--model", "local", "--dims", 64, "--passages", "--max-tokens", 40,
              "--overlap", 8).output  # fmt: skip
    assert "passages of 40 tokens, overlap 8" in out
    folder = tmp_path / "manuals"
    (folder / "sub").mkdir(parents=True)
    (folder / ".drafts").mkdir()
    (folder / "home.md").write_text(_manual("kettle", "router", "bread"))
    (folder / "sub" / "outdoors.txt").write_text(_manual("tent", "bike"))
    (folder / ".drafts" / "old.md").write_text("a hidden draft")  # left out, as hidden files are
    (folder / "empty.txt").write_text("\n")  # blank: left out
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")  # not a text file
    out = run("ingest", "manuals", folder).output
    assert "2 documents (" in out and "0 unchanged" in out
    passages = int(out.split("2 documents (")[1].split(" passages)")[0])
    col = db.collection("manuals")
    docs = {r.key: r.content for r in col.get(["home.md", "sub/outdoors.txt"])}
    assert docs == {"home.md": _manual("kettle", "router", "bread"), "sub/outdoors.txt": _manual("tent", "bike")}
    assert passages > 5 and col.count() == 2  # rows are passages; count() counts documents

    # the best documents, each with its best passage's place in it
    table = run("search", "manuals", "reset the router button", "--mode", "hybrid", "-k", 2).output
    assert table.splitlines()[0].split() == ["rank", "score", "key", "chars", "passages", "best", "passage"]
    assert table.splitlines()[1].split()[2] == "home.md" and "sub/outdoors.txt" in table
    text = run("search", "manuals", "router", "--mode", "text", "--json").stdout
    hits = [json.loads(line) for line in text.splitlines()]
    assert [h["key"] for h in hits] == ["home.md"]  # documents, not passages: each once
    best = hits[0]["passages"][0]
    assert docs["home.md"][best["start"] : best["end"]] == best["text"] and "router" in best["text"]
    assert "<b>router</b>" in hits[0]["snippet"]
    found = run("search", "manuals", "bicycle chain oil", "--passages", "-k", 3, "--json").stdout.splitlines()
    assert all(json.loads(p)["passage"] is not None for p in found) and len(found) == 3
    (tmp_path / "queries.txt").write_text("router\ntent poles\n")
    batch = run("search", "manuals", "--batch", tmp_path / "queries.txt", "--passages", "-k", 3, "--json").stdout
    rows = [json.loads(line) for line in batch.splitlines()]
    assert [r["query"] for r in rows] == [1, 1, 1, 2, 2, 2]  # each query's best passages, not documents
    assert all(r["passage"] is not None for r in rows)
    assert rows[0]["key"] == "home.md" and "router" in rows[0]["content"]
    assert rows[3]["key"] == "sub/outdoors.txt" and "tent" in rows[3]["content"]
    whole = [json.loads(line) for line in run("search", "manuals", "--batch", tmp_path / "queries.txt", "-k", 3,
                                                "--json").stdout.splitlines()]  # fmt: skip
    per_query = [[r["key"] for r in whole if r["query"] == n] for n in (1, 2)]
    assert per_query == [["home.md", "sub/outdoors.txt"], ["sub/outdoors.txt", "home.md"]]  # documents, each once

    # one paragraph edited: only the passages it touches are embedded again
    edited = _manual("kettle", "router", "bread").replace("degrees.\n", "degrees. Sprinkle seeds on the crust.\n")
    (folder / "home.md").write_text(edited)
    out = run("ingest", "manuals", folder).output
    embedded = int(out.split("; ")[-1].split(" embedded")[0])
    assert 1 <= embedded < passages, out  # the edited paragraph's passages, not every one

    # JSONL records with long texts are documents too, and so is one text file (keyed by its path)
    src = tmp_path / "more.jsonl"
    src.write_text(json.dumps({"key": "bread-book", "content": _manual("bread", "kettle"), "lang": "en"}) + "\n")
    assert "1 documents (" in run("ingest", "manuals", src).output
    single = tmp_path / "tent.txt"
    single.write_text(_manual("tent"))
    run("ingest", "manuals", single)
    assert [r.content for r in col.get([str(single)])] == [_manual("tent")]
    out = run("search", "manuals", "knead the dough", "--where", '{"lang": "en"}', "--json").stdout
    found = [json.loads(h) for h in out.splitlines()]
    assert found[0]["key"] == "bread-book" and found[0]["metadata"] == {"lang": "en"}


def test_a_folder_into_a_collection_without_passages_is_one_row_per_file(run, db, tmp_path):
    run("create", "notes", "--model", "local", "--dims", 64)
    (tmp_path / "a.txt").write_text(TOPICS["kettle"] + "\n\n" + TOPICS["tent"])
    (tmp_path / "b.md").write_text(TOPICS["bread"])
    assert "2 rows from 1 file(s)" in run("ingest", "notes", tmp_path).output
    assert [r.content for r in db.collection("notes").get(["a.txt"])] == [TOPICS["kettle"] + "\n\n" + TOPICS["tent"]]
    bad = run("ingest", "notes", tmp_path, "--format", "csv", ok=False)
    assert "expected a file for --format csv, got folder" in bad.output
    # a text file given alone is still one row per paragraph here
    assert "2 rows" in run("ingest", "notes", tmp_path / "a.txt").output
