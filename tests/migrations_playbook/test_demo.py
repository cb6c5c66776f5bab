"""`strangler demo`: arguments, var dir, ports, figures (the walk: test_demo_integration)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from migrations_playbook import cli, demo


def test_demo_is_a_strangler_subcommand():
    assert cli.SUBCOMMANDS["demo"][0] == "migrations_playbook.demo"


def test_demo_keeps_running_by_default_and_exit_stops_it():
    assert demo.build_parser().parse_args([]).exit is False
    assert demo.build_parser().parse_args(["--exit"]).exit is True
    with pytest.raises(SystemExit):
        demo.build_parser().parse_args(["--exit", "--keep-running"])


def test_a_var_dir_with_someone_elses_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "monolith.sqlite3").write_text("precious")
    with pytest.raises(demo.DemoFailed, match="not made by `strangler demo`"):
        demo.prepare_var_dir(str(tmp_path))
    assert (tmp_path / "monolith.sqlite3").read_text() == "precious"
    assert demo.main(["--var-dir", str(tmp_path), "--exit"]) == 2


def test_a_var_dir_a_previous_demo_made_is_emptied(tmp_path):
    first = demo.prepare_var_dir(str(tmp_path / "var"))
    (first / "payments.sqlite3").write_text("old run")
    again = demo.prepare_var_dir(str(tmp_path / "var"))
    assert again == first
    assert sorted(p.name for p in again.iterdir()) == [demo.MARKER]


def test_a_taken_default_port_is_replaced_by_a_free_one_and_a_given_port_is_kept():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        original = dict(demo.PORTS)
        demo.PORTS["proxy"] = busy
        try:
            args = demo.build_parser().parse_args(["--monolith-port", "18555"])
            ports = demo.choose_ports(args)
        finally:
            demo.PORTS.clear()
            demo.PORTS.update(original)
    assert ports["monolith"] == 18555
    assert ports["proxy"] != busy


def test_load_figures_count_answers_by_stage_and_half():
    load = demo.Load("http://127.0.0.1:9")
    load.counts = Counter({("shadow", "pay", "monolith"): 3, ("canary:10", "pay", "payments"): 1,
                           ("canary:10", "order", "monolith"): 2})  # fmt: skip
    assert load.served(kinds=("pay",)) == Counter({"monolith": 3, "payments": 1})
    assert load.served(stage="canary:10") == Counter({"monolith": 2, "payments": 1})
    assert demo.halves(load.served(stage="canary:10")) == "monolith 2, payments 1"
    assert load.total() == 6
