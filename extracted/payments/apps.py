from django.apps import AppConfig


class PaymentsServiceConfig(AppConfig):
    name = "extracted.payments"
    # Its own label (and so its own table names): never mistaken for the monolith's `payments`.
    label = "payments_service"
    verbose_name = "Payments service"
    default_auto_field = "django.db.models.BigAutoField"
