"""The ``semsearch`` command: migrate, create, ingest, search, list, drop and demo."""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, astuple
from pathlib import Path
from typing import Any

import click
import numpy as np
import psycopg

from semsearch import migrate
from semsearch.collection import Collection
from semsearch.config import Settings
from semsearch.db import Database, _check_server, _redact, connect, schema_version
from semsearch.embedded import embedded_url
from semsearch.errors import SemsearchError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
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
    settings = Settings.from_env()
    url = ctx.obj or settings.database_url
    if url is None:
        url = embedded_url(settings.data_dir)
    _check_server(url)
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
    click.echo(f"schema at {_current(url) or 'base'} on {_redact(url)}")


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
        click.confirm(f"downgrade the schema to {revision}{warning} on {_redact(url)}?", abort=True)
    migrate.downgrade(url, revision)
    click.echo(f"schema at {_current(url) or 'base'} on {_redact(url)}")


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
@click.option(
    "--model", required=True, help='"local", an OpenAI model, or a label for your vectors.'
)
@click.option("--dims", type=click.IntRange(1), help="Vector size (default: the model's).")
@click.option(
    "--compression",
    metavar="PLAN",
    help="bit, halfvec, none, mrl:<d> or mrl-bit:<d> (default: bit from 1024 dims, else halfvec).",
)
@click.option("--storage", type=click.Choice(["vector", "halfvec"]), default="vector")
@click.option("--m", "hnsw_m", type=int, default=16, show_default=True, help="HNSW links per node.")
@click.option("--ef-construction", "hnsw_ef_construction", type=int, default=64, show_default=True)
@click.pass_context
def create(ctx: click.Context, name: str, **options: Any) -> None:
    """Create a collection.

    \b
    Example:
      semsearch create movies --model text-embedding-3-small --dims 1536 --compression bit
    """
    info = _connect(ctx).create_collection(name, **options).info
    click.echo(
        f"created {name}: {info.model}, {info.dims} dims, {info.storage} storage, "
        f"compression {info.compression}"
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
    totals = [0] * 5
    start = time.perf_counter()
    for path in files:
        kind = FORMATS.get(path.suffix.lower(), "text") if fmt == "auto" else fmt
        records = _checked(READERS[kind](path, names), col.dims, seen)
        got = col.add_many(records, batch_size=batch_size, progress=True, total=_count(path, kind))
        totals = [a + b for a, b in zip(totals, astuple(got), strict=True)]
    secs = time.perf_counter() - start
    ins, upd, same, emb, reused = totals
    n = ins + upd + same
    click.echo(
        f"{n} rows from {len(files)} file(s) in {secs:.1f}s ({n / max(secs, 1e-9):,.0f} rows/s): "
        f"{ins} inserted, {upd} updated, {same} unchanged; {emb} embedded, {reused} reused"
    )


class _Bad(click.ClickException):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"expected finite numbers, got {name}")  # Postgres jsonb has no NaN


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise _Bad(where, f"expected JSON, got {exc}") from None


# each reader yields (where, key, content, metadata, embedding) with where = "file:line"
def _read_jsonl(path: Path, fields: tuple[str, str, str]) -> Iterator[tuple[Any, ...]]:
    key_f, text_f, emb_f = fields
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad(where, "expected UTF-8 text, got invalid bytes") from None
            if not line.strip():
                continue
            obj = _json(line, where)
            if not isinstance(obj, dict):
                raise _Bad(where, f"expected a JSON object, got {type(obj).__name__}")
            for field in (key_f, text_f):
                if field not in obj:
                    raise _Bad(where, f"expected a {field!r} field, got fields {sorted(obj)}")
            key, content, emb = obj.pop(key_f), obj.pop(text_f), obj.pop(emb_f, None)
            meta = obj.pop("metadata", {})
            if not isinstance(meta, dict):
                raise _Bad(where, f"expected 'metadata' to be an object, got {type(meta).__name__}")
            yield where, key, content, {**obj, **meta}, emb


def _read_csv(path: Path, fields: tuple[str, str, str]) -> Iterator[tuple[Any, ...]]:
    key_f, text_f, emb_f = fields
    # utf-8-sig: spreadsheets often start their CSV exports with a byte-order mark
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, strict=True)
        try:
            header = reader.fieldnames or []
            if key_f not in header or text_f not in header:
                raise _Bad(f"{path}:1", f"expected columns {key_f!r} and {text_f!r}, got {header}")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row or None in row.values():
                    raise _Bad(where, f"expected {len(header)} cells, as many as the header")
                key, content, emb = row.pop(key_f), row.pop(text_f), row.pop(emb_f, "")
                yield where, key, content, row, _json(emb, where) if emb.strip() else None
        except (csv.Error, UnicodeDecodeError) as exc:
            # line_num is where the last good record ended; the bad one starts after it
            raise _Bad(f"{path}:{reader.line_num + 1}", f"expected UTF-8 CSV, got {exc}") from None


def _paragraphs(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad(
            str(path), f"expected UTF-8 text, got a bad byte at offset {exc.start}"
        ) from None
    found, line = [], 1
    for block in re.split(r"(\n(?:[ \t\r\f\v]*\n)+)", text):
        if block.strip():
            found.append((line + len(block) - len(block.lstrip("\n")), block.strip()))
        line += block.count("\n")
    return found


def _read_text(path: Path, fields: tuple[str, str, str]) -> Iterator[tuple[Any, ...]]:
    for n, (line, para) in enumerate(_paragraphs(path), 1):
        yield f"{path}:{line}", f"{path}:{n}", para, {"file": str(path), "line": line}, None


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "text": _read_text}


def _count(path: Path, kind: str) -> int | None:
    """Rows in a file, for the progress bar; None when it cannot be told cheaply."""
    if kind == "text":
        return len(_paragraphs(path))
    with path.open("rb") as f:
        lines = sum(1 for raw in f if raw.strip())
    # CSV cells may span lines, so its count is an upper bound; good enough for a bar
    return lines if kind == "jsonl" else max(lines - 1, 0)


def _checked(rows: Iterator[tuple[Any, ...]], dims: int, seen: dict[str, str]) -> Iterator[dict]:
    """Check each row where it was read, so a bad one is reported by file and line."""
    first_has_vec: tuple[str, bool] | None = None
    for where, key, content, meta, emb in rows:
        if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
            raise _Bad(where, f"expected a non-empty string or integer key, got {key!r}")
        if str(key) in seen:
            raise _Bad(
                where, f"expected unique keys, got {str(key)!r} again (first: {seen[str(key)]})"
            )
        seen[str(key)] = where
        if not isinstance(content, str) or not content.strip() or "\x00" in content:
            raise _Bad(where, f"expected non-empty text without NUL, got {content!r:.60}")
        if first_has_vec is None:
            first_has_vec = (where, emb is not None)
        elif first_has_vec[1] != (emb is not None):
            raise _Bad(
                where,
                f"expected an embedding on every row of a file or on none, got "
                f"{'one' if emb is not None else 'none'} here, the opposite at {first_has_vec[0]}",
            )
        if emb is not None:
            ok = isinstance(emb, list) and len(emb) == dims and all(_finite(x) for x in emb)
            if not ok or not any(emb):
                raise _Bad(where, f"expected an embedding of {dims} finite numbers, not all zero")
        yield {"key": key, "content": content, "metadata": meta, "embedding": emb}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@main.command()
@click.argument("name")
@click.argument("query", required=False)
@click.option("--vector-file", type=FILE, help="Query vector: a JSON list or a .npy file.")
@click.option("-k", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--exact", is_flag=True, help="Scan every full vector instead of the index.")
@click.option("--oversample", type=click.FloatRange(1, 1000), help="Candidates per wanted row.")
@click.option("--where", "where_json", metavar="JSON", help="Keep rows whose metadata contains it.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.pass_context
def search(ctx: click.Context, name: str, query: str | None, as_json: bool, **options: Any) -> None:
    """Find the K rows closest in meaning to QUERY (or to --vector-file).

    \b
    Example:
      semsearch search docs "rotate the log files" -k 5
      semsearch search movies --vector-file q.npy --where '{"year": 1995}' --json
    """
    vector_file, where_json = options.pop("vector_file"), options.pop("where_json")
    if (query is None) == (vector_file is None):
        raise click.UsageError("expected a QUERY or --vector-file, not both or neither")
    where = None
    if where_json is not None:
        where = _json(where_json, "--where")
        if not isinstance(where, dict):
            raise _Bad("--where", f"expected a JSON object, got {where_json!r}")
    vector = _load_vector(vector_file) if vector_file is not None else None
    col = _connect(ctx).collection(name)
    result = col.search(query, vector=vector, where=where, **options)
    if as_json:
        for rank, hit in enumerate(result, 1):
            click.echo(json.dumps({"rank": rank, **asdict(hit)}, ensure_ascii=False))
    else:
        rows = [
            (str(i), f"{h.score:.4f}", h.key, _short(h.content)) for i, h in enumerate(result, 1)
        ]
        _table(("rank", "score", "key", "content"), rows)
    if not result.complete:
        click.echo(f"only {len(result)} of {result.k} requested rows exist", err=True)


def _load_vector(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            vec = np.load(path, allow_pickle=False)
        else:
            vec = json.loads(path.read_text(encoding="utf-8"))
        arr = np.asarray(vec, dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise _Bad(
            str(path), f"expected a JSON list of numbers or a .npy vector, got {exc}"
        ) from None
    # a (1, d) array from np.save(q[None]) is still one vector
    return arr.ravel() if arr.ndim == 2 and arr.shape[0] == 1 else arr


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


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
