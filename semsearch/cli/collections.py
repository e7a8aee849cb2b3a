"""Collections: create, alter, info, rebuild-index, doctor, list, drop, grant."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from semsearch.cli.app import connect_db, embedder_option, main, table
from semsearch.collection import Collection
from semsearch.collection_info import CollectionInfo
from semsearch.passages.splitter import Splitter
from semsearch.plans import plan_examples


@main.command()
@click.argument("name")
@click.option("--model", help='"local", an OpenAI model, or a label for your vectors (or use --embedder).')
@click.option("--dims", type=click.IntRange(1), help="Vector size (default: the model's).")
@click.option(
    "--compression",
    metavar="PLAN",
    help=f"{plan_examples()}, or a funnel such as bit->mrl:256; a plan pins it (default: auto, the plan follows "
    "the collection's size).",
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
@click.option("--passages", is_flag=True, help="Each text is a document, split into passages and searched so.")
@click.option(
    "--max-tokens", type=click.IntRange(8, 100_000), help="With --passages: a passage's size, in the model's tokens."
)
@click.option("--overlap", type=click.IntRange(0), help="With --passages: tokens a passage repeats of the one before.")
@embedder_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    embedder: str | None,
    passages: bool,
    max_tokens: int | None,
    overlap: int | None,
    **options: Any,
) -> None:
    """Create a collection.

    With --passages each text added is a document: it is split into passages (paragraphs,
    then sentences, up to --max-tokens of the model's tokens, the default 256 for the local
    model and 512 for OpenAI's), and a search returns the best documents, each with its best
    passage's offsets.

    \b
    Example:
      semsearch create movies --model text-embedding-3-small --dims 1536 --compression bit
      semsearch create notes --embedder mypkg.emb:make --compression halfvec
      semsearch create manuals --model local --passages --max-tokens 200 --overlap 20
    """
    if options["model"] is None and embedder is None:
        raise click.UsageError("expected --model or --embedder")
    if not passages and (max_tokens is not None or overlap is not None):
        raise click.UsageError("expected --passages with --max-tokens or --overlap")
    if passages:
        options["passages"] = Splitter(max_tokens=max_tokens, overlap=overlap)
    if embedder is not None:
        from semsearch.embeddings.factory import load_embedder

        options["embedder"] = load_embedder(embedder, dims=options["dims"])
    _describe("created", connect_db(ctx).create_collection(name, **options).info)


def _describe(verb: str, info: CollectionInfo) -> None:
    click.echo(
        f"{verb} {info.name}: {info.model}, {info.dims} dims, {info.storage} storage, "
        f"compression {info.compression} ({info.plan_mode}), hnsw m={info.hnsw_m} "
        f"ef_construction={info.hnsw_ef_construction}"
        f", oversample {info.oversample:g}, autotune {'on' if info.autotune else 'off'}"
        + (f", passages {_passages(info.passages)}" if info.passages is not None else "")
    )


def _passages(config: dict[str, Any]) -> str:
    if config.get("splitter") == "default":
        return f"of {config.get('max_tokens')} tokens, overlap {config.get('overlap')}"
    return f"by {config.get('name', 'a custom splitter')}"


@main.command()
@click.argument("name")
@click.option(
    "--compression", metavar="PLAN", help=f"A new plan, pinned: {plan_examples()}; or auto (follows the size)."
)
@click.option("--m", "hnsw_m", type=click.IntRange(2, 100), help="HNSW links per node.")
@click.option("--ef-construction", "hnsw_ef_construction", type=click.IntRange(4, 1000))
@click.option("--oversample", type=click.FloatRange(1, 1000), help="Candidates per wanted row for later searches.")
@click.option("--autotune/--no-autotune", default=None, help="Tune after bulk loads (or not).")
@click.option("--blocking", is_flag=True, help="Build the index without CONCURRENTLY (faster; blocks writes).")
@click.pass_context
def alter(ctx: click.Context, name: str, blocking: bool, **options: Any) -> None:
    """Change a collection's compression, HNSW parameters, oversampling or autotune.

    A changed index is built next to the live one, then swapped in; searches go on.

    \b
    Example:
      semsearch alter movies --compression mrl:512
      semsearch alter movies --oversample 3 --no-autotune
    """
    if all(v is None for v in options.values()):
        raise click.UsageError(
            "expected at least one change: --compression, --m, --ef-construction, --oversample, --autotune"
        )
    col = connect_db(ctx).alter_collection(name, concurrently=not blocking, **options)
    _describe("altered", col.info)


@main.command()
@click.argument("name")
@click.pass_context
def info(ctx: click.Context, name: str) -> None:
    """Print collection NAME's definition, its size and why it has its compression plan.

    \b
    Example:
      semsearch info movies
    """
    col = connect_db(ctx).collection(name)
    i = col.info
    _describe(i.name, i)
    click.echo(f"rows: {col.count():,}" + (" documents" if i.passages is not None else ""))
    how = "automatic (follows the collection's size)" if i.plan_mode == "auto" else "pinned"
    click.echo(f"plan: {i.compression}, {how}")
    click.echo(f"reason: {i.plan_reason or 'none recorded (created before automatic plans)'}")
    if i.tuned_rows is not None:
        click.echo(f"tuned at {i.tuned_rows:,} rows: oversample {i.oversample:g}, ef_search {i.ef_search or 'auto'}")


@main.command("rebuild-index")
@click.argument("name")
@click.option("--blocking", is_flag=True, help="Build without CONCURRENTLY (faster; blocks writes).")
@click.pass_context
def rebuild_index(ctx: click.Context, name: str, blocking: bool) -> None:
    """Build the HNSW index again next to the live one and swap it in (e.g. after many deletes).

    \b
    Example:
      semsearch rebuild-index movies
    """
    secs = connect_db(ctx).collection(name).rebuild_index(progress=False, concurrently=not blocking)
    click.echo(f"rebuilt the hnsw index of {name} in {secs:.1f}s")


@main.command()
@click.argument("name", required=False)
@click.option("--repair", is_flag=True, help="Build a missing or invalid index, drop a killed build's leftover.")
@click.pass_context
def doctor(ctx: click.Context, name: str | None, repair: bool) -> None:
    """Check the HNSW index of collection NAME (or of every one) for what a killed load or build left.

    A missing or invalid index makes searches scan every row. Exits with status 1 when a
    problem stays (not repaired, or a build or bulk load is running).

    \b
    Example:
      semsearch doctor movies
      semsearch doctor movies --repair
    """
    db = connect_db(ctx)
    names = [name] if name is not None else [info.name for info in db.collections()]
    reports = [db.collection(n).doctor(repair=repair) for n in names]
    for report in reports:
        click.echo(str(report))
    if not all(r.healthy for r in reports):
        if not repair:
            click.echo(f"run `semsearch doctor {name or ''} --repair`".replace("  ", " "), err=True)
        ctx.exit(1)


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


@main.command("isolate-tenants")
@click.argument("name")
@click.option("--setting", default="app.tenant", show_default=True, help="The setting a session names its tenant in.")
@click.option("--off", is_flag=True, help="Remove the isolation.")
@click.pass_context
def isolate_tenants(ctx: click.Context, name: str, setting: str, off: bool) -> None:
    """Keep tenants of collection NAME apart in the database (row-level security, per-tenant BM25).

    Every role but the owner then sees only the tenant its session names
    (SET app.tenant = 'acme'), in the rows and in the text statistics.

    \b
    Example:
      semsearch isolate-tenants docs
      semsearch isolate-tenants docs --off
    """
    connect_db(ctx).isolate_tenants(name, setting=None if off else setting)
    click.echo(f"{name}: tenants shared" if off else f"{name}: tenants isolated by setting {setting}")


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
