"""Rows: ingest, backfill."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from semsearch.cli.app import FILE, connect_db, main
from semsearch.ingest import AddResult
from semsearch.readers import FORMATS, READERS, checked, count_rows


@main.command()
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv", "text"]),
    default="auto",
    show_default=True,
    help="auto: .jsonl/.ndjson are jsonl, .csv is csv, anything else text.",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--key-field", "key", default="key", show_default=True)
@click.option("--text-field", "text", default="content", show_default=True)
@click.option("--embedding-field", "embedding", default="embedding", show_default=True)
@click.pass_context
def ingest(ctx: click.Context, name: str, files: tuple[Path, ...], fmt: str, **fields: Any) -> None:
    """Add or update rows from JSONL, CSV or text files; unchanged texts are not re-embedded.

    JSONL: one object per line with the key and text fields, optional "metadata"
    (an object) and embedding (a list of numbers); other fields join the metadata.
    CSV: a header row; the key and text columns, an optional embedding column (a
    JSON list); other columns become metadata. Text: one row per paragraph (blocks
    separated by blank lines), keyed "<file as given>:<n>". A bad row stops the run
    with its file and line; batches written before it stay, and a re-run skips them.

    \b
    Example:
      semsearch ingest docs notes.jsonl handbook.txt
      semsearch ingest movies movies.csv --key-field id --text-field title
    """
    col = connect_db(ctx).collection(name)
    batch_size = fields.pop("batch_size")
    names = (fields["key"], fields["text"], fields["embedding"])
    seen: dict[str, str] = {}
    totals = AddResult(0, 0, 0)
    start = time.perf_counter()
    for path in files:
        kind = FORMATS.get(path.suffix.lower(), "text") if fmt == "auto" else fmt
        records = checked(READERS[kind](path, names), col.dims, seen)
        got = col.add_many(records, batch_size=batch_size, progress=True, total=count_rows(path, kind))
        totals += got
    secs = time.perf_counter() - start
    n = totals.inserted + totals.updated + totals.unchanged
    click.echo(
        f"{n} rows from {len(files)} file(s) in {secs:.1f}s ({n / max(secs, 1e-9):,.0f} rows/s): "
        f"{totals.inserted} inserted, {totals.updated} updated, {totals.unchanged} unchanged; "
        f"{totals.embedded} embedded, {totals.reused} reused"
    )


@main.command()
@click.argument("name")
@click.option("--batch-size", type=click.IntRange(1, 2048), default=256, show_default=True)
@click.option("--limit", type=click.IntRange(1), help="Embed at most this many rows, then stop.")
@click.option("--dry-run", is_flag=True, help="Only count pending rows and estimate tokens and cost.")
@click.option("--retry-quarantined", is_flag=True, help="Also try the rows whose text the provider refused before.")
@click.pass_context
def backfill(
    ctx: click.Context, name: str, batch_size: int, limit: int | None, dry_run: bool, retry_quarantined: bool
) -> None:
    """Embed rows stored with defer=True, in resumable batches.

    Safe to interrupt (even kill -9) and run again: committed batches stay, the
    batch in flight is redone, no row is embedded twice into the table. Rows
    whose text the provider refuses (HTTP 400) go to quarantine, listed with
    the reason; later runs skip them until their text changes or
    --retry-quarantined.

    \b
    Example:
      semsearch backfill docs --dry-run
      semsearch backfill docs --batch-size 512
      semsearch backfill docs --retry-quarantined
    """
    col = connect_db(ctx).collection(name)
    result = col.backfill(
        batch_size=batch_size,
        limit=limit,
        dry_run=dry_run,
        progress=not dry_run,
        retry_quarantined=retry_quarantined,
    )
    cost = "unknown" if result.est_cost_usd is None else f"${result.est_cost_usd:,.4f}"
    click.echo(f"{result.pending:,} pending rows, about {result.est_tokens:,} tokens, estimated cost {cost}")
    if not dry_run:
        rate = result.embedded / result.seconds if result.seconds else 0.0
        click.echo(f"embedded {result.embedded:,} rows in {result.batches} batches ({rate:,.0f} rows/s)")
    held = col.quarantined()
    if held:
        rows = "1 row" if len(held) == 1 else f"{len(held):,} rows"
        new = f", {result.quarantined:,} of them new" if result.quarantined else ""
        click.echo(f"{rows} in quarantine{new} (refused by the embedding provider; retry with --retry-quarantined):")
        for key, reason in held:
            click.echo(f"  {key}: {reason}")
