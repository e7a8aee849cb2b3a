"""Queries: search, explain."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from semsearch.cli.app import FILE, embedder_option, main, open_collection, short, table
from semsearch.collection import Collection
from semsearch.readers import bad, load_vector, parse_json
from semsearch.search import MAX_K


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
            click.option(
                "--where",
                "where_json",
                metavar="JSON",
                help="""Metadata filter, as Python's where=: '{"year": {"$gte": 1995}, "$or": [...]}'.""",
            ),
            click.option("--tenant", help="Only this tenant's rows."),
            click.option(
                "--fresh", is_flag=True, help="Read the primary, not a read replica (SEMSEARCH_REPLICA_URLS)."
            ),
            embedder_option,
        ]
    ):
        fn = option(fn)
    return fn


def _search_call(ctx: click.Context, name: str, query: str | None, options: dict[str, Any]) -> tuple[Collection, dict]:
    vector_file, where_json, embedder = options.pop("vector_file"), options.pop("where_json"), options.pop("embedder")
    if options["mode"] == "vector" and (query is None) == (vector_file is None):
        raise click.UsageError("expected a QUERY or --vector-file, not both or neither")
    if options["mode"] != "vector" and query is None:
        raise click.UsageError(f"expected a QUERY for --mode {options['mode']}")
    where = None
    if where_json is not None:
        where = parse_json(where_json, "--where")
        if not isinstance(where, dict):
            raise bad("--where", f"expected a JSON object, got {where_json!r}")
    vector = load_vector(vector_file) if vector_file is not None else None
    return open_collection(ctx, name, embedder), {"vector": vector, "where": where, **options}


@main.command()
@_search_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.pass_context
def search(ctx: click.Context, name: str, query: str | None, as_json: bool, **options: Any) -> None:
    """Find the K rows closest in meaning to QUERY (or to --vector-file).

    \b
    Example:
      semsearch search docs "rotate the log files" -k 5
      semsearch search docs "rotate the log files" --mode hybrid --tenant acme
      semsearch search movies --vector-file q.npy --where '{"year": 1995}' --json
    """
    col, kwargs = _search_call(ctx, name, query, options)
    result = col.search(query, **kwargs)
    if as_json:
        for rank, hit in enumerate(result, 1):
            click.echo(json.dumps({"rank": rank, **asdict(hit)}, ensure_ascii=False))
    else:
        rows = [(str(i), f"{h.score:.4f}", h.key, short(h.content)) for i, h in enumerate(result, 1)]
        table(("rank", "score", "key", "content"), rows)
    if not result.complete:
        # rows stored with defer=True are invisible to a search until backfill embeds them
        pending = col.pending()
        hint = f"; {pending:,} more wait for an embedding: run `semsearch backfill {name}`" if pending else ""
        click.echo(f"only {len(result)} of {result.k} requested rows exist{hint}", err=True)


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
