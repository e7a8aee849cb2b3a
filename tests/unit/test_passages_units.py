"""Splitting, edits and grouping of documents, without a database (semsearch.passages)."""

from __future__ import annotations

import itertools

import pytest

from semsearch import Splitter
from semsearch.embeddings.local import LocalEmbedder
from semsearch.errors import ConfigurationError, InvalidInputError
from semsearch.ingest import Rows
from semsearch.passages import edits, grouping, splitter, tokenizers
from semsearch.passages.placement import PASSAGE
from semsearch.results import Hit, SearchResult


def words(text: str) -> int:
    return len(text.split())


PARAGRAPHS = [
    "The pump must be primed before use. Open the valve slowly. Check the gauge.",
    "Cleaning the filter takes ten minutes. Remove the cover first. Rinse it in warm water and let it dry.",
    "Warranty claims need the receipt.",
]
DOC = "\n\n".join(PARAGRAPHS)


def test_the_default_splitter_keeps_paragraphs_whole_when_they_fit():
    split = Splitter(max_tokens=20, overlap=0, tokens=words)
    found = split(DOC)
    assert [DOC[s:e] for s, e in found] == [PARAGRAPHS[0], PARAGRAPHS[1], PARAGRAPHS[2]]


def test_a_paragraph_longer_than_a_passage_is_cut_between_sentences_and_each_passage_fits():
    split = Splitter(max_tokens=10, overlap=0, tokens=words)
    texts = [DOC[s:e] for s, e in split(DOC)]
    assert all(words(t) <= 10 for t in texts)
    assert texts[:3] == ["The pump must be primed before use.", "Open the valve slowly. Check the gauge.",
                         "Cleaning the filter takes ten minutes."]  # fmt: skip
    assert all(t[-1] in ".!?" for t in texts)  # no sentence cut in the middle


def test_overlap_repeats_the_previous_passages_last_sentences():
    split = Splitter(max_tokens=12, overlap=5, tokens=words)
    found = split(DOC)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(found))  # passages overlap
    for a, b in itertools.pairwise(found):
        assert b[0] > a[0]  # always moving forward
        assert b[0] >= a[1] or words(DOC[b[0] : a[1]]) <= 5


def report(n: int) -> list[str]:
    """``n`` paragraphs of 1 to 9 sentences (4 to 12 words each): some fit a passage of 30 words, some do not."""
    out = []
    for i in range(n):
        sentences = [
            " ".join(f"p{i}s{j}w{w}" for w in range(4 + (i * 7 + j * 5) % 9)) + "." for j in range(1 + i * 5 % 9)
        ]
        out.append(" ".join(sentences))
    return out


def passages_by_paragraph(parts: list[str], split: Splitter) -> list[list[str]]:
    """Each paragraph's passages (every passage lies inside one paragraph)."""
    text, starts, pos = "\n\n".join(parts), [], 0
    for part in parts:
        starts.append(pos)
        pos += len(part) + 2
    out: list[list[str]] = [[] for _ in parts]
    for s, e in split(text):
        i = max(i for i, start in enumerate(starts) if start <= s)
        assert e <= starts[i] + len(parts[i]), "a passage spans two paragraphs"
        out[i].append(text[s:e])
    return out


EDITS = {
    "append": lambda p: p + " A sentence added at the end of it.",
    "insert": lambda p: p.replace(". ", ". One more sentence in the middle. ", 1),
    "shorten": lambda p: p.split(". ")[-1],
    "rewrite": lambda p: p.replace("w1", "changed"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_editing_one_paragraph_leaves_every_other_paragraphs_passages_byte_identical(edit):
    split = Splitter(max_tokens=30, overlap=6, tokens=words)
    parts = report(24)
    before = passages_by_paragraph(parts, split)
    assert sum(len(p) > 1 for p in before) >= 8  # long paragraphs are cut, with overlap, inside themselves
    for k in range(len(parts)):
        edited = [*parts[:k], EDITS[edit](parts[k]), *parts[k + 1 :]]
        after = passages_by_paragraph(edited, split)
        assert after[:k] == before[:k] and after[k + 1 :] == before[k + 1 :]


def test_a_small_paragraph_joins_the_next_ones_passage_and_its_edit_stays_there():
    split = Splitter(max_tokens=40, overlap=5, tokens=words)
    parts = ["# Pumps", PARAGRAPHS[0], "## Filters", PARAGRAPHS[1], "Warranty:", PARAGRAPHS[2], "Thanks."]
    text = "\n\n".join(parts)
    found = [text[s:e] for s, e in split(text)]
    assert found == [f"# Pumps\n\n{PARAGRAPHS[0]}", f"## Filters\n\n{PARAGRAPHS[1]}",
                     f"Warranty:\n\n{PARAGRAPHS[2]}\n\nThanks."]  # fmt: skip
    text2 = text.replace("## Filters", "## Filters and cartridges")
    assert [text2[s:e] for s, e in split(text2)] == [found[0], f"## Filters and cartridges\n\n{PARAGRAPHS[1]}",
                                                     found[2]]  # fmt: skip


def test_a_paragraph_without_blank_lines_finds_its_old_cuts_again_soon_after_an_edit():
    split = Splitter(max_tokens=40, overlap=6, tokens=words)
    text = " ".join(report(24))  # one paragraph of 118 sentences
    before = {text[s:e] for s, e in split(text)}
    assert len(before) > 30
    changed = []
    for i in range(24):  # a sentence inserted at the start of each old paragraph in turn
        edited = text.replace(f"p{i}s0w0", f"An inserted sentence of seven words. p{i}s0w0")
        changed.append(len({edited[s:e] for s, e in split(edited)} - before))
    # only the passages around the edit change (packing greedily to the brim: 4.3 on average)
    assert sum(changed) / len(changed) < 3.5


def test_a_sentence_longer_than_a_passage_is_cut_between_words():
    text = " ".join(f"w{i}" for i in range(95))
    found = Splitter(max_tokens=20, overlap=0, tokens=words)(text)
    assert all(words(text[s:e]) <= 20 for s, e in found)
    assert " ".join(text[s:e] for s, e in found) == text


def test_token_counts_are_the_embedders_own():
    assert tokenizers.counter_for("text-embedding-3-small")(["hello world"]) == [2]  # cl100k_base, offline
    local = tokenizers.counter_for("local")(["the cats purr"])[0]
    assert 2 <= local <= 6
    assert tokenizers.counter_for("my-label")(["héllo"]) == [6]  # unknown model: the UTF-8 bound


def test_a_local_token_count_is_the_texts_own_even_after_the_model_embedded_a_batch():
    count = tokenizers.counter_for("local")
    short, long = count(["the cats purr"])[0], count(["word " * 400])[0]
    LocalEmbedder(64).embed(["a batch pads its texts to the longest", "x"])  # wordllama turns padding on
    assert count(["the cats purr", "word " * 400]) == [short, long]
    assert short < 10 and long >= 400


def test_a_text_longer_than_the_model_embeds_is_refused_naming_the_option():
    tokenizers.check_fits("text-embedding-3-small", ["a"], ["word " * 8000])  # 8,001 tokens? no: 8,000
    with pytest.raises(InvalidInputError, match=r"at most 8191 tokens .* row 'long'.*passages=True"):
        tokenizers.check_fits("text-embedding-3-small", ["ok", "long"], ["short", "word " * 9000])
    tokenizers.check_fits("local", ["a"], ["word " * 50000])  # wordllama embeds any length


def test_splitter_settings_are_checked():
    with pytest.raises(ConfigurationError, match="overlap smaller than max_tokens"):
        Splitter(max_tokens=50, overlap=50)
    with pytest.raises(ConfigurationError, match="max_tokens at most 8191"):
        Splitter(max_tokens=9000).for_model("text-embedding-3-small")
    assert Splitter().for_model("local").config() == {"splitter": "default", "max_tokens": 256, "overlap": 32}
    assert Splitter().for_model("text-embedding-3-small").config()["max_tokens"] == 512
    with pytest.raises(ConfigurationError, match="expected passages=True"):
        splitter.resolve(42, "local")


class DuckSplitter:
    """What a LangChain TextSplitter looks like to semsearch: ``split_text(text) -> list[str]``."""

    def split_text(self, text: str) -> list[str]:
        return [p.strip() for p in text.split("\n\n")]


def test_any_splitter_is_spans_found_in_the_document():
    assert splitter.spans(DuckSplitter(), DOC) == [(DOC.index(p), DOC.index(p) + len(p)) for p in PARAGRAPHS]
    assert splitter.spans(lambda t: [(0, 3), (2, 6)], "abcdefg") == [(0, 3), (2, 6)]
    # a repeated piece is found after the previous one, not again at the start
    assert splitter.spans(lambda t: ["ab", "ab"], "ab-ab") == [(0, 2), (3, 5)]
    with pytest.raises(InvalidInputError, match="pieces of the document"):
        splitter.spans(lambda t: ["not there"], DOC)
    with pytest.raises(InvalidInputError, match="inside the document"):
        splitter.spans(lambda t: [(0, 999)], DOC)
    with pytest.raises(InvalidInputError, match="document order"):
        splitter.spans(lambda t: [(5, 8), (0, 2)], DOC)


def test_a_document_is_put_together_again_exactly_from_its_passages():
    text = "  lead\n\nfirst part of it all. second part of it all.\n\n\nthird   and last part, long enough to cut. "
    for split in (DuckSplitter(), Splitter(max_tokens=8, overlap=3, tokens=words), lambda t: ["first", "third"]):
        docs = edits.expand(Rows(["d"], [text], [{"x": 1}], [None]), split)
        places = [m[PASSAGE] for m in docs.rows.metadata]
        assert [p["seq"] for p in places] == list(range(len(places)))
        assert all(text[p["start"] : p["end"]] == c for p, c in zip(places, docs.rows.contents, strict=True))
        assert edits.assemble(zip(docs.rows.contents, places, strict=True)) == text
        assert docs.rows.keys[0] == "d#0" and docs.rows.metadata[0]["x"] == 1


def test_the_reserved_metadata_key_is_refused():
    with pytest.raises(InvalidInputError, match="reserved key"):
        edits.expand(Rows(["d"], ["t"], [{PASSAGE: 1}], [None]), DuckSplitter())


def hit(doc: str, seq: int, score: float) -> Hit:
    return Hit(f"{doc}#{seq}", f"text {doc} {seq}", score, {"m": doc, PASSAGE: {"doc": doc, "seq": seq, "start": 0,
                                                                                 "end": 5}})  # fmt: skip


def test_passages_are_grouped_into_distinct_documents_best_first():
    found = SearchResult((hit("a", 3, 0.9), hit("a", 1, 0.8), hit("b", 0, 0.7), hit("a", 0, 0.6), hit("c", 2, 0.5)), 5)
    docs = grouping.documents(found, k=2)
    assert [(h.key, h.score, [p.seq for p in h.passages]) for h in docs] == [("a", 0.9, [3, 1, 0]), ("b", 0.7, [0])]
    assert docs[0].metadata == {"m": "a"} and docs[0].content == "text a 3"
    assert [h.key for h in grouping.documents(found, k=2, offset=1)] == ["b", "c"]
    assert [h.key for h in grouping.documents(found, k=3, score_threshold=0.6)] == ["a", "b"]
    level = grouping.passage_hits(found, k=2)
    assert [(h.key, h.passage.seq if h.passage else None) for h in level] == [("a", 3), ("a", 1)]


def test_candidates_widen_until_enough_documents_or_every_passage():
    assert grouping.first_fetch(10) == 40 and grouping.first_fetch(5000) == 10000
    assert grouping.widen(40, got=40, distinct=1, want=10) == 160
    assert grouping.widen(40, got=40, distinct=10, want=10) is None
    assert grouping.widen(40, got=39, distinct=2, want=10) is None  # that was every passage
    assert grouping.widen(10000, got=10000, distinct=2, want=10) is None  # the search's limit
