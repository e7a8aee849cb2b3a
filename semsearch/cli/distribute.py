"""Citus: distribute a collection over a cluster's workers."""

from __future__ import annotations

import click

from semsearch.cli.app import connect_db, main


@main.command()
@click.argument("name")
@click.option(
    "--by",
    type=click.Choice(["key", "tenant"]),
    default="key",
    show_default=True,
    help="key: rows spread evenly, searches ask every shard; tenant: a tenant's search runs on one shard "
    "(keys are then unique per tenant).",
)
@click.pass_context
def distribute(ctx: click.Context, name: str, by: str) -> None:
    """Shard collection NAME over the workers of a Citus cluster (run against the coordinator).

    \b
    Example:
      semsearch --url postgresql://app@coordinator/app distribute docs --by key
      semsearch create tickets --model local --distribute-by tenant
    """
    connect_db(ctx).distribute_collection(name, by=by)
    click.echo(f"distributed {name} by {by}")
