"""The payments service: the payments API taken out of the monolith, with its own database.

Run it with `manage.py runserver --settings=extracted.payments.settings` or
`gunicorn extracted.payments.wsgi`; see docs/step-1-payments-service.md.
"""
