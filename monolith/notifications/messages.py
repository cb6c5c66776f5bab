"""What to tell the customer for each event, and on which channels it may go.

SMS is kept for money: a payment that went through, failed or was refunded. Everything goes by
email. The user's preferences then decide which of those channels are actually used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from outbox.envelope import Envelope

EMAIL_AND_SMS = ("email", "sms")
EMAIL_ONLY = ("email",)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    channels: tuple[str, ...]


def _short(uuid_text: str) -> str:
    return uuid_text.split("-")[0]


def _order(subject: str, body: str) -> Callable[[dict], Message]:
    def make(p: dict) -> Message:
        fields = p | {"short": _short(p["order_id"]), "money": f"{p['total']} {p['currency']}"}
        return Message(subject.format(**fields), body.format(**fields), EMAIL_ONLY)

    return make


def _payment(subject: str, body: str) -> Callable[[dict], Message]:
    def make(p: dict) -> Message:
        fields = p | {
            "short": _short(p["order_id"]),
            "money": f"{p['amount']} {p['currency']}",
            "reason": p.get("failure_reason") or "no reason given",
        }
        return Message(subject.format(**fields), body.format(**fields), EMAIL_AND_SMS)

    return make


# No message for order.placed: the receipt is the monolith's Celery job
# (monolith.orders.tasks.send_order_confirmation, on the priority email queue), and a customer
# must not get two emails for one order.
MESSAGES: dict[str, Callable[[dict], Message]] = {
    "order.paid": _order("Order {short} paid", "Your order {order_id} of {money} is paid. Thanks!"),
    "order.cancelled": _order(
        "Order {short} cancelled",
        "Your order {order_id} of {money} was cancelled; nothing was charged.",
    ),
    "order.shipped": _order(
        "Order {short} shipped", "Your order {order_id} of {money} is on its way."
    ),
    "payment.succeeded": _payment(
        "Payment received", "We charged {money} to your card ending {card_last4} for order {short}."
    ),
    "payment.failed": _payment(
        "Payment declined",
        "Your card ending {card_last4} was declined ({reason}) for {money}; "
        "order {short} is still waiting for payment.",
    ),
    "payment.refunded": _payment(
        "Payment refunded",
        "We refunded {money} to your card ending {card_last4} for order {short}.",
    ),
}


def message_for(event: Envelope) -> Message | None:
    """Return the message announcing `event`, or None for events no one is told about."""
    make = MESSAGES.get(event.type)
    return make(event.payload) if make is not None else None
