"""Quality: eval (recall, latency, nDCG, sweeps) and tune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from semsearch.cli.app import FILE, cell, embedder_option, main, open_collection, table
from semsearch.planner import MAX_K
from semsearch.readers import CRANFIELD_GRADES, load_vector, read_lines, read_qrels


def _queries(path: Path | None, sample: int | None) -> tuple[Any, int | None]:
    """(queries, sample) for evaluate/tune: a .npy of vectors, a text file, or sampled rows."""
    if path is not None and sample is not None:
        raise click.UsageError("expected --queries or --sample, not both")
    if path is None:
        return None, sample or 200
    return (load_vector(path) if path.suffix == ".npy" else read_lines(path)), None


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
@click.option("-k", type=click.IntRange(1, MAX_K), default=10, show_default=True)
@click.option("--qrels", type=FILE, help="Judgments (TREC, 3-column or JSONL): nDCG@10, recall@100.")
@click.option("--cranfield-grades", is_flag=True, help="qrels grade 1 is best, 4 least, -1 none.")
@click.option("--oversample", type=click.FloatRange(1, 1000), help="Default: the catalog's.")
@click.option("--ef-search", type=click.IntRange(1, 1000), help="Default: the catalog's or auto.")
@click.option("--oversamples", metavar="LIST", help="Sweep these factors, e.g. 1,2,4,8,16.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Sweep PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object (per sweep point).")
@embedder_option
@click.pass_context
def eval_(ctx: click.Context, name: str, as_json: bool, embedder: str | None, **o: Any) -> None:
    """Measure recall@K against exact search, latency, index size (and nDCG with --qrels).

    Queries are --queries (texts, one per line: the n-th is query id n in --qrels;
    or a .npy array) or --sample stored rows' own vectors (no --qrels: they are no
    judged queries).
    --plot or --oversamples sweeps the oversampling instead.

    \b
    Example:
      semsearch eval movies --sample 200 -k 10
      semsearch eval cran --queries cran_queries.txt --qrels cranqrel --cranfield-grades
      semsearch eval movies --plot recall.png --oversamples 1,2,4,8,16
    """
    from semsearch.evaluate import evaluate, plot_sweep, sweep

    if o["plot"] is not None:
        _require_matplotlib()
    if o["qrels"] is not None and o["queries_file"] is None:
        raise click.UsageError("expected --queries with --qrels: sampled rows are no judged queries")
    queries, sample = _queries(o["queries_file"], o["sample"])
    col = open_collection(ctx, name, embedder)
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
        table(head, [tuple(cell(getattr(r, c)) for c in cells) for r in reports])
    if o["plot"] is not None:
        click.echo(f"wrote {plot_sweep(reports, o['plot'])}", err=True)


@main.command()
@click.argument("name")
@click.option("--target", type=click.FloatRange(0, 1, min_open=True), default=0.99, show_default=True)
@click.option("-k", type=click.IntRange(1, MAX_K), default=10, show_default=True)
@click.option("--sample", type=click.IntRange(1), help="Stored rows as queries  [default: 200]")
@click.option("--queries", "queries_file", type=FILE, help="Texts, one per line, or a .npy array.")
@click.option("--max-oversample", type=click.FloatRange(1, 1000), default=64.0, show_default=True)
@click.option("--hybrid", is_flag=True, help="Tune hybrid fusion on --queries texts judged by --qrels instead.")
@click.option("--qrels", type=FILE, help="With --hybrid: judgments (TREC, 3-column or JSONL).")
@click.option("--cranfield-grades", is_flag=True, help="qrels grade 1 is best, 4 least, -1 none.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@embedder_option
@click.pass_context
def tune(ctx: click.Context, name: str, as_json: bool, embedder: str | None, **o: Any) -> None:
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
        tuned = open_collection(ctx, name, embedder).tune_hybrid(read_lines(o["queries_file"]), qrels)
        if as_json:
            click.echo(json.dumps(tuned.to_dict()))
        else:
            points = [(p.fusion, cell(p.vector_weight), cell(p.text_weight), cell(p.ndcg_at_10)) for p in tuned.tried]
            table(("fusion", "vector_weight", "text_weight", "ndcg@10"), points)
            click.echo(str(tuned))
        return
    queries, sample = _queries(o["queries_file"], o["sample"])
    col = open_collection(ctx, name, embedder)
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
        rows = [tuple(cell(getattr(p, c)) for c in cells) for p in result.tried]
        table(("oversample", "candidates", "ef_search", f"recall@{o['k']}", "p50_ms"), rows)
        click.echo(str(result))
    if not result.reached:
        click.echo(f"target recall {o['target']:g} not reached; stored the best found", err=True)


def _require_matplotlib() -> None:
    # checked before the sweep, which can take minutes, not after it
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise click.ClickException("--plot needs matplotlib: pip install 'semsearch[plot]'") from None
