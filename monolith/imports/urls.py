"""Routes of the imports API, mounted under /api/ by monolith.urls."""

from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("imports/", views.ImportJobCreateApi.as_view(), name="create"),
    path("imports/<str:job_id>/", views.ImportJobDetailApi.as_view(), name="detail"),
]
