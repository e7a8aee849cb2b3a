"""The ``semsearch`` group and what its commands share: connecting, tables, number cells.

Example::

    from semsearch.cli.app import connect_db, main

    @main.command()
    @click.pass_context
    def hello(ctx: click.Context) -> None:
        click.echo(str(len(connect_db(ctx).collections())))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from semsearch.collection import Collection
from semsearch.db import Database, connect
from semsearch.errors import SemsearchError
from semsearch.readers import bad, parse_json
from semsearch.server import check_server, resolve_url

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

#: ``--embedder module:factory`` for every command that embeds texts
embedder_option = click.option(
    "--embedder",
    metavar="MODULE:FACTORY",
    help="Embed texts with MODULE.FACTORY() (an Embedder) instead of the built-in model.",
)


class Group(click.Group):
    """A click group that turns library errors into one-line CLI errors."""

    def invoke(self, ctx: click.Context) -> Any:
        # the one place library errors become CLI errors: their messages are written for users
        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Group)
@click.option("--url", help="Postgres URL (default: $SEMSEARCH_DATABASE_URL, else embedded).")
@click.version_option(package_name="semsearch")
@click.pass_context
def main(ctx: click.Context, url: str | None) -> None:
    """Semantic search in Postgres: compressed HNSW pass, exact rescore.

    \b
    Example:
      semsearch create docs --model local --dims 256 --compression halfvec
      semsearch ingest docs notes.jsonl
      semsearch search docs "how do I rotate the logs?"
    """
    ctx.obj = url


def connect_db(ctx: click.Context) -> Database:
    """The database of ``--url`` (or the default), closed when the command ends."""
    db = connect(ctx.obj)
    ctx.call_on_close(db.close)
    return db


def open_collection(ctx: click.Context, name: str, embedder: str | None = None) -> Collection:
    """Collection ``name``, embedding with ``--embedder`` when given (checked against its dims)."""
    db = connect_db(ctx)
    col = db.collection(name)
    if embedder is None:
        return col
    from semsearch.embeddings.factory import load_embedder

    return db.collection(name, embedder=load_embedder(embedder, dims=col.dims))


#: ``--where JSON``: a metadata filter, as Python's where=
where_option = click.option(
    "--where",
    "where_json",
    metavar="JSON",
    help="""Metadata filter, as Python's where=: '{"year": {"$gte": 1995}, "$or": [...]}'.""",
)


def parse_where(where_json: str | None) -> dict[str, Any] | None:
    """``--where``'s JSON object, or None when not given."""
    if where_json is None:
        return None
    where = parse_json(where_json, "--where")
    if not isinstance(where, dict):
        raise bad("--where", f"expected a JSON object, got {where_json!r}")
    return where


def server_url(ctx: click.Context) -> str:
    """The server URL of ``--url``, checked reachable; the schema may be missing or old."""
    # the same resolution as connect(), without requiring the schema to be current
    url, _ = resolve_url(ctx.obj)
    check_server(url)
    return url


def short(text: str, width: int = 80) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print ``rows`` under ``header`` in aligned columns."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cell(value: Any) -> str:
    """A number for a table: four significant digits, thousands separated."""
    if value is None:
        return "auto"  # the only None in sweep and tuning tables: ef_search
    if isinstance(value, float):
        return f"{value:.4g}" if value < 1000 else f"{value:,.0f}"
    return str(value)
