"""WSGI entry point of the users service (gunicorn extracted.users.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "extracted.users.settings")
application = get_wsgi_application()
