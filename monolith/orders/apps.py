from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "monolith.orders"
    label = "orders"
    verbose_name = "Orders"
