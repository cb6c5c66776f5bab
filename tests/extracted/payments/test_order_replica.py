"""An order the replica has not heard of yet: ask its owner, else wait a bounded time."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from extracted.payments.models import OrderReplica, Payment
from extracted.payments.replicas import order_replica_apply
from service_kit.identity import HEADER

from .conftest import assert_refund_of_shipped_order_refused

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner(settings):
    """A fake orders owner on an ephemeral port: owner.orders[id] = body; owner.seen = headers."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server.seen.append(dict(self.headers))
            order_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            body = server.orders.get(order_id)
            status = server.status or (200 if body else 404)
            payload = json.dumps(body or {"error": "not_found", "detail": "No such order."})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.orders, server.seen, server.status = {}, [], None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.STRANGLER_ORDERS_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def _owned(order_id, status="pending", total="19.90"):
    return {"id": str(order_id), "status": status, "total": total, "currency": "EUR", "items": []}


def test_an_order_not_replicated_yet_is_fetched_from_its_owner_as_the_caller(
    auth_client, pay, owner, user_id
):
    order_id = uuid.uuid4()
    owner.orders[str(order_id)] = _owned(order_id)

    response = auth_client.post(
        "/api/payments/",
        {"order_id": str(order_id), "card_number": "4242424242424242"},
        format="json",
        headers={"Idempotency-Key": "k", "Authorization": "Bearer tok"},
    )

    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "19.90"
    replica = OrderReplica.objects.get(pk=order_id)
    assert (replica.user_id, replica.status, replica.source) == (user_id, "paid", "payment")
    assert owner.seen[0]["Authorization"] == "Bearer tok"
    # The caller's identity was signed for this service, method and path: not forwarded.
    assert HEADER not in owner.seen[0]


def test_an_order_its_owner_does_not_know_is_a_404(auth_client, pay, owner, provider):
    response = pay(auth_client, uuid.uuid4())

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert provider.charges == []
    assert not OrderReplica.objects.exists()


def test_when_the_owner_fails_a_payment_waits_for_the_order_placed_in_flight(
    settings, auth_client, pay, owner, user_id
):
    owner.status = 503
    settings.STRANGLER_ORDER_REPLICA_WAIT_MS = 3000
    order_id = uuid.uuid4()

    def event_arrives():
        time.sleep(0.3)
        order_replica_apply(
            order_id=order_id,
            user_id=user_id,
            status="pending",
            total="5.00",
            currency="EUR",
            source="event",
        )
        connection.close()

    threading.Thread(target=event_arrives).start()
    started = time.monotonic()
    response = pay(auth_client, order_id)

    assert response.status_code == 201, response.json()
    assert 0.25 < time.monotonic() - started < 3.0


def test_the_wait_is_bounded_and_ends_in_a_503_that_may_be_retried(
    settings, auth_client, pay, owner
):
    owner.status = 500
    settings.STRANGLER_ORDER_REPLICA_WAIT_MS = 200

    started = time.monotonic()
    response = pay(auth_client, uuid.uuid4(), key="again")

    assert response.status_code == 503
    assert "retry with the same Idempotency-Key" in response.json()["detail"]
    assert 0.2 <= time.monotonic() - started < 2.0


def test_a_late_order_placed_never_moves_the_replica_back(make_order, user_id):
    order = make_order(user_id, status="paid")

    order_replica_apply(
        order_id=order.order_id,
        user_id=user_id,
        status="pending",
        total="25.00",
        currency="EUR",
        source="event",
    )

    order.refresh_from_db()
    assert order.status == "paid"


def test_an_order_the_owner_cancelled_is_never_charged_though_its_event_is_in_flight(
    auth_client, pay, owner, provider, order
):
    owner.orders[str(order.pk)] = _owned(order.pk, status="cancelled", total="25.00")

    response = pay(auth_client, order.pk)

    assert response.status_code == 409
    assert response.json() == {
        "error": "invalid_transition",
        "detail": f"Order {order.pk} is 'cancelled', not 'pending': only a pending order can be "
        "paid.",
        "from": "cancelled",
        "to": "paid",
    }
    assert provider.charges == []
    assert not Payment.objects.exists()
    order.refresh_from_db()
    assert (order.status, order.source) == ("cancelled", "owner")


def test_the_owner_is_asked_as_the_caller_even_for_an_order_the_replica_knows(
    auth_client, owner, order
):
    owner.orders[str(order.pk)] = _owned(order.pk, total="25.00")

    response = auth_client.post(
        "/api/payments/",
        {"order_id": str(order.pk), "card_number": "4242424242424242"},
        format="json",
        headers={"Idempotency-Key": "k", "Authorization": "Bearer tok", "X-Request-ID": "r-1"},
    )

    assert response.status_code == 201, response.json()
    [seen] = owner.seen
    assert (seen["Authorization"], seen["X-Request-ID"]) == ("Bearer tok", "r-1")
    assert HEADER not in seen


def test_an_owner_still_saying_pending_never_moves_a_paid_replica_back(
    auth_client, pay, owner, provider, make_order, user_id
):
    order = make_order(user_id, status="paid")  # paid here a moment ago; the owner lags
    owner.orders[str(order.pk)] = _owned(order.pk, status="pending", total="25.00")

    response = pay(auth_client, order.pk)

    assert response.status_code == 409
    assert response.json()["from"] == "paid"
    assert provider.charges == []
    order.refresh_from_db()
    assert order.status == "paid"


def test_an_order_the_owner_says_is_not_the_callers_is_a_404_even_if_replicated(
    auth_client, pay, owner, provider, order
):
    response = pay(auth_client, order.pk)  # the fake owner knows no order: 404

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert provider.charges == []


def test_when_the_owner_cannot_be_asked_the_replica_decides(
    auth_client, pay, owner, provider, order
):
    owner.status = 503

    response = pay(auth_client, order.pk)

    assert response.status_code == 201, response.json()
    assert len(provider.charges) == 1


def _paid_by_service(auth_client, pay, owner, order):
    owner.orders[str(order.pk)] = _owned(order.pk, total="25.00")
    payment = pay(auth_client, order.pk).json()
    owner.orders[str(order.pk)] = _owned(order.pk, status="paid", total="25.00")
    return payment


def test_a_refund_of_an_order_the_owner_shipped_is_refused_though_its_event_is_in_flight(
    auth_client, pay, owner, provider, order
):
    payment = _paid_by_service(auth_client, pay, owner, order)
    owner.orders[str(order.pk)] = _owned(order.pk, status="shipped", total="25.00")

    response = auth_client.post(f"/api/payments/{payment['id']}/refund/")

    assert_refund_of_shipped_order_refused(response, provider)
    order.refresh_from_db()
    assert order.status == "shipped"


def test_a_refund_goes_ahead_on_the_replica_when_the_owner_cannot_be_asked(
    auth_client, pay, owner, provider, order
):
    payment = _paid_by_service(auth_client, pay, owner, order)
    owner.status = 502

    response = auth_client.post(f"/api/payments/{payment['id']}/refund/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "refunded"
    assert len(provider.refunds) == 1
