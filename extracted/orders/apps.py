from django.apps import AppConfig


class OrdersServiceConfig(AppConfig):
    name = "extracted.orders"
    # Its own label (and so its own table names): never mistaken for the monolith's `orders`.
    label = "orders_service"
    verbose_name = "Orders service"
    default_auto_field = "django.db.models.BigAutoField"
