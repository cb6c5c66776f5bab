"""Read the daily totals."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from .models import DailyStatusTotal


def daily_totals(*, day_from: date | None = None, day_to: date | None = None) -> QuerySet:
    """Return the totals between two UTC days (inclusive), newest day first."""
    rows = DailyStatusTotal.objects.all()
    if day_from is not None:
        rows = rows.filter(day__gte=day_from)
    if day_to is not None:
        rows = rows.filter(day__lte=day_to)
    return rows
