"""Rows: ingest, get, count, delete, backfill."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from semsearch import csv_types
from semsearch.cli.app import (
    FILE,
    connect_db,
    embedder_option,
    main,
    open_collection,
    parse_where,
    short,
    table,
    where_option,
)
from semsearch.collection import Collection
from semsearch.readers import FORMATS, READERS, Fields, checked, count_rows, read_lines
from semsearch.results import AddResult


def _types(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str]:
    try:
        return csv_types.parse_types(value) if value is not None else {}
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
@click.option("--tenant-field", "tenant", metavar="NAME", help='The row\'s tenant  [default: "tenant"]')
@click.option("--no-tenant-field", is_flag=True, help="No field is the tenant: a tenant field is metadata.")
@click.option(
    "--metadata-types",
    "types",
    metavar="COL=TYPE,...",
    callback=_types,
    help="CSV: force column types (str, int, float, bool, json), e.g. year=int,ok=bool.",
)
@click.option("--no-infer-types", "infer_types", flag_value=False, default=True, help="CSV: keep cells as text.")
@embedder_option
@click.pass_context
def ingest(ctx: click.Context, name: str, files: tuple[Path, ...], fmt: str, embedder: str | None, **o: Any) -> None:
    """Add or update rows from JSONL, CSV or text files; unchanged texts are not re-embedded.

    JSONL: one object per line with the key and text fields, optional "metadata"
    (an object), embedding (a list of numbers) and tenant; other fields join the
    metadata. CSV: a header row; the key and text columns, optional embedding (a
    JSON list) and tenant columns; other columns become metadata, typed per column
    from all its cells: a column of 42 and 2.5 is numbers, of true/false booleans;
    one cell like 007 or n/a keeps the whole column text; empty cells are null
    (--metadata-types forces types, --no-infer-types keeps text).
    Text: one row per paragraph (blocks separated by blank lines), keyed "<file as
    given>:<n>"; in a collection with passages the whole file is one document keyed
    by its path. A folder: each .txt and .md file under it is one document (or
    row), keyed by its path relative to the folder. A "tenant" field is the row's tenant, as "key" is its key
    (--no-tenant-field keeps it metadata). A bad row stops the run with its file
    and line; batches written before it stay, and a re-run skips them.

    \b
    Example:
      semsearch ingest docs notes.jsonl handbook.txt
      semsearch ingest manuals ./manuals/          # every .txt and .md file, one document each
      semsearch ingest movies movies.csv --key-field id --text-field title --metadata-types year=int
      semsearch ingest docs tickets.jsonl --tenant-field customer
    """
    if o["tenant"] is not None and o["no_tenant_field"]:
        raise click.UsageError("expected --tenant-field or --no-tenant-field, not both")
    col = open_collection(ctx, name, embedder)
    batch_size = o.pop("batch_size")
    if o.pop("no_tenant_field"):
        if _needs_tenant(col):
            raise click.UsageError(
                f"expected a tenant field for collection {name!r} (it requires tenants), got --no-tenant-field"
            )
    elif o["tenant"] is None:
        o["tenant"] = "tenant"
    names = Fields(**o)
    required = (o["tenant"], name) if _needs_tenant(col) else None
    seen: dict[str, str] = {}
    totals = AddResult(0, 0, 0)
    start = time.perf_counter()
    for path in files:
        kind = _kind(path, fmt, passages=col.info.passages is not None)
        records = checked(READERS[kind](path, names), col.dims, seen, required_tenant=required)
        got = col.add_many(records, batch_size=batch_size, progress=True, total=count_rows(path, kind))
        totals += got
    secs = time.perf_counter() - start
    n = totals.inserted + totals.updated + totals.unchanged
    if col.info.passages is not None:
        click.echo(
            f"{totals.documents} documents ({n} passages) from {len(files)} file(s) or folder(s) in {secs:.1f}s "
            f"({totals.documents / max(secs, 1e-9):,.1f} documents/s): {totals.inserted} passages inserted, "
            f"{totals.updated} updated, {totals.unchanged} unchanged, {totals.passages_deleted} deleted; "
            f"{totals.embedded} embedded, {totals.reused} reused"
        )
        return
    click.echo(
        f"{n} rows from {len(files)} file(s) in {secs:.1f}s ({n / max(secs, 1e-9):,.0f} rows/s): "
        f"{totals.inserted} inserted, {totals.updated} updated, {totals.unchanged} unchanged; "
        f"{totals.embedded} embedded, {totals.reused} reused"
    )


def _kind(path: Path, fmt: str, *, passages: bool) -> str:
    """How ``path`` is read: a folder's files, a JSONL or CSV file, or a text file (a document with passages)."""
    if path.is_dir():
        if fmt not in ("auto", "text"):
            raise click.UsageError(f"expected a file for --format {fmt}, got folder {str(path)!r}")
        return "folder"
    kind = FORMATS.get(path.suffix.lower(), "text") if fmt == "auto" else fmt
    return "document" if kind == "text" and passages else kind


def _needs_tenant(col: Collection) -> bool:
    return col.info.tenant_required or col.layout.tenant_in_key


@main.command()
@click.argument("name")
@click.argument("keys", nargs=-1)
@click.option("--from-file", type=FILE, help="More keys, one per line (blank lines skipped).")
@where_option
@click.option("--tenant", help="With --where or alone: delete this tenant's rows (that match --where).")
@click.option("--all", "all_rows", is_flag=True, help="Delete every row of the collection.")
@click.pass_context
def delete(
    ctx: click.Context,
    name: str,
    keys: tuple[str, ...],
    from_file: Path | None,
    where_json: str | None,
    tenant: str | None,
    all_rows: bool,
) -> None:
    """Delete the rows with these KEYs (keys that do not exist are skipped), or the rows --where keeps.

    \b
    Example:
      semsearch delete docs a1 a2
      semsearch delete docs --from-file stale_keys.txt
      semsearch delete docs --where '{"year": {"$lt": 1990}}' --tenant acme
      semsearch delete docs --all
    """
    by_filter = where_json is not None or tenant is not None or all_rows
    if by_filter:
        if keys or from_file is not None:
            raise click.UsageError("expected KEYs or --where/--tenant/--all, not both")
        col = connect_db(ctx).collection(name)
        n = col.delete(where=parse_where(where_json), tenant=tenant, all_rows=all_rows)
        click.echo(f"deleted {n} row(s) from {name}")
        return
    if not keys and from_file is None:
        raise click.UsageError("expected KEYs or --from-file, or --where, --tenant or --all to delete by filter")
    wanted = list(dict.fromkeys([*keys, *(read_lines(from_file) if from_file is not None else [])]))
    col = connect_db(ctx).collection(name)  # an unknown collection is an error even with no keys
    n = col.delete(wanted) if wanted else 0
    empty = f" ({from_file} holds no keys)" if not wanted else ""
    click.echo(f"deleted {n} of {len(wanted)} key(s) from {name}{empty}")


@main.command()
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.option("--tenant", help="Only this tenant's rows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@click.pass_context
def get(ctx: click.Context, name: str, keys: tuple[str, ...], tenant: str | None, as_json: bool) -> None:
    """Print the stored rows with these KEYs, in the order given (keys not stored are left out).

    \b
    Example:
      semsearch get docs a1 a2
      semsearch get docs a1 --json
    """
    found = connect_db(ctx).collection(name).get(list(keys), tenant=tenant)
    if as_json:
        for row in found:
            click.echo(json.dumps(asdict(row), ensure_ascii=False))
    else:
        cells = [(r.key, r.tenant or "", "yes" if r.embedded else "pending", short(r.content)) for r in found]
        table(("key", "tenant", "embedded", "content"), cells)
    missing = len(dict.fromkeys(keys)) - len({r.key for r in found})
    if missing:
        click.echo(f"{missing} of {len(dict.fromkeys(keys))} key(s) not stored in {name}", err=True)


@main.command()
@click.argument("name")
@where_option
@click.option("--tenant", help="Only this tenant's rows.")
@click.pass_context
def count(ctx: click.Context, name: str, where_json: str | None, tenant: str | None) -> None:
    """Print how many rows are stored (embedded or pending), or how many --where and --tenant keep.

    \b
    Example:
      semsearch count docs
      semsearch count docs --where '{"lang": "es"}' --tenant acme
    """
    click.echo(str(connect_db(ctx).collection(name).count(where=parse_where(where_json), tenant=tenant)))


@main.command()
@click.argument("name")
@click.option("--batch-size", type=click.IntRange(1, 2048), default=256, show_default=True)
@click.option("--limit", type=click.IntRange(1), help="Embed at most this many rows, then stop.")
@click.option("--dry-run", is_flag=True, help="Only count pending rows and estimate tokens and cost.")
@click.option("--retry-quarantined", is_flag=True, help="Also try the rows whose text the provider refused before.")
@click.option("--watch", is_flag=True, help="Then wait for new pending rows and embed them, until SIGINT/SIGTERM.")
@click.option(
    "--poll",
    type=click.FloatRange(0.1, 86400),
    default=60.0,
    show_default=True,
    help="With --watch: look anyway every N s.",
)
@embedder_option
@click.pass_context
def backfill(
    ctx: click.Context,
    name: str,
    batch_size: int,
    limit: int | None,
    dry_run: bool,
    retry_quarantined: bool,
    embedder: str | None,
    watch: bool,
    poll: float,
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
      semsearch backfill docs --watch          # a service: LISTEN/NOTIFY, reconnects, stops on SIGTERM
    """
    col = open_collection(ctx, name, embedder)
    if watch:
        if dry_run or limit or retry_quarantined:
            raise click.UsageError("--watch takes no --dry-run, --limit or --retry-quarantined")
        click.echo(f"watching {name} for pending rows (stop with Ctrl-C or SIGTERM)", err=True)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        done = col.backfill(watch=True, poll=poll, batch_size=batch_size)
        click.echo(f"embedded {done.embedded:,} rows in {done.batches} batches over {done.seconds:,.0f}s; stopped")
        return
    result = col.backfill(
        batch_size=batch_size,
        limit=limit,
        dry_run=dry_run,
        progress=not dry_run,
        retry_quarantined=retry_quarantined,
    )
    cost = "unknown" if result.est_cost_usd is None else f"${result.est_cost_usd:,.4f}"
    click.echo(f"{result.pending:,} pending rows, about {result.est_tokens:,} tokens, estimated cost {cost}")
    if dry_run and result.documents:
        click.echo(f"{result.documents:,} documents of the synced table queued (split when backfilled)")
    if not dry_run:
        rate = result.embedded / result.seconds if result.seconds else 0.0
        click.echo(f"embedded {result.embedded:,} rows in {result.batches} batches ({rate:,.0f} rows/s)")
        if result.documents:
            click.echo(f"wrote {result.documents:,} queued documents of the synced table as passages")
    held = col.quarantined()
    if held:
        rows = "1 row" if len(held) == 1 else f"{len(held):,} rows"
        new = f", {result.quarantined:,} of them new" if result.quarantined else ""
        click.echo(f"{rows} in quarantine{new} (refused by the embedding provider; retry with --retry-quarantined):")
        for key, reason in held:
            click.echo(f"  {key}: {reason}")
