"""Routes of the users app, mounted under /api/."""

from django.urls import path

from . import views

app_name = "users"

urlpatterns = [
    path("users/", views.UsersView.as_view(), name="users"),
    path("users/me/", views.MeView.as_view(), name="me"),
    path("auth/token/", views.TokenLoginView.as_view(), name="token"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
]
