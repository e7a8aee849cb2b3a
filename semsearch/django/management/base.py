"""What the ``semsearch_*`` management commands share: error reporting and model selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from semsearch.django.registry import Registration, registration_for, registrations
from semsearch.errors import SemsearchError
from semsearch.readers import load_vector, read_lines


class SemsearchCommand(BaseCommand):
    """A command whose semsearch errors (written for users) become ``CommandError``."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except SemsearchError as exc:
            raise CommandError(str(exc)) from exc

    def add_model_options(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            action="append",
            dest="models",
            metavar="APP.MODEL",
            help="A registered model (repeatable; default: every registered model).",
        )

    def selected(self, labels: list[str] | None) -> list[Registration]:
        chosen = [registration_for(label) for label in labels] if labels else registrations()
        if not chosen:
            raise CommandError("no models registered with semsearch: see semsearch.django.register")
        return chosen


def queries(path: str | None, sample: int | None) -> tuple[Any, int | None]:
    """(queries, sample) for eval and tune: a .npy of vectors, a text file (one per line), or sampled rows."""
    if path is not None and sample is not None:
        raise CommandError("expected --queries or --sample, not both")
    if path is None:
        return None, sample or 200
    file = Path(path)
    return (load_vector(file) if file.suffix == ".npy" else read_lines(file)), None
