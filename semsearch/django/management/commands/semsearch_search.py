"""``manage.py semsearch_search``: search a registered model from the shell."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from semsearch.django.management.base import SemsearchCommand
from semsearch.django.search import semantic_search
from semsearch.readers import parse_json


class Command(SemsearchCommand):
    help = (
        "Print the K instances of a registered model closest in meaning to QUERY, best first. Example: "
        'python manage.py semsearch_search articles.Article "brewing green tea" -k 5 --where \'{"lang": "en"}\''
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", metavar="APP.MODEL", help="A registered model, e.g. articles.Article.")
        parser.add_argument("query")
        parser.add_argument("-k", type=int, default=10, help="How many results (default: 10).")
        parser.add_argument("--mode", choices=("vector", "text", "hybrid"), default="vector")
        parser.add_argument("--where", metavar="JSON", help="Keep rows whose metadata matches this filter.")
        parser.add_argument("--tenant", help="Keep one tenant's rows.")
        parser.add_argument("--exact", action="store_true", help="Scan every full vector instead of the index.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="One JSON object per result.")

    def handle(self, *args: Any, model: str, query: str, where: str | None, as_json: bool, **o: Any) -> None:
        filters = parse_json(where, "--where") if where is not None else None
        if filters is not None and not isinstance(filters, dict):
            raise CommandError(f"expected --where as a JSON object, got {where!r}")
        search = {"k": o["k"], "mode": o["mode"], "where": filters, "tenant": o["tenant"]}
        if o["exact"]:
            search["exact"] = True
        found = semantic_search(model, query, **search)
        for rank, obj in enumerate(found, 1):
            best = obj.semsearch_passage  # a model registered with passages=: where in its text the hit is
            if as_json:
                record = {"rank": rank, "pk": str(obj.pk), "score": obj.semsearch_score, "object": str(obj)}
                if best is not None:
                    record["passage"] = {"seq": best.seq, "start": best.start, "end": best.end, "text": best.text}
                self.stdout.write(json.dumps(record, ensure_ascii=False))
            else:
                self.stdout.write(f"{rank:>4}  {obj.semsearch_score:.4f}  {obj.pk!s:>8}  {_short(str(obj))}")
                if best is not None:
                    self.stdout.write(f"{'':>24}[{best.start}:{best.end}] {_short(best.text, 70)}")
        if not found:
            self.stderr.write("no results")


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
