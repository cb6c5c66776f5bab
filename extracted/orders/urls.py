"""URL map of the orders service: the monolith's /api/orders/ paths, the catalogue, health.

Order ids are matched as plain strings: a malformed id is answered by the view as 404 in the
JSON contract (after authentication), exactly like an id that does not exist. `counts/` comes
before the id patterns, and is never an order id (ids are UUIDs).
"""

from django.urls import path

from service_kit import errors, health
from service_kit.schema import SchemaView

from . import views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/products/", views.ProductListApi.as_view(), name="product-list"),
    path("api/orders/", views.OrderListCreateApi.as_view(), name="order-list"),
    path("api/orders/counts/", views.OrderStatusCountsApi.as_view(), name="order-counts"),
    path("api/orders/<str:order_id>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("api/orders/<str:order_id>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("api/orders/<str:order_id>/ship/", views.OrderShipApi.as_view(), name="order-ship"),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
