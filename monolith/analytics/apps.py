from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "monolith.analytics"
    label = "analytics"
    verbose_name = "Analytics"
