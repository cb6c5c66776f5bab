"""`strangler compare` refuses bad arguments before starting anything, naming what to change."""

from __future__ import annotations

import pytest

from migrations_playbook.cli import main as strangler
from migrations_playbook.compare.cli import main


def test_an_unknown_step_is_refused_naming_the_steps_that_exist(tmp_path, capsys):
    status = main(["--before", "0", "--after", "7", "--out", str(tmp_path)])

    assert status == 2
    assert "unknown step 7; the steps that exist are: 0, 1" in capsys.readouterr().err
    assert not (tmp_path / "stack-before.log").exists()  # nothing was started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--before", "0"], "--before needs --after"),
        (["--against", "http://a", "http://b", "--after", "1"], "--after goes with --before"),
        (["--against", "http://a", "http://b", "--save-cases", "x"], "--save-cases needs --replay"),
        (["--after", "1"], "one of the arguments --before --against is required"),
    ],
)
def test_inconsistent_arguments_are_a_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_is_a_strangler_subcommand(capsys):
    assert strangler([]) == 0
    assert "compare" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        strangler(["compare", "--help"])
    assert exited.value.code == 0
    assert "--against URL_A URL_B" in capsys.readouterr().out
