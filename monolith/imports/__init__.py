"""Bulk imports of users or products from an uploaded CSV file, processed by a Celery task."""
