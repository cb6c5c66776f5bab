"""URL map of the monolith: the API under /api/, the schema, health and the admin."""

from django.contrib import admin
from django.urls import include, path

from outbox.metrics import metrics_view
from service_kit import errors, health
from service_kit.schema import SchemaView

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The outbox's relay and consumer figures of this half (docs/outbox.md, "Metrics").
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/", include("monolith.users.urls")),
    path("api/", include("monolith.orders.urls")),
    path("api/", include("monolith.payments.urls")),
    path("api/", include("monolith.imports.urls")),
    path("admin/", admin.site.urls),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
