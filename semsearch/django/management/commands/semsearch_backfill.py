"""``manage.py semsearch_backfill``: embed rows stored pending (``SEMSEARCH['SYNC'] = "deferred"``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semsearch.django.management.base import SemsearchCommand


class Command(SemsearchCommand):
    help = (
        "Embed the pending rows of registered models' collections (stored on commit with SYNC='deferred'), in "
        "resumable batches: safe to interrupt and rerun. Run it from cron or a worker. "
        "Example: python manage.py semsearch_backfill --dry-run"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_model_options(parser)
        parser.add_argument("--batch-size", type=int, default=256, help="Rows per embedding call (default: 256).")
        parser.add_argument("--limit", type=int, help="Embed at most this many rows per collection, then stop.")
        parser.add_argument("--dry-run", action="store_true", help="Only count pending rows and estimate the cost.")

    def handle(
        self,
        *args: Any,
        models: list[str] | None,
        batch_size: int,
        limit: int | None,
        dry_run: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        for reg in self.selected(models):
            col = reg.collection()
            result = col.backfill(
                batch_size=batch_size, limit=limit, dry_run=dry_run, progress=verbosity >= 1 and not dry_run
            )
            cost = "unknown" if result.est_cost_usd is None else f"${result.est_cost_usd:,.4f}"
            line = f"{reg.label} -> {col.name}: {result.pending:,} pending, about {result.est_tokens:,} tokens ({cost})"
            if not dry_run:
                line += f"; embedded {result.embedded:,} in {result.batches} batches"
            held = col.quarantined()
            if held:
                line += f"; {len(held):,} in quarantine (refused by the provider): " + ", ".join(
                    k for k, _ in held[:10]
                )
            self.stdout.write(line)
