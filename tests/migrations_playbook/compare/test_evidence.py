"""Which routes moved between the sides, and what happens when a source of evidence is missing."""

from __future__ import annotations

from migrations_playbook.compare.evidence import (
    proxy_routes,
    routes_moved_by_steps,
    routes_moved_by_tables,
    shadow_figures,
)
from migrations_playbook.stepfile import steps_load


def test_step_data_says_payments_move_from_the_monolith_to_the_service_between_0_and_1():
    moved = routes_moved_by_steps(steps_load(), 0, 1)

    assert [(r.name, r.match, r.service, r.before_mode, r.after_mode, r.step) for r in moved] == [
        ("payments", "/api/payments/", "payments", "monolith", "extracted", 1)
    ]
    assert moved[0].source == "step data"


def test_comparing_a_step_with_itself_or_backwards_is_consistent():
    steps = steps_load()

    assert routes_moved_by_steps(steps, 0, 0) == []
    assert routes_moved_by_steps(steps, 1, 1) == []
    backwards = routes_moved_by_steps(steps, 1, 0)
    assert [(r.before_mode, r.after_mode) for r in backwards] == [("extracted", "monolith")]


def test_two_route_tables_give_the_routes_whose_mode_or_service_changed():
    before = {
        "routes": [
            {
                "name": "payments",
                "prefix": "/api/payments/",
                "mode": "monolith",
                "service": "payments",
            },
            {"name": "users", "prefix": "/api/users/", "mode": "shadow", "service": "users"},
            {"name": "old", "path": "/api/old/", "mode": "monolith"},
            {"name": "default", "prefix": "/", "mode": "monolith"},
        ]
    }
    after = {
        "routes": [
            {
                "name": "payments",
                "prefix": "/api/payments/",
                "mode": "canary:10",
                "service": "payments",
            },
            {"name": "users", "prefix": "/api/users/", "mode": "shadow", "service": "users"},
            {"name": "orders", "prefix": "/api/orders/", "mode": "extracted", "service": "orders"},
            {"name": "default", "prefix": "/", "mode": "monolith"},
        ]
    }

    moved = routes_moved_by_tables(before, after)

    assert [(r.name, r.before_mode, r.after_mode) for r in moved] == [
        ("orders", "(absent)", "extracted"),
        ("payments", "monolith", "canary:10"),
    ]
    assert moved[1].match == "/api/payments/" and moved[1].source == "proxy route tables"


def test_a_url_without_a_proxy_gives_no_table_and_a_note_instead_of_figures():
    nowhere = "http://127.0.0.1:9"  # discard port: nothing listens there

    assert proxy_routes(nowhere) is None
    figures, note = shadow_figures(nowhere, "payments")
    assert figures is None
    assert note.startswith("no shadow figures: http://127.0.0.1:9 has no proxy admin API")
