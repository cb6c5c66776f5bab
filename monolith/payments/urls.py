"""Routes of the payments API, mounted under /api/ by monolith.urls."""

from django.urls import path

from . import views

urlpatterns = [
    path("payments/", views.PaymentListCreateView.as_view(), name="payment-list"),
    path("payments/<uuid:payment_id>/", views.PaymentDetailView.as_view(), name="payment-detail"),
    path(
        "payments/<uuid:payment_id>/refund/",
        views.PaymentRefundView.as_view(),
        name="payment-refund",
    ),
]
