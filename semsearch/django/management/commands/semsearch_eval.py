"""``manage.py semsearch_eval``: recall, latency and size of a registered model's collection."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from semsearch.django.management.base import SemsearchCommand, queries
from semsearch.django.registry import registration_for
from semsearch.readers import CRANFIELD_GRADES, read_qrels


class Command(SemsearchCommand):
    help = (
        "Measure recall@K of the collection of a registered model against exact search, its latency and size "
        "(and nDCG@10 with --qrels). Queries: --queries (a text per line, or a .npy array) or --sample stored rows. "
        "Example: python manage.py semsearch_eval articles.Article --sample 200 -k 10"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", metavar="APP.MODEL", help="A registered model, e.g. articles.Article.")
        parser.add_argument("--queries", help="Query texts, one per line, or a .npy array of vectors.")
        parser.add_argument("--sample", type=int, help="Stored rows as queries (default: 200).")
        parser.add_argument("-k", type=int, default=10, help="Results per query (default: 10).")
        parser.add_argument("--qrels", help="Relevance judgments (TREC, 3-column or JSONL); keys are pks.")
        parser.add_argument("--cranfield-grades", action="store_true", help="qrels grade 1 is best, 4 least.")
        parser.add_argument("--oversample", type=float, help="Candidates per wanted row (default: the catalog's).")
        parser.add_argument("--ef-search", type=int, help="HNSW ef_search (default: the catalog's or auto).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="The report as one JSON object.")

    def handle(self, *args: Any, model: str, as_json: bool, **o: Any) -> None:
        from semsearch.evaluate import evaluate

        qs, sample = queries(o["queries"], o["sample"])
        grades = CRANFIELD_GRADES if o["cranfield_grades"] else None
        qrels = read_qrels(o["qrels"], grades=grades) if o["qrels"] else None
        col = registration_for(model).collection()
        report = evaluate(
            col, qs, sample=sample, k=o["k"], qrels=qrels, oversample=o["oversample"], ef_search=o["ef_search"]
        )
        self.stdout.write(json.dumps(report.to_dict()) if as_json else report.table())
