from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "monolith.imports"
    label = "imports"
    verbose_name = "Bulk imports"
