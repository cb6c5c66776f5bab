"""One mode parser for the route table, the admin API, step files and the routes command."""

from __future__ import annotations

import pytest

from migrations_playbook.cli import main as strangler
from migrations_playbook.stepfile import StepFileError, step_load
from strangler_proxy.errors import ModeError, RouteTableError
from strangler_proxy.modes import CANARY, EXTRACTED, Mode, mode_parse
from strangler_proxy.routes import table_from_dict


@pytest.mark.parametrize(
    ("value", "mode"),
    [("monolith", Mode("monolith")), ("shadow", Mode("shadow")), ("extracted", Mode(EXTRACTED)),
     ("canary:10", Mode(CANARY, 10.0)), ("canary:2.5", Mode(CANARY, 2.5)),
     ("canary:99.9", Mode(CANARY, 99.9))],
)  # fmt: skip
def test_every_mode_is_read_with_its_canary_share(value, mode):
    assert mode_parse(value) == mode


@pytest.mark.parametrize("value", ["canary:0", "canary:100", "canary:150", "canary:-5",
                                   "canary:1e1", "canary:", "canary:abc"])  # fmt: skip
def test_a_canary_share_outside_0_to_100_both_excluded_is_refused_naming_the_value(value):
    with pytest.raises(ModeError) as caught:
        mode_parse(value)
    assert f"canary percentage in {value!r} must be between 0 and 100, both excluded" in str(
        caught.value
    )


@pytest.mark.parametrize("value", ["sideways", "", None, 10, "Monolith"])
def test_an_unknown_mode_is_refused_naming_the_value_and_the_modes(value):
    with pytest.raises(ModeError) as caught:
        mode_parse(value)
    assert str(caught.value) == (
        f"mode {value!r} is not one of monolith, shadow, canary:P, extracted"
    )


@pytest.mark.parametrize("mode", ["canary:0", "canary:100"])
def test_the_route_table_refuses_what_step_files_refuse(mode, tmp_path):
    with pytest.raises(RouteTableError) as caught:
        table_from_dict(
            {"services": {"pay": {"url": "http://127.0.0.1:9"}},
             "routes": [{"name": "pay", "prefix": "/", "mode": mode, "service": "pay"}]},
            monolith_url="http://127.0.0.1:8",
        )  # fmt: skip
    from_table = caught.value.problems[0].removeprefix("route 'pay': ")
    source = (
        __import__("migrations_playbook.stepfile", fromlist=["STEPS_DIR"]).STEPS_DIR
        / "step-1-extract-payments.toml"
    )
    step = tmp_path / source.name
    step.write_text(source.read_text().replace('mode = "canary:10"', f'mode = "{mode}"'))
    with pytest.raises(StepFileError) as refused:
        step_load(step)
    assert from_table in str(refused.value)


def test_the_routes_command_refuses_a_mode_the_proxy_would_refuse_before_calling_it(capsys):
    # Port 9 (discard) on loopback: nothing answers there, and nothing is asked.
    code = strangler(["routes", "--proxy", "http://127.0.0.1:9", "set", "pay", "canary:100"])
    assert code == 1
    err = capsys.readouterr().err
    assert "canary percentage in 'canary:100' must be between 0 and 100, both excluded" in err
    assert "cannot reach" not in err
