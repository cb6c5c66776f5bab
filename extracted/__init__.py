"""Extracted services: one independently deployable Django project each; never imports monolith."""
