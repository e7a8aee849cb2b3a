"""semsearch db upgrade|downgrade|current: semsearch's own schema (alembic migrations)."""

from __future__ import annotations

import click
import psycopg

from semsearch import migrate
from semsearch.catalog import schema_version
from semsearch.cli.app import main, server_url
from semsearch.server import redact


@main.group()
def db() -> None:
    """Manage semsearch's schema (alembic migrations).

    \b
    Example:
      semsearch --url postgresql://app@db/app db upgrade
    """


@db.command()
@click.option("--revision", default="head", show_default=True, help="Migration to upgrade to.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Install or upgrade semsearch's schema.

    \b
    Example:
      semsearch db upgrade
    """
    url = server_url(ctx)
    migrate.upgrade(url, revision)
    click.echo(f"schema at {_current(url) or 'base'} on {redact(url)}")


@db.command()
@click.option("--revision", default="base", show_default=True, help="Migration to go down to.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def downgrade(ctx: click.Context, revision: str, yes: bool) -> None:
    """Take semsearch's schema down; "base" drops every collection.

    \b
    Example:
      semsearch db downgrade --yes
    """
    url = server_url(ctx)
    if not yes:
        warning = " and drop every collection" if revision == "base" else ""
        click.confirm(f"downgrade the schema to {revision}{warning} on {redact(url)}?", abort=True)
    migrate.downgrade(url, revision)
    click.echo(f"schema at {_current(url) or 'base'} on {redact(url)}")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the applied migration and whether it is the newest.

    \b
    Example:
      semsearch db current
    """
    now, head = _current(server_url(ctx)), migrate.head()
    if now == head:
        click.echo(f"{now} (head)")
    else:
        click.echo(f"{now or 'none'} (head is {head}: run `semsearch db upgrade`)")


def _current(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        return schema_version(conn)
