"""The monolith: one Django project with the users, orders and payments apps."""

from .celery import app as celery_app

__all__ = ("celery_app",)
