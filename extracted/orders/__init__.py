"""The orders service: orders taken out of the monolith, event sourced, read through projections.

Run it with `manage.py runserver --settings=extracted.orders.settings` or
`gunicorn extracted.orders.wsgi`; see docs/step-3-orders-service.md.
"""
