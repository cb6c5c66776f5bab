"""Replay: recorded requests sent to two sides, compared with the proxy's rules, saved as cases."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from migrations_playbook.compare.cli import main
from migrations_playbook.compare.replay import (
    ReplayFileError,
    RuleBook,
    replay_load,
    replay_run,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
Answer = tuple[int, object]


@contextmanager
def serving(routes: dict[tuple[str, str], Callable[[bytes], Answer]]) -> Iterator[str]:
    """Serve JSON answers per (method, path) on an ephemeral port; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            make = routes.get((self.command, self.path.split("?")[0]))
            status, document = make(body) if make else (404, {"error": "not_found"})
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


TABLE = {
    "services": {"items": {"url": "http://127.0.0.1:1"}},
    "routes": [
        {
            "name": "items",
            "prefix": "/api/items/",
            "mode": "shadow",
            "service": "items",
            "compare": {"unordered": ["/results"]},
        },
        {"name": "default", "prefix": "/", "mode": "monolith"},
    ],
}


def _sides():
    """A and B: the same items (B lists them in another order, amounts as numbers), a served_at
    that changes on every answer (noise), and a payment where B renamed a field and a decline
    where B answers 400 instead of 402."""
    clock = itertools.count()
    items = [{"id": 1, "amount": "12.50"}, {"id": 2, "amount": "3.00"}]
    a = {
        ("GET", "/api/items/"): lambda _: (
            200,
            {"results": items, "served_at": next(clock)},
        ),
        ("GET", "/api/payments/p1/"): lambda _: (200, {"id": "p1", "card_last4": "4242"}),
        ("POST", "/api/payments/"): lambda body: (
            402,
            {"error": "card_declined", "echo": json.loads(body)},
        ),
    }
    b = {
        ("GET", "/api/items/"): lambda _: (
            200,
            {
                "results": [{"id": 2, "amount": 3}, {"id": 1, "amount": 12.5}],
                "served_at": next(clock),
            },
        ),
        ("GET", "/api/payments/p1/"): lambda _: (200, {"id": "p1", "last4": "4242"}),
        ("POST", "/api/payments/"): lambda body: (
            400,
            {"error": "card_declined", "echo": json.loads(body)},
        ),
        ("GET", "/_strangler/routes"): lambda _: (200, TABLE),
    }
    return a, b


LINES = [
    {
        "method": "GET",
        "path": "/api/items/",
        "headers": {"Authorization": "Bearer t"},
        "response": {"status": 200, "body": {"results": [], "served_at": -1}},
    },
    {"method": "get", "path": "/api/payments/p1/", "name": "read a payment"},
    {
        "method": "POST",
        "path": "/api/payments/",
        "body": {"order_id": "o1", "card_number": "4000000000000002"},
    },
]


def _write(path: Path, lines: list) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_replay_uses_the_proxys_rules_learns_noise_on_a_and_finds_what_b_changed(tmp_path):
    a, b = _sides()
    with serving(a) as url_a, serving(b) as url_b:
        records = replay_load(_write(tmp_path / "r.jsonl", LINES))
        results = replay_run(
            records=records, before_url=url_a, after_url=url_b, rules=RuleBook(TABLE)
        )

    items, payment, decline = results
    # Another order (unordered by the route's rule), 12.50 vs 12.5 (numbers by value) and the
    # served_at that differs between A's own two answers (learned noise) are not differences.
    assert items.verdict == "same", items.differences
    assert items.noise == ["/served_at"]
    assert items.drift == ["/results"]  # the recording had no items; informative only
    assert payment.verdict == "mismatch"
    assert payment.differences == ["/card_last4", "/last4"]
    assert decline.differences == ["status"]
    assert decline.before["status"] == 402 and decline.after["status"] == 400


def test_without_the_route_rules_the_order_of_a_list_is_a_difference(tmp_path):
    a, b = _sides()
    with serving(a) as url_a, serving(b) as url_b:
        records = replay_load(_write(tmp_path / "r.jsonl", LINES[:1]))
        [result] = replay_run(
            records=records, before_url=url_a, after_url=url_b, rules=RuleBook(None)
        )

    assert result.verdict == "mismatch"
    assert result.differences == [
        "/results/0/amount",
        "/results/0/id",
        "/results/1/amount",
        "/results/1/id",
    ]


def test_a_lines_own_compare_rules_come_first(tmp_path):
    a, b = _sides()
    line = {
        "method": "GET",
        "path": "/api/payments/p1/",
        "compare": {"ignore": ["/card_last4", "/last4"]},
    }
    with serving(a) as url_a, serving(b) as url_b:
        records = replay_load(_write(tmp_path / "r.jsonl", [line]))
        [result] = replay_run(
            records=records, before_url=url_a, after_url=url_b, rules=RuleBook(TABLE)
        )

    assert result.verdict == "same"


def test_a_bad_replay_file_is_refused_naming_each_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"method": "GET", "path": "/ok/"}\n'
        "# a comment\n"
        '{"method": "FETCH", "path": "/x/"}\n'
        '{"method": "GET", "path": "no-slash"}\n'
        "not json\n"
        '{"method": "GET", "path": "/y/", "response": {"status": "200"}}\n'
    )

    with pytest.raises(ReplayFileError) as refused:
        replay_load(path)

    lines = str(refused.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["method", "path", "not JSON", "response"]
    assert lines[0].startswith(f"{path}:3: ")


def _run_cases(cases: Path, url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, STRANGLER_CONTRACT_URL=url, STRANGLER_CONTRACT_CASES=str(cases))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/contract/test_recorded_cases.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compare_replay_exits_1_saves_each_mismatch_as_a_case_and_the_cases_run_as_contract_tests(
    tmp_path, capsys
):
    a, b = _sides()
    cases, out = tmp_path / "cases", tmp_path / "out"
    replay = _write(tmp_path / "r.jsonl", LINES)
    with serving(a) as url_a, serving(b) as url_b:
        status = main(
            [
                "--against",
                url_a,
                url_b,
                "--replay",
                str(replay),
                "--save-cases",
                str(cases),
                "--out",
                str(out),
            ]
        )
        printed = capsys.readouterr().out

        assert status == 1
        assert "replay: 3 requests, 1 same, 2 mismatch, 0 error; 2 case(s) saved" in printed
        assert sorted(p.name for p in cases.iterdir()) == [
            "002-read-a-payment.json",
            "003-post-api-payments.json",
        ]
        case = json.loads((cases / "003-post-api-payments.json").read_text())
        assert case["expect"]["status"] == 402
        assert case["seen_after"] == {"status": 400, "differences": ["status"]}
        assert (out / "replay.html").exists() and (out / "replay.json").exists()

        # The saved cases are contract tests: they pass on A, where they were recorded, and
        # fail on B, which changed the behaviour.
        on_a, on_b = _run_cases(cases, url_a), _run_cases(cases, url_b)
    assert on_a.returncode == 0, on_a.stdout[-2000:]
    assert "2 passed" in on_a.stdout
    assert on_b.returncode == 1
    assert "2 failed" in on_b.stdout


def test_the_case_executor_skips_saying_why_when_there_are_no_cases(tmp_path):
    result = _run_cases(tmp_path / "none", "http://127.0.0.1:9")

    assert result.returncode == 0
    assert "1 skipped" in result.stdout


def test_replay_needs_two_urls(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--before", "0", "--after", "1", "--replay", "x.jsonl"])

    assert exited.value.code == 2
    assert "--replay and --save-cases need --against" in capsys.readouterr().err


def test_a_header_option_replaces_the_recorded_header_of_the_same_name_whatever_its_case():
    from migrations_playbook.compare.replay import Recorded, headers_parse, record_with_headers

    record = Recorded(
        line=1,
        method="GET",
        path="/api/payments/",
        headers={"authorization": "Bearer <redacted>", "Accept": "application/json"},
    )
    overrides = headers_parse(["Authorization: Bearer real-token"])

    replayed = record_with_headers(record, overrides)

    assert replayed.headers == {"Accept": "application/json", "Authorization": "Bearer real-token"}


def test_a_malformed_header_option_is_refused_naming_it(tmp_path, capsys):
    replay = tmp_path / "traffic.jsonl"
    replay.write_text(json.dumps({"method": "GET", "path": "/healthz"}) + "\n")

    status = main(
        ["--against", "http://127.0.0.1:9", "http://127.0.0.1:9", "--replay", str(replay),
         "--header", "no colon here", "--out", str(tmp_path / "out")]
    )  # fmt: skip

    assert status == 2
    assert "--header 'no colon here': expected 'Name: value'" in capsys.readouterr().err
