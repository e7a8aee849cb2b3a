"""Existing tables searched in place: sync-table, unsync-table, synced-tables."""

from __future__ import annotations

import click

from semsearch.cli.app import connect_db, main, table
from semsearch.document_queue import queued
from semsearch.sync_source import text_columns


@main.command("sync-table")
@click.argument("source")
@click.option("--collection", required=True, help="The collection the table's rows go to (created if missing).")
@click.option("--key", required=True, help="A column unique on its own: the hits' key, as text.")
@click.option(
    "--text",
    "text",
    required=True,
    multiple=True,
    help='The column whose text is embedded (repeat for several: joined as "name: value" lines).',
)
@click.option("--metadata", multiple=True, help="A column stored in the metadata (repeat for more).")
@click.option("--tenant", help="A column that becomes the row's tenant.")
@click.option("--model", help='"local", an OpenAI model, or a label (for a new collection).')
@click.option("--dims", type=click.IntRange(1), help="Vector size (default: the model's).")
@click.option("--compression", metavar="PLAN", help="bit, halfvec, none, mrl:<d> or mrl-bit:<d>.")
@click.option(
    "--passages",
    is_flag=True,
    help="Each row is a document split into passages (backfill splits and embeds the queued rows).",
)
@click.pass_context
def sync_table(
    ctx: click.Context,
    source: str,
    collection: str,
    key: str,
    text: tuple[str, ...],
    metadata: tuple[str, ...],
    tenant: str | None,
    model: str | None,
    dims: int | None,
    compression: str | None,
    passages: bool,
) -> None:
    """Keep collection --collection in step with table SOURCE, whoever writes it.

    Triggers turn every insert, update, delete and truncate on SOURCE into pending
    rows of the collection; the rows already there are queued now. Embed them with
    `semsearch backfill NAME` (or `--watch`, as a service). With --passages (or into
    a collection with passages) each row is a document: backfill splits it and embeds
    only its new passages; a deleted row's passages go at once.

    \b
    Example:
      semsearch sync-table public.products --collection products --key id \\
          --text name --text description --metadata price --metadata category --model local
      semsearch sync-table public.articles --collection articles --key id --text title --text body \\
          --model local --passages
      semsearch backfill products --watch
    """
    db = connect_db(ctx)
    col = db.sync_table(
        source, collection=collection, key=key, text=text, metadata=metadata, tenant=tenant,
        model=model, dims=dims, compression=compression, passages=True if passages else None,
    )  # fmt: skip
    waiting = (
        f"{queued(col):,} documents queued" if col.info.passages is not None else f"{col.pending():,} rows pending"
    )
    click.echo(f"synced {source} to {collection}: {waiting} (run `semsearch backfill {collection}`)")


@main.command("unsync-table")
@click.argument("source")
@click.option("--drop-collection", is_flag=True, help="Also drop the collection.")
@click.pass_context
def unsync_table(ctx: click.Context, source: str, drop_collection: bool) -> None:
    """Remove the triggers that keep a collection in step with table SOURCE.

    \b
    Example:
      semsearch unsync-table public.products [--drop-collection]
    """
    found = connect_db(ctx).unsync_table(source, drop_collection=drop_collection)
    click.echo(f"unsynced {found.table} from {found.collection}" + (" and dropped it" if drop_collection else ""))


@main.command("synced-tables")
@click.pass_context
def synced_tables(ctx: click.Context) -> None:
    """List the tables synced to collections.

    \b
    Example:
      semsearch synced-tables
    """
    rows = [
        (s.table, s.collection, s.key, ",".join(text_columns(s.text)), ",".join(s.metadata), s.tenant or "")
        for s in connect_db(ctx).synced_tables()
    ]
    if not rows:
        click.echo("no synced tables: sync one with `semsearch sync-table`", err=True)
        return
    table(("table", "collection", "key", "text", "metadata", "tenant"), rows)
