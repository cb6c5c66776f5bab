from django.apps import AppConfig


class UsersServiceConfig(AppConfig):
    name = "extracted.users"
    # Its own label (and so its own table names): never mistaken for the monolith's `users`.
    label = "users_service"
    verbose_name = "Users service"
    default_auto_field = "django.db.models.BigAutoField"
