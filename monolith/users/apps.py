from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "monolith.users"
    label = "users"
    verbose_name = "Users"
