"""``manage.py semsearch_tune``: store the smallest oversampling reaching a target recall."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from semsearch.django.management.base import SemsearchCommand, queries
from semsearch.django.registry import registration_for


class Command(SemsearchCommand):
    help = (
        "Find the smallest oversampling of a registered model's collection that reaches --target recall@K and "
        "store it for its searches. Example: python manage.py semsearch_tune articles.Article --target 0.99 -k 10"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", metavar="APP.MODEL", help="A registered model, e.g. articles.Article.")
        parser.add_argument("--target", type=float, default=0.99, help="Recall to reach (default: 0.99).")
        parser.add_argument("-k", type=int, default=10, help="Results per query (default: 10).")
        parser.add_argument("--sample", type=int, help="Stored rows as queries (default: 200).")
        parser.add_argument("--queries", help="Query texts, one per line, or a .npy array of vectors.")
        parser.add_argument("--max-oversample", type=float, default=64.0, help="Upper bound (default: 64).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="The result as one JSON object.")

    def handle(self, *args: Any, model: str, as_json: bool, **o: Any) -> None:
        qs, sample = queries(o["queries"], o["sample"])
        col = registration_for(model).collection()
        result = col.tune(
            target_recall=o["target"], k=o["k"], sample=sample or 200, queries=qs, max_oversample=o["max_oversample"]
        )
        self.stdout.write(json.dumps(result.to_dict()) if as_json else str(result))
        if not result.reached:
            self.stderr.write(f"target recall {o['target']:g} not reached; stored the best found")
