"""The ``semsearch`` command: migrate, create, ingest, search, eval, tune, list, drop, demo."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import psycopg

from semsearch import migrate
from semsearch.catalog import schema_version
from semsearch.collection import Collection
from semsearch.db import Database, connect
from semsearch.errors import SemsearchError
from semsearch.ingest import AddResult
from semsearch.readers import (
    CRANFIELD_GRADES,
    FORMATS,
    READERS,
    bad,
    checked,
    count_rows,
    load_vector,
    parse_json,
    read_lines,
    read_qrels,
)
from semsearch.server import check_server, redact, resolve_url

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # the one place library errors become CLI errors: their messages are written for users
        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
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


def _connect(ctx: click.Context) -> Database:
    db = connect(ctx.obj)
    ctx.call_on_close(db.close)
    return db


def _server_url(ctx: click.Context) -> str:
    # the same resolution as connect(), without requiring the schema to be current
    url, _ = resolve_url(ctx.obj)
    check_server(url)
    return url


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
    url = _server_url(ctx)
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
    url = _server_url(ctx)
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
    now, head = _current(_server_url(ctx)), migrate.head()
    if now == head:
        click.echo(f"{now} (head)")
    else:
        click.echo(f"{now or 'none'} (head is {head}: run `semsearch db upgrade`)")


def _current(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        return schema_version(conn)


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
@click.pass_context
def create(ctx: click.Context, name: str, **options: Any) -> None:
    """Create a collection.

    \b
    Example:
      semsearch create movies --model text-embedding-3-small --dims 1536 --compression bit
    """
    info = _connect(ctx).create_collection(name, **options).info
    click.echo(
        f"created {name}: {info.model}, {info.dims} dims, {info.storage} storage, compression {info.compression}"
    )


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
    col = _connect(ctx).collection(name)
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


def _search_options(fn: Any) -> Any:
    """The options search and explain share."""
    for option in reversed(
        [
            click.argument("name"),
            click.argument("query", required=False),
            click.option("--vector-file", type=FILE, help="Query vector: a JSON list or a .npy file."),
            click.option("-k", type=click.IntRange(1, 10_000), default=10, show_default=True),
            click.option(
                "--mode", type=click.Choice(["vector", "text", "hybrid"]), default="vector", show_default=True
            ),
            click.option("--exact", is_flag=True, help="Scan every full vector instead of the index."),
            click.option("--oversample", type=click.FloatRange(1, 1000), help="Candidates per wanted row."),
            click.option("--where", "where_json", metavar="JSON", help="Metadata filter, e.g. '{\"year\": 1995}'."),
            click.option("--tenant", help="Only this tenant's rows."),
        ]
    ):
        fn = option(fn)
    return fn


def _search_call(ctx: click.Context, name: str, query: str | None, options: dict[str, Any]) -> tuple[Collection, dict]:
    vector_file, where_json = options.pop("vector_file"), options.pop("where_json")
    if options["mode"] == "vector" and (query is None) == (vector_file is None):
        raise click.UsageError("expected a QUERY or --vector-file, not both or neither")
    if options["mode"] != "vector" and query is None:
        raise click.UsageError(f"expected a QUERY for --mode {options['mode']}")
    where = None
    if where_json is not None:
        where = parse_json(where_json, "--where")
        if not isinstance(where, dict):
            raise bad("--where", f"expected a JSON object, got {where_json!r}")
    vector = load_vector(vector_file) if vector_file is not None else None
    return _connect(ctx).collection(name), {"vector": vector, "where": where, **options}


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
    _connect(ctx).grant(role, name, write=write)
    click.echo(f"granted {role} {'search and write' if write else 'search'} on {name}")


@main.command()
@_search_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.pass_context
def search(ctx: click.Context, name: str, query: str | None, as_json: bool, **options: Any) -> None:
    """Find the K rows closest in meaning to QUERY (or to --vector-file).

    \b
    Example:
      semsearch search docs "rotate the log files" -k 5
      semsearch search docs "rotate the log files" --mode hybrid --tenant acme
      semsearch search movies --vector-file q.npy --where '{"year": 1995}' --json
    """
    col, kwargs = _search_call(ctx, name, query, options)
    result = col.search(query, **kwargs)
    if as_json:
        for rank, hit in enumerate(result, 1):
            click.echo(json.dumps({"rank": rank, **asdict(hit)}, ensure_ascii=False))
    else:
        rows = [(str(i), f"{h.score:.4f}", h.key, _short(h.content)) for i, h in enumerate(result, 1)]
        _table(("rank", "score", "key", "content"), rows)
    if not result.complete:
        click.echo(f"only {len(result)} of {result.k} requested rows exist", err=True)


@main.command()
@_search_options
@click.pass_context
def explain(ctx: click.Context, name: str, query: str | None, **options: Any) -> None:
    """Print the SQL a search runs and its EXPLAIN (ANALYZE, BUFFERS); nothing is changed.

    \b
    Example:
      semsearch explain docs "rotate the log files" -k 5
      semsearch explain docs "rotate the log files" --mode text --where '{"lang": "en"}'
    """
    col, kwargs = _search_call(ctx, name, query, options)
    click.echo(str(col.explain(query, **kwargs)))


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _queries(path: Path | None, sample: int | None) -> tuple[Any, int | None]:
    """(queries, sample) for evaluate/tune: a .npy of vectors, a text file, or sampled rows."""
    if path is not None and sample is not None:
        raise click.UsageError("expected --queries or --sample, not both")
    if path is None:
        return None, sample or 200
    return (load_vector(path) if path.suffix == ".npy" else read_lines(path)), None


def _cell(value: Any) -> str:
    if value is None:
        return "auto"  # the only None in sweep and tuning tables: ef_search
    if isinstance(value, float):
        return f"{value:.4g}" if value < 1000 else f"{value:,.0f}"
    return str(value)


def _oversamples(text: str) -> list[float]:
    try:
        factors = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        factors = []
    if not factors or not all(1 <= f <= 1000 for f in factors):
        raise click.BadParameter(f"expected factors between 1 and 1000 like 1,2,4,8, got {text!r}")
    return factors


@main.command("eval")
@click.argument("name")
@click.option("--queries", "queries_file", type=FILE, help="Texts, one per line, or a .npy array.")
@click.option("--sample", type=click.IntRange(1), help="Stored rows as queries  [default: 200]")
@click.option("-k", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--qrels", type=FILE, help="Judgments (TREC, 3-column or JSONL): nDCG@10, recall@100.")
@click.option("--cranfield-grades", is_flag=True, help="qrels grade 1 is best, 4 least, -1 none.")
@click.option("--oversample", type=click.FloatRange(1, 1000), help="Default: the catalog's.")
@click.option("--ef-search", type=click.IntRange(1, 1000), help="Default: the catalog's or auto.")
@click.option("--oversamples", metavar="LIST", help="Sweep these factors, e.g. 1,2,4,8,16.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Sweep PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object (per sweep point).")
@click.pass_context
def eval_(ctx: click.Context, name: str, as_json: bool, **o: Any) -> None:
    """Measure recall@K against exact search, latency, index size (and nDCG with --qrels).

    Queries are --queries (texts, one per line: the n-th is query id n in --qrels;
    or a .npy array) or --sample stored rows' own vectors (ids: their keys).
    --plot or --oversamples sweeps the oversampling instead.

    \b
    Example:
      semsearch eval movies --sample 200 -k 10
      semsearch eval cran --queries cran_queries.txt --qrels cranqrel --cranfield-grades
      semsearch eval movies --plot recall.png --oversamples 1,2,4,8,16
    """
    from semsearch.evaluate import evaluate, plot_sweep, sweep

    queries, sample = _queries(o["queries_file"], o["sample"])
    col = _connect(ctx).collection(name)
    if o["plot"] is None and o["oversamples"] is None:
        grades = CRANFIELD_GRADES if o["cranfield_grades"] else None
        qrels = read_qrels(o["qrels"], grades=grades) if o["qrels"] else None
        settings = {"oversample": o["oversample"], "ef_search": o["ef_search"]}
        report = evaluate(col, queries, sample=sample, k=o["k"], qrels=qrels, **settings)
        click.echo(json.dumps(report.to_dict()) if as_json else report.table())
        return
    if o["qrels"] is not None or o["oversample"] is not None:
        raise click.UsageError("expected --qrels and --oversample without a sweep (--plot)")
    factors = _oversamples(o["oversamples"] or "1,2,4,8,16")
    reports = sweep(col, queries, sample=sample, oversamples=factors, k=o["k"], ef_search=o["ef_search"])
    if as_json:
        for r in reports:
            click.echo(json.dumps(r.to_dict()))
    else:
        head = ("oversample", "candidates", f"recall@{o['k']}", "p50_ms", "p95_ms", "qps")
        cells = ("oversample", "candidates", "recall", "p50_ms", "p95_ms", "qps")
        _table(head, [tuple(_cell(getattr(r, c)) for c in cells) for r in reports])
    if o["plot"] is not None:
        click.echo(f"wrote {plot_sweep(reports, o['plot'])}", err=True)


@main.command()
@click.argument("name")
@click.option("--target", type=click.FloatRange(0, 1, min_open=True), default=0.99, show_default=True)
@click.option("-k", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--sample", type=click.IntRange(1), help="Stored rows as queries  [default: 200]")
@click.option("--queries", "queries_file", type=FILE, help="Texts, one per line, or a .npy array.")
@click.option("--max-oversample", type=click.FloatRange(1, 1000), default=64.0, show_default=True)
@click.option("--hybrid", is_flag=True, help="Tune hybrid fusion on --queries texts judged by --qrels instead.")
@click.option("--qrels", type=FILE, help="With --hybrid: judgments (TREC, 3-column or JSONL).")
@click.option("--cranfield-grades", is_flag=True, help="qrels grade 1 is best, 4 least, -1 none.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.pass_context
def tune(ctx: click.Context, name: str, as_json: bool, **o: Any) -> None:
    """Find the smallest oversampling reaching --target recall@K and store it for searches
    (or, with --hybrid, the fusion and weights with the best nDCG@10 on judged queries).

    \b
    Example:
      semsearch tune movies --target 0.99 -k 10 --sample 200
      semsearch tune docs --hybrid --queries cran.txt --qrels cranqrel --cranfield-grades
    """
    if o["hybrid"]:
        if o["queries_file"] is None or o["qrels"] is None:
            raise click.UsageError("expected --queries (texts, one per line) and --qrels with --hybrid")
        qrels = read_qrels(o["qrels"], grades=CRANFIELD_GRADES if o["cranfield_grades"] else None)
        tuned = _connect(ctx).collection(name).tune_hybrid(read_lines(o["queries_file"]), qrels)
        if as_json:
            click.echo(json.dumps(tuned.to_dict()))
        else:
            points = [
                (p.fusion, _cell(p.vector_weight), _cell(p.text_weight), _cell(p.ndcg_at_10)) for p in tuned.tried
            ]
            _table(("fusion", "vector_weight", "text_weight", "ndcg@10"), points)
            click.echo(str(tuned))
        return
    queries, sample = _queries(o["queries_file"], o["sample"])
    col = _connect(ctx).collection(name)
    result = col.tune(
        target_recall=o["target"],
        k=o["k"],
        sample=sample or 200,
        queries=queries,
        max_oversample=o["max_oversample"],
    )
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        cells = ("oversample", "candidates", "ef_search", "recall", "p50_ms")
        rows = [tuple(_cell(getattr(p, c)) for c in cells) for p in result.tried]
        _table(("oversample", "candidates", "ef_search", f"recall@{o['k']}", "p50_ms"), rows)
        click.echo(str(result))
    if not result.reached:
        click.echo(f"target recall {o['target']:g} not reached; stored the best found", err=True)


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
    col = _connect(ctx).collection(name)
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
@click.pass_context
def migrate_model(ctx: click.Context, name: str, rollback: bool, as_json: bool, **o: Any) -> None:
    """Re-embed a collection with another model or dims while searches go on, then switch.

    Builds NAME__next, backfills it (resumable), prints overlap@K and the score
    shift on sampled texts, and swaps it in atomically; the old one stays as
    NAME__prev until you drop it.

    \b
    Example:
      semsearch migrate-model docs --model local --dims 256
      semsearch migrate-model docs --rollback
    """
    from semsearch import model_migration

    db = _connect(ctx)
    if rollback:
        model_migration.rollback(db, name)
        click.echo(f"{name} is back on the collection it replaced; the newer one is {name}__next")
        return
    report = model_migration.migrate_model(
        db,
        name,
        model=o["model"],
        dims=o["dims"],
        compression=o["compression"],
        sample=o["sample"],
        k=o["k"],
        switch=not o["no_switch"],
        progress=not as_json,
    )
    click.echo(json.dumps(report.to_dict()) if as_json else str(report))


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per collection.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List collections with their model, size and compression.

    \b
    Example:
      semsearch list --json
    """
    db = _connect(ctx)
    infos = [(info, Collection(db, info).count()) for info in db.collections()]
    if as_json:
        for info, n in infos:
            click.echo(json.dumps({**asdict(info), "rows": n}))
    elif not infos:
        click.echo("no collections: create one with `semsearch create`", err=True)
    else:
        rows = [(i.name, i.model, str(i.dims), i.compression, str(n)) for i, n in infos]
        _table(("name", "model", "dims", "compression", "rows"), rows)


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
    db = _connect(ctx)
    n = db.collection(name).count()
    if not yes:
        click.confirm(f"drop collection {name!r} and its {n} rows?", abort=True)
    db.drop_collection(name)
    click.echo(f"dropped {name} ({n} rows)")


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

    run_demo(_connect(ctx), rows=rows, echo=click.echo)
