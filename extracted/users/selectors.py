"""Reads of users: the staff listing and its search (the monolith's, on this service's table)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import User


def user_list(*, search: str = "") -> QuerySet[User]:
    """Return users ordered by id; each word of `search` must occur in the email or full name.

    Matching ignores case, so `?search=ADA love` finds "Ada Lovelace <ada@example.com>".
    """
    users = User.objects.all()
    for term in search.split():
        users = users.filter(Q(email__icontains=term) | Q(full_name__icontains=term))
    return users.order_by("id")
