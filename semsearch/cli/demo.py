"""demo: the offline tour."""

from __future__ import annotations

import click

from semsearch.cli.app import connect_db, main


@main.command()
@click.option("--rows", type=click.IntRange(1), help="Docstrings to load (default: all, ~4,500).")
@click.pass_context
def demo(ctx: click.Context, rows: int | None) -> None:
    """Load the standard library's docstrings and compare two-stage with exact search.

    Offline: the embedded Postgres, the local model and the corpus are all on
    this machine. Recreates the collection "stdlib_docs".

    \b
    Example:
      semsearch demo --rows 1000
    """
    from semsearch.demo import run_demo
    from semsearch.embeddings import check_installed

    check_installed("local")  # before the embedded server is started for nothing
    run_demo(connect_db(ctx), rows=rows, echo=click.echo)
