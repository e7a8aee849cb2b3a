"""Settings of the semsearch example project.

The database: ``SEMSEARCH_TEST_DATABASE_URL`` or ``DATABASE_URL`` (any Postgres with
pgvector, as a URL or ``key=value`` string); with neither, semsearch's embedded
Postgres (database ``django_example``), so the project runs with no setup at all.
"""

import os
import secrets
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

BASE_DIR = Path(__file__).resolve().parent.parent
# Safe to copy: debug pages (tracebacks, settings) only when asked for with DJANGO_DEBUG=1,
# and no secret in the source (a fresh one per process unless DJANGO_SECRET_KEY is set)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]  # testserver: Django's test client

INSTALLED_APPS = ["semsearch.django", "articles"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "searchsite.urls"
WSGI_APPLICATION = "searchsite.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _database(url: str) -> dict:
    """A DATABASES entry from a libpq URL or key=value string."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", ""),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        "OPTIONS": params,  # sslmode and other libpq parameters
    }


_url = os.environ.get("SEMSEARCH_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
if not _url:
    from semsearch.config import Settings
    from semsearch.embedded import embedded_url

    _url = embedded_url(Settings.from_env().data_dir, database="django_example")
DATABASES = {"default": _database(_url)}

SEMSEARCH = {
    "DATABASE": "default",  # collections live next to the articles table
    "EMBEDDER": "local",  # offline wordllama; or "text-embedding-3-small" with OPENAI_API_KEY
    "DIMS": 256,
    "COMPRESSION": "halfvec",
    # "deferred": saves only store the text; `manage.py semsearch_backfill` embeds it later
    "SYNC": os.environ.get("SEMSEARCH_SYNC", "immediate"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"semsearch.django": {"handlers": ["console"], "level": "INFO"}},
}
