"""``manage.py semsearch_upgrade``: install or upgrade semsearch's schema."""

from __future__ import annotations

from typing import Any

import psycopg
from django.core.management.base import CommandParser

from semsearch import migrate
from semsearch.catalog import schema_version
from semsearch.django.conf import SemsearchSettings
from semsearch.django.management.base import SemsearchCommand
from semsearch.server import check_server, redact


class Command(SemsearchCommand):
    help = (
        "Install or upgrade semsearch's schema (catalog and SQL functions) on SEMSEARCH['DATABASE'] or ['URL']. "
        "`migrate` does this too while SEMSEARCH['UPGRADE_ON_MIGRATE'] is on. "
        "Example: python manage.py semsearch_upgrade"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--revision", default="head", help="Migration to upgrade to (default: head).")

    def handle(self, *args: Any, revision: str, **options: Any) -> None:
        url = SemsearchSettings.load().url()
        check_server(url)
        migrate.upgrade(url, revision)
        with psycopg.connect(url, autocommit=True) as conn:
            current = schema_version(conn)
        self.stdout.write(f"semsearch schema at {current or 'base'} on {redact(url)}")
