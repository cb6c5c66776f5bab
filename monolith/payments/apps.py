from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "monolith.payments"
    label = "payments"
    verbose_name = "Payments"
