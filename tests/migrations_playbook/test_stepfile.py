"""Step files: the shipped ones load, and every kind of mistake is named with file, key, value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from migrations_playbook.stepfile import STEPS_DIR, StepFileError, step_load, steps_load

STEP_1 = STEPS_DIR / "step-1-extract-payments.toml"


def test_shipped_steps_load_with_the_rollout_of_the_issue():
    steps = steps_load()
    assert list(steps) == [0, 1, 2]
    step = steps[1]
    assert [s.mode for s in step.rollout] == ["shadow", "canary:10", "canary:50", "extracted"]
    assert step.services[0].name == "payments" and step.services[0].port == 8101
    assert step.routes[0].prefix == "/api/payments/"
    assert {g.kind for g in step.gates.values()} == {
        "contract",
        "shadow_diff",
        "reconcile",
        "outbox_lag",
    }
    assert {s.consumer for s in step.subscriptions} == {"payments", "monolith"}


def test_step_2_moves_users_and_auth_with_step_1s_stages_and_identity_on_the_users_route():
    one, two = steps_load()[1], steps_load()[2]

    assert [s.mode for s in two.rollout] == [s.mode for s in one.rollout]
    assert [s.gates for s in two.rollout] == [s.gates for s in one.rollout]
    assert [(r.name, r.prefix, r.identity) for r in two.routes] == [
        ("users", "/api/users/", True), ("auth", "/api/auth/", False),
    ]  # fmt: skip
    assert two.routes[0].table_entry("canary:10")["identity"] is True
    assert "identity" not in two.routes[1].table_entry("canary:10")
    assert two.services[0].port == 8102 and "password hashes" in two.services[0].owns


def test_two_routes_claiming_identity_are_refused(tmp_path):
    path = _write(tmp_path, [("fallback = true\n", "fallback = true\nidentity = true\n")])
    text = (
        path.read_text()
        + '\n[[routes]]\nname = "more"\nprefix = "/x/"\nservice = "payments"\nidentity = true\n'
    )
    path.write_text(text)

    assert "more than one route says identity = true" in _problems(path)


def _write(tmp_path: Path, text_changes: list[tuple[str, str]]) -> Path:
    text = STEP_1.read_text()
    for old, new in text_changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "step-1-extract-payments.toml"
    path.write_text(text)
    return path


def _problems(path: Path) -> str:
    with pytest.raises(StepFileError) as caught:
        step_load(path)
    return str(caught.value)


def test_unknown_key_is_named_with_file_key_and_value(tmp_path):
    path = _write(tmp_path, [("dwell_s = 60", "dwell_s = 60\ndwel = 5")])
    message = _problems(path)
    assert "step-1-extract-payments.toml: rollout[0].dwel: unknown key (value 5)" in message


def test_bad_mode_in_rollout_is_refused(tmp_path):
    path = _write(tmp_path, [('mode = "canary:50"', 'mode = "canary:150"')])
    message = _problems(path)
    assert "rollout[2].mode: canary percentage in 'canary:150' must be between 0 and 100" in message
    assert "'canary:150'" in message


def test_unknown_mode_name_is_refused(tmp_path):
    path = _write(tmp_path, [('mode = "shadow"', 'mode = "shadowy"')])
    assert (
        "rollout[0].mode: mode 'shadowy' is not one of monolith, shadow, canary:P, extracted"
        in (_problems(path))
    )


def test_threshold_out_of_range_is_refused(tmp_path):
    path = _write(tmp_path, [("max_rate = 0.01", "max_rate = 5")])
    assert "gates.shadow_diff.max_rate: must be a number (a share) between 0 and 1, got 5" in (
        _problems(path)
    )


def test_negative_or_non_integer_counts_are_refused(tmp_path):
    path = _write(
        tmp_path,
        [("min_compared = 20", "min_compared = 2.5"), ("max_messages = 200", "max_messages = -1")],
    )
    message = _problems(path)
    assert "gates.shadow_diff.min_compared: must be an integer at least 1, got 2.5" in message
    assert "gates.outbox_lag.max_messages: must be an integer at least 0, got -1" in message


def test_stage_naming_an_undefined_gate_is_refused(tmp_path):
    path = _write(tmp_path, [('gates = ["outbox_lag", "reconcile"]', 'gates = ["reconcil"]')])
    assert "rollout[0].gates: names an undefined gate 'reconcil'" in _problems(path)


def test_route_of_an_unknown_service_is_refused(tmp_path):
    path = _write(tmp_path, [('service = "payments"\nfallback', 'service = "paymnts"\nfallback')])
    assert "routes[0].service: names no service of this step: 'paymnts'" in _problems(path)


def test_step_number_must_match_the_file_name(tmp_path):
    path = _write(tmp_path, [("step = 1\n", "step = 2\n")])
    assert "step: is 2 but the file name says step 1" in _problems(path)


def test_every_problem_is_listed_at_once(tmp_path):
    path = _write(
        tmp_path, [("port = 8101", "port = 99999"), ('kind = "contract"', 'kind = "contrakt"')]
    )
    message = _problems(path)
    assert "services[0].port: must be an integer between 1 and 65535, got 99999" in message
    assert (
        "gates.contract.kind: must be one of contract, shadow_diff, reconcile, outbox_lag"
        in message
    )


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "step-3-broken.toml"
    path.write_text("step = [")
    assert "step-3-broken.toml: is not valid TOML" in _problems(path)


def test_a_file_not_named_like_a_step_is_refused(tmp_path):
    (tmp_path / "payments.toml").write_text(STEP_1.read_text())
    with pytest.raises(StepFileError, match=r"file name must look like step-N-name\.toml"):
        steps_load(tmp_path)


def test_shipped_step_files_are_plain_toml():
    for path in STEPS_DIR.glob("*.toml"):
        assert isinstance(tomllib.loads(path.read_text()), dict)
