"""Collections: create, list, drop, grant."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from semsearch.cli.app import connect_db, main, table
from semsearch.collection import Collection


@main.command()
@click.argument("name")
@click.option("--model", required=True, help='"local", an OpenAI model, or a label for your vectors.')
@click.option("--dims", type=click.IntRange(1), help="Vector size (default: the model's).")
@click.option(
    "--compression",
    metavar="PLAN",
    help="bit, halfvec, none, mrl:<d> or mrl-bit:<d> (default: bit from 1024 dims, else halfvec).",
)
@click.option("--storage", type=click.Choice(["vector", "halfvec"]), default="vector")
@click.option("--m", "hnsw_m", type=int, default=16, show_default=True, help="HNSW links per node.")
@click.option("--ef-construction", "hnsw_ef_construction", type=int, default=64, show_default=True)
@click.option("--tenant-required", is_flag=True, help="Refuse writes and searches without a tenant.")
@click.option("--no-autotune", "autotune", flag_value=False, default=True, help="Do not tune after bulk loads.")
@click.option(
    "--distribute-by",
    type=click.Choice(["key", "tenant"]),
    help="On a Citus coordinator: shard the table over the workers (see `semsearch distribute`).",
)
@click.pass_context
def create(ctx: click.Context, name: str, **options: Any) -> None:
    """Create a collection.

    \b
    Example:
      semsearch create movies --model text-embedding-3-small --dims 1536 --compression bit
    """
    info = connect_db(ctx).create_collection(name, **options).info
    click.echo(
        f"created {name}: {info.model}, {info.dims} dims, {info.storage} storage, compression {info.compression}"
    )


@main.command()
@click.argument("role")
@click.argument("name")
@click.option("--write", is_flag=True, help="Also add, delete, backfill and tune.")
@click.pass_context
def grant(ctx: click.Context, role: str, name: str, write: bool) -> None:
    """Grant ROLE exactly what searching collection NAME needs (or also writing it).

    \b
    Example:
      semsearch grant web_reader docs
      semsearch grant ingest_worker docs --write
    """
    connect_db(ctx).grant(role, name, write=write)
    click.echo(f"granted {role} {'search and write' if write else 'search'} on {name}")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per collection.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List collections with their model, size and compression.

    \b
    Example:
      semsearch list --json
    """
    db = connect_db(ctx)
    infos = [(info, Collection(db, info).count()) for info in db.collections()]
    if as_json:
        for info, n in infos:
            click.echo(json.dumps({**asdict(info), "rows": n}))
    elif not infos:
        click.echo("no collections: create one with `semsearch create`", err=True)
    else:
        rows = [(i.name, i.model, str(i.dims), i.compression, str(n)) for i, n in infos]
        table(("name", "model", "dims", "compression", "rows"), rows)


@main.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def drop(ctx: click.Context, name: str, yes: bool) -> None:
    """Drop a collection and all its rows.

    \b
    Example:
      semsearch drop movies --yes
    """
    db = connect_db(ctx)
    n = db.collection(name).count()
    if not yes:
        click.confirm(f"drop collection {name!r} and its {n} rows?", abort=True)
    db.drop_collection(name)
    click.echo(f"dropped {name} ({n} rows)")
