"""Links in answers name the host the client asked, even when a proxy forwarded the request."""

from decimal import Decimal

import pytest

from monolith.orders.models import Order

pytestmark = pytest.mark.django_db


def test_pagination_links_name_the_forwarded_host_not_the_half_that_served(auth_client, user):
    for _ in range(2):
        Order.objects.create(user=user, total=Decimal("1.00"))

    response = auth_client.get(
        "/api/orders/?page_size=1",
        HTTP_HOST="127.0.0.1:8001",
        HTTP_X_FORWARDED_HOST="shop.example:8000",
        HTTP_X_FORWARDED_PROTO="https",
    )

    assert response.status_code == 200
    assert response.json()["next"].startswith("https://shop.example:8000/api/orders/?")
