"""The Django app ``semsearch.django`` (label ``semsearch``)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import pre_migrate


class SemsearchConfig(AppConfig):
    """Hooks semsearch into ``manage.py migrate`` and ``override_settings``; never touches the database here.

    Example (settings.py)::

        INSTALLED_APPS = [..., "semsearch.django", "articles"]
    """

    name = "semsearch.django"
    label = "semsearch"
    verbose_name = "semsearch"

    def ready(self) -> None:
        from semsearch.django import client, sync
        from semsearch.django.registry import registrations

        # models registered at import time: every model is loaded now, so their proxies can be connected too
        for reg in registrations():
            sync.connect_signals(reg)

        # sent for every app with a models module; client.upgrade_on_migrate acts once per run
        pre_migrate.connect(client.upgrade_on_migrate, dispatch_uid="semsearch.upgrade_on_migrate")
        setting_changed.connect(_settings_changed, dispatch_uid="semsearch.settings_changed")


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # a new SEMSEARCH or DATABASES may name another server or embedder: reopen on next use
    if setting in ("SEMSEARCH", "DATABASES"):
        from semsearch.django import client

        client.close()
