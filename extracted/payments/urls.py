"""URL map of the payments service: the monolith's /api/payments/ paths, health, schema."""

from django.urls import path

from outbox.metrics import metrics_view
from service_kit import errors, health
from service_kit.schema import SchemaView

from . import views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The outbox's relay and consumer figures of this half (docs/outbox.md, "Metrics").
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/payments/", views.PaymentListCreateView.as_view(), name="payment-list"),
    path(
        "api/payments/<uuid:payment_id>/",
        views.PaymentDetailView.as_view(),
        name="payment-detail",
    ),
    path(
        "api/payments/<uuid:payment_id>/refund/",
        views.PaymentRefundView.as_view(),
        name="payment-refund",
    ),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
