"""Routes of the orders API, mounted under /api/ by monolith.urls.

Order ids are matched as plain strings: a malformed id is answered by the view as 404 in the
JSON contract (after authentication), exactly like an id that does not exist.
"""

from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("products/", views.ProductListApi.as_view(), name="products"),
    path("orders/", views.OrderListCreateApi.as_view(), name="list"),
    path("orders/<str:order_id>/", views.OrderDetailApi.as_view(), name="detail"),
    path("orders/<str:order_id>/cancel/", views.OrderCancelApi.as_view(), name="cancel"),
    path("orders/<str:order_id>/ship/", views.OrderShipApi.as_view(), name="ship"),
]
