"""URL map of the users service: the monolith's users and auth paths, health, schema."""

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
    path("api/users/", views.UsersView.as_view(), name="users"),
    path("api/users/me/", views.MeView.as_view(), name="me"),
    path("api/auth/token/", views.TokenLoginView.as_view(), name="token"),
    path("api/auth/logout/", views.LogoutView.as_view(), name="logout"),
]

handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500
