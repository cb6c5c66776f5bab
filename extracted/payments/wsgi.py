"""WSGI entry point of the payments service (gunicorn extracted.payments.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "extracted.payments.settings")
application = get_wsgi_application()
