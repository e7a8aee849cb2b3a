"""``manage.py semsearch_index``: create collections of registered models and (re)index their rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semsearch.django.management.base import SemsearchCommand
from semsearch.django.sync import reindex


class Command(SemsearchCommand):
    help = (
        "Create the collection of each registered model if missing, then make it match the model's rows: add and "
        "update every row (unchanged texts are not re-embedded), remove rows that are gone, embed pending rows. "
        "Repairs anything signals missed (QuerySet.update, bulk_create, raw SQL). "
        "Example: python manage.py semsearch_index --model articles.Article --batch-size 500"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_model_options(parser)
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per batch (default: 500).")

    def handle(self, *args: Any, models: list[str] | None, batch_size: int, verbosity: int, **options: Any) -> None:
        for reg in self.selected(models):
            report = reindex(reg, batch_size=max(1, batch_size), progress=verbosity >= 1)
            a = report.added
            backfilled = report.backfill.embedded if report.backfill is not None else 0
            self.stdout.write(
                f"{reg.label} -> {report.collection}: {a.inserted} inserted, {a.updated} updated, "
                f"{a.unchanged} unchanged, {report.removed} removed; {a.embedded} embedded, {a.reused} reused, "
                f"{backfilled} backfilled" + (f" (passages of {a.documents} document(s))" if a.documents else "")
            )
