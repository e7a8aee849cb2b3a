"""migrate-model: re-embed a collection with another model while searches go on."""

from __future__ import annotations

import json
from typing import Any

import click

from semsearch.cli.app import connect_db, embedder_option, main


@main.command("migrate-model")
@click.argument("name")
@click.option("--model", help="The new model (default: the current one).")
@click.option("--dims", type=click.IntRange(1, 16_000), help="The new dimensions.")
@click.option("--compression", help="Compression plan of the new collection (default: the library's).")
@click.option("--sample", type=click.IntRange(1), default=50, show_default=True, help="Stored texts to compare on.")
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--no-switch", is_flag=True, help="Build and compare only; switch by running again without it.")
@click.option("--rollback", is_flag=True, help="Switch back to the collection the last migration replaced.")
@click.option("--json", "as_json", is_flag=True)
@embedder_option
@click.option(
    "--old-embedder",
    metavar="MODULE:FACTORY",
    help="The collection's current embedder, for the comparison when its model is not built in "
    "(without it that comparison is skipped).",
)
@click.pass_context
def migrate_model(ctx: click.Context, name: str, rollback: bool, as_json: bool, **o: Any) -> None:
    """Re-embed a collection with another model or dims while searches go on, then switch.

    Builds NAME__next, backfills it (resumable), prints overlap@K and the score
    shift on sampled texts, and swaps it in atomically; the old one stays as
    NAME__prev until you drop it.

    \b
    Example:
      semsearch migrate-model docs --model local --dims 256
      semsearch migrate-model docs --embedder mypkg.emb:make
      semsearch migrate-model notes --embedder mypkg.emb:v2 --old-embedder mypkg.emb:v1
      semsearch migrate-model docs --rollback
    """
    from semsearch import model_switch

    db = connect_db(ctx)
    if rollback:
        model_switch.rollback(db, name)
        click.echo(f"{name} is back on the collection it replaced; the newer one is {name}__next")
        return
    from semsearch.embeddings.factory import load_embedder

    embedder = None if o["embedder"] is None else load_embedder(o["embedder"], dims=o["dims"])
    old_embedder = None if o["old_embedder"] is None else load_embedder(o["old_embedder"])
    report = model_switch.migrate_model(
        db,
        name,
        embedder=embedder,
        old_embedder=old_embedder,
        model=o["model"],
        dims=o["dims"],
        compression=o["compression"],
        sample=o["sample"],
        k=o["k"],
        switch=not o["no_switch"],
        progress=not as_json,
    )
    click.echo(json.dumps(report.to_dict()) if as_json else str(report))
