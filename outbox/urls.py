"""Mount with `path("_outbox/", include("outbox.urls"))`: metrics at `_outbox/metrics`."""

from django.urls import path

from .metrics import metrics_view

app_name = "outbox"
urlpatterns = [path("metrics", metrics_view, name="metrics")]
