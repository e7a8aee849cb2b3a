"""WSGI entry point (``gunicorn searchsite.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
application = get_wsgi_application()
