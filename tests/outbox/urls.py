"""URLconf of the metrics view test: the outbox's URLs mounted as a service would."""

from django.urls import include, path

urlpatterns = [path("_outbox/", include("outbox.urls"))]
