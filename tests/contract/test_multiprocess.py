"""Behaviour must not depend on which process of a deployment serves a request.

Real deployments run several worker processes (and, after an extraction, several services);
a client's consecutive requests land on any of them.
"""

from __future__ import annotations

import pytest

from .helpers import new_customer

pytestmark = pytest.mark.contract

CYCLES = 12


def test_refunds_succeed_whichever_process_serves_them(multiprocess_api):
    customer = new_customer(multiprocess_api)
    refunds = []

    for _ in range(CYCLES):
        payment = customer.pay(customer.place_order()["id"]).json()
        refunds.append(customer.api.post(f"/api/payments/{payment['id']}/refund/"))

    assert [r.status_code for r in refunds] == [200] * CYCLES, [r.text for r in refunds]
