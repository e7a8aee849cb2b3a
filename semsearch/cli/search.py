"""Queries: search, explain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from semsearch.cli.app import FILE, embedder_option, main, open_collection, parse_where, short, table, where_option
from semsearch.collection import Collection
from semsearch.planner import MAX_K
from semsearch.readers import load_vector, read_lines
from semsearch.results import SearchResult


def _search_options(fn: Any) -> Any:
    """The options search and explain share."""
    for option in reversed(
        [
            click.argument("name"),
            click.argument("query", required=False),
            click.option("--vector-file", type=FILE, help="Query vector: a JSON list or a .npy file."),
            click.option("-k", type=click.IntRange(1, MAX_K), default=10, show_default=True),
            click.option(
                "--mode", type=click.Choice(["vector", "text", "hybrid"]), default="vector", show_default=True
            ),
            click.option("--exact", is_flag=True, help="Scan every full vector instead of the index."),
            click.option("--oversample", type=click.FloatRange(1, 1000), help="Candidates per wanted row."),
            where_option,
            click.option("--tenant", help="Only this tenant's rows."),
            click.option(
                "--fresh", is_flag=True, help="Read the primary, not a read replica (SEMSEARCH_REPLICA_URLS)."
            ),
            embedder_option,
        ]
    ):
        fn = option(fn)
    return fn


def _search_call(
    ctx: click.Context, name: str, query: str | None, options: dict[str, Any], *, batch: bool = False
) -> tuple[Collection, dict]:
    vector_file, where_json, embedder = options.pop("vector_file"), options.pop("where_json"), options.pop("embedder")
    if batch and (query is not None or vector_file is not None):
        raise click.UsageError("expected --batch alone, not with a QUERY or --vector-file")
    if not batch and options["mode"] == "vector" and (query is None) == (vector_file is None):
        raise click.UsageError("expected a QUERY or --vector-file, not both or neither")
    if not batch and options["mode"] != "vector" and query is None:
        raise click.UsageError(f"expected a QUERY for --mode {options['mode']}")
    vector = load_vector(vector_file) if vector_file is not None else None
    return open_collection(ctx, name, embedder), {"vector": vector, "where": parse_where(where_json), **options}


#: the options of a page of results: search and more-like
_page_options = [
    click.option("--offset", type=click.IntRange(0, MAX_K), default=0, help="Skip the N best rows (the next page)."),
    click.option("--min-score", "score_threshold", type=float, help="Leave out hits scored below this."),
    click.option("--json", "as_json", is_flag=True, help="One JSON object per hit."),
]


def _page(fn: Any) -> Any:
    for option in reversed(_page_options):
        fn = option(fn)
    return fn


def _print(result: SearchResult, as_json: bool, offset: int, query: int | None = None) -> None:
    """The hits, ranked from ``offset + 1``; ``query``: their query's number in a batch."""
    first = {"query": query} if query is not None else {}
    if as_json:
        for rank, hit in enumerate(result, offset + 1):
            click.echo(json.dumps({**first, "rank": rank, **hit.to_dict()}, ensure_ascii=False))
        return
    if query is not None:
        click.echo(f"query {query}:")
    if any(h.passages or h.passage for h in result):
        # documents (or passages): where in the document its best passage is, as character offsets
        places = [h.passage or h.passages[0] for h in result]
        found = [
            (str(i), f"{h.score:.4f}", h.key, f"{p.start}-{p.end}", str(len(h.passages) or ""), short(h.content))
            for (i, h), p in zip(enumerate(result, offset + 1), places, strict=True)
        ]
        table(("rank", "score", "key", "chars", "passages", "best passage"), found)
        return
    rows = [(str(i), f"{h.score:.4f}", h.key, short(h.content)) for i, h in enumerate(result, offset + 1)]
    table(("rank", "score", "key", "content"), rows)


@main.command()
@_search_options
@_page
@click.option("--batch", type=FILE, help="Many queries, one per line (blank lines skipped), in one round trip.")
@click.option("--passages", is_flag=True, help="A collection with passages: the best passages, not documents.")
@click.pass_context
def search(
    ctx: click.Context, name: str, query: str | None, as_json: bool, batch: Path | None, passages: bool, **options: Any
) -> None:
    """Find the K rows closest in meaning to QUERY (or to --vector-file, or to each line of --batch).

    In a collection with passages a hit is a document (the best K distinct ones): its key,
    its best passage's score, offsets ("chars" start-end in the document) and text, and
    how many of its passages were found; --json adds every passage found and, for text and
    hybrid, a highlighted snippet. --passages lists the best passages instead (with --batch:
    each query's best passages).

    \b
    Example:
      semsearch search docs "rotate the log files" -k 5
      semsearch search docs "rotate the log files" -k 5 --offset 5 --min-score 0.3
      semsearch search docs "rotate the log files" --mode hybrid --tenant acme
      semsearch search movies --vector-file q.npy --where '{"year": 1995}' --json
      semsearch search docs --batch questions.txt -k 3 --json
      semsearch search manuals "reset the router" --mode hybrid --passages
      semsearch search manuals --batch questions.txt --passages -k 3
    """
    if batch is not None:
        col, kwargs = _search_call(ctx, name, query, options, batch=True)
        del kwargs["vector"]
        for n, result in enumerate(col.search_many(read_lines(batch), passages=passages, **kwargs), 1):
            _print(result, as_json, kwargs["offset"], query=n)
        return
    col, kwargs = _search_call(ctx, name, query, options)
    result = col.search(query, passages=passages, **kwargs)
    _print(result, as_json, kwargs["offset"])
    if not result.complete and kwargs["score_threshold"] is not None:
        click.echo(f"only {len(result)} of {result.k} rows score at least {kwargs['score_threshold']}", err=True)
    elif not result.complete:
        # rows stored with defer=True are invisible to a search until backfill embeds them
        pending = col.pending()
        hint = f"; {pending:,} more wait for an embedding: run `semsearch backfill {name}`" if pending else ""
        click.echo(f"only {len(result)} of {result.k} requested rows exist{hint}", err=True)


@main.command("more-like")
@click.argument("name")
@click.argument("key")
@click.option("-k", type=click.IntRange(1, MAX_K - 1), default=10, show_default=True)
@click.option("--exact", is_flag=True, help="Scan every full vector instead of the index.")
@where_option
@click.option("--tenant", help="Only this tenant's rows (and KEY must be this tenant's).")
@_page
@click.option("--fresh", is_flag=True, help="Read the primary, not a read replica (SEMSEARCH_REPLICA_URLS).")
@click.pass_context
def more_like(ctx: click.Context, name: str, key: str, where_json: str | None, as_json: bool, **options: Any) -> None:
    """The K rows closest in meaning to the stored row KEY (the row itself left out).

    In a collection with passages KEY is a document's: the K documents most like it.

    \b
    Example:
      semsearch more-like movies m1 -k 5
      semsearch more-like docs a1 --where '{"lang": "en"}' --min-score 0.5 --json
    """
    col = open_collection(ctx, name)
    result = col.more_like(key, where=parse_where(where_json), **options)
    _print(result, as_json, options["offset"])


@main.command()
@_search_options
@click.pass_context
def explain(ctx: click.Context, name: str, query: str | None, **options: Any) -> None:
    """Print the SQL a search runs and its EXPLAIN (ANALYZE, BUFFERS); nothing is changed.

    \b
    Example:
      semsearch explain docs "rotate the log files" -k 5
      semsearch explain docs "rotate the log files" --mode text --where '{"lang": "en"}'
    """
    col, kwargs = _search_call(ctx, name, query, options)
    click.echo(str(col.explain(query, **kwargs)))
