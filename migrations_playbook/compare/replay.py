"""Send recorded requests to two deployments and compare the answers like shadow mode does.

Input: a JSONL file, one recorded exchange per line (docs/compare.md has the reference)::

    {"method": "GET", "path": "/api/payments/", "query": "status=succeeded",
     "headers": {"Authorization": "Bearer 9f0c..."}, "body": null,
     "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "..."},
     "route": "payments", "compare": {"ignore": ["/results/*/created_at"]}}

Only ``method`` and ``path`` are required. ``body`` is the raw text sent (a JSON object or list
is sent as JSON); ``response`` is what was recorded (shown beside the live answers as drift, it
does not decide the verdict). Comparison rules are, first match wins: the line's ``compare``,
the route that serves the path in the route table of B's proxy (else A's), else the proxy's
defaults. Noise is learned the way the proxy's shadow mode learns it: a safe request (GET, HEAD,
OPTIONS) is sent to A twice, and paths that differ between A's two answers are noise, not
differences. Unsafe requests are sent once to each side, so they learn no noise.

The comparison itself is `strangler_proxy.compare.compare_responses`, imported, not copied.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from strangler_proxy.compare import compare_responses, generalise
from strangler_proxy.routes import CompareRules, RouteTableError, table_from_dict

from .evidence import proxy_routes

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
# Hop-by-hop and per-connection headers a replay must not copy from the recording.
DROPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"}
)
TIMEOUT_S = 15.0
CASE_NAME = re.compile(r"[^a-z0-9]+")


class ReplayFileError(ValueError):
    """A replay file has a bad line; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Recorded:
    """One recorded request (and, optionally, the answer that was recorded with it)."""

    line: int
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    response: dict[str, Any] | None = None
    route: str | None = None
    compare: dict[str, Any] | None = None
    name: str | None = None

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclass
class ReplayResult:
    """What both sides answered to one recorded request, and where they differ."""

    recorded: Recorded
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    differences: list[str]
    noise: list[str]
    drift: list[str]
    error: str | None = None
    # What a saved case must not assert: the rule's ignores and the noise learned on A.
    ignore: list[str] = field(default_factory=list)
    unordered: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "mismatch" if self.differences else "same"


def _line_error(path: Path, number: int, text: str) -> ReplayFileError:
    return ReplayFileError(f"{path}:{number}: {text}")


def replay_load(path: Path) -> list[Recorded]:
    """Read every line of a replay file; refuse the file naming each bad line and field."""
    records, problems = [], []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            records.append(_record(path, number, json.loads(raw)))
        except ValueError as exc:  # json.JSONDecodeError and ReplayFileError alike
            problems.append(
                str(exc)
                if isinstance(exc, ReplayFileError)
                else f"{path}:{number}: not JSON: {exc}"
            )
    if problems:
        raise ReplayFileError("\n".join(problems))
    return records


def _record(path: Path, number: int, data: Any) -> Recorded:
    if not isinstance(data, dict):
        raise _line_error(path, number, f"expected a JSON object, got {type(data).__name__}")
    method = str(data.get("method", "")).upper()
    if method not in METHODS:
        raise _line_error(
            path, number, f"method: expected one of {sorted(METHODS)}, got {data.get('method')!r}"
        )
    target = data.get("path")
    if not isinstance(target, str) or not target.startswith("/"):
        raise _line_error(
            path, number, f"path: expected a string starting with '/', got {target!r}"
        )
    query = data.get("query") or ""
    if not isinstance(query, str):
        raise _line_error(path, number, f"query: expected a string, got {query!r}")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _line_error(path, number, "headers: expected an object of strings")
    body = data.get("body")
    if isinstance(body, dict | list):
        encoded: bytes | None = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **headers}
    elif isinstance(body, str):
        encoded = body.encode()
    elif body is None:
        encoded = None
    else:
        raise _line_error(
            path, number, f"body: expected text, an object, a list or null, got {body!r}"
        )
    response = data.get("response")
    if response is not None and (
        not isinstance(response, dict) or not isinstance(response.get("status"), int)
    ):
        raise _line_error(path, number, "response: expected an object with an integer 'status'")
    compare = data.get("compare")
    if compare is not None and not isinstance(compare, dict):
        raise _line_error(path, number, "compare: expected an object of compare rules")
    return Recorded(
        line=number,
        method=method,
        path=target,
        query=query,
        headers={k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS},
        body=encoded,
        response=response,
        route=data.get("route"),
        compare=compare,
        name=data.get("name"),
    )


def compare_rules(raw: dict[str, Any]) -> CompareRules:
    """Return CompareRules from a route's ``compare`` mapping, validated by the proxy's parser."""
    table = table_from_dict(
        {"routes": [{"name": "replay", "prefix": "/", "mode": "monolith", "compare": raw}]},
        monolith_url="http://127.0.0.1:1",
    )
    return table.routes[0].compare


class RuleBook:
    """Find the compare rules of a request: its own, its proxy route's, or the defaults."""

    def __init__(self, table: dict[str, Any] | None):
        self.table = None
        self.note = "no proxy route table: default compare rules for every request"
        if table is not None:
            try:
                data = {
                    k: v for k, v in table.items() if k in ("routes", "services", "rate_limits")
                }
                self.table = table_from_dict(data, monolith_url="http://127.0.0.1:1")
                self.note = "compare rules from the proxy's route table"
            except RouteTableError as exc:
                self.note = f"the proxy's route table did not parse ({exc}); default rules"

    def rules_for(self, record: Recorded) -> CompareRules:
        if record.compare is not None:
            return compare_rules(record.compare)
        if self.table is not None:
            if record.route:
                route = self.table.route(record.route)
                if route is not None:
                    return route.compare
            found = self.table.match(
                record.method, record.path, CaseInsensitiveDict(record.headers)
            )
            if found is not None:
                return found[0].compare
        return CompareRules()


def headers_parse(values: list[str]) -> dict[str, str]:
    """Parse `--header 'Name: value'` options; raise ValueError naming a malformed one."""
    parsed: dict[str, str] = {}
    for raw in values:
        name, colon, value = raw.partition(":")
        if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"--header {raw!r}: expected 'Name: value'")
        parsed[name.strip()] = value.strip()
    return parsed


def record_with_headers(record: Recorded, overrides: dict[str, str]) -> Recorded:
    """Return `record` sending `overrides` in place of its headers of the same names."""
    if not overrides:
        return record
    lowered = {name.lower() for name in overrides}
    kept = {k: v for k, v in record.headers.items() if k.lower() not in lowered}
    return dataclasses.replace(record, headers=kept | overrides)


def _send(session: requests.Session, base_url: str, record: Recorded) -> tuple[int, Any, bytes]:
    response = session.request(
        record.method,
        base_url.rstrip("/") + record.target,
        headers=record.headers,
        data=record.body,
        timeout=TIMEOUT_S,
        allow_redirects=False,
    )
    return response.status_code, response.headers, response.content


def _answer(answer: tuple[int, Any, bytes]) -> dict[str, Any]:
    status, headers, body = answer
    return {"status": status, "headers": dict(headers), "body": body.decode("utf-8", "replace")}


def replay_run(
    *, records: list[Recorded], before_url: str, after_url: str, rules: RuleBook
) -> list[ReplayResult]:
    """Send each record to both sides, in file order; return one result per record."""
    session = requests.Session()
    results = []
    for record in records:
        try:
            rule = rules.rules_for(record)
        except RouteTableError as exc:
            results.append(ReplayResult(record, None, None, [], [], [], f"compare rules: {exc}"))
            continue
        try:
            first = _send(session, before_url, record)
            noise: set[str] = set()
            if record.method in SAFE:
                again = _send(session, before_url, record)
                learned, _ = compare_responses(rules=rule, expected=first, actual=again)
                noise = {generalise(p) for p in learned if p != "status"}
            second = _send(session, after_url, record)
        except requests.RequestException as exc:
            results.append(ReplayResult(record, None, None, [], [], [], f"request failed: {exc}"))
            continue
        differences, noisy = compare_responses(
            rules=rule, noise=noise, expected=first, actual=second
        )
        drift: list[str] = []
        if record.response is not None:
            recorded = (
                record.response["status"],
                CaseInsensitiveDict(record.response.get("headers") or {}),
                _body_bytes(record.response.get("body")),
            )
            drift, _ = compare_responses(rules=rule, noise=noise, expected=recorded, actual=first)
        results.append(
            ReplayResult(
                record,
                _answer(first),
                _answer(second),
                differences,
                noisy,
                drift,
                ignore=sorted(set(rule.ignore) | noise),
                unordered=list(rule.unordered),
            )
        )
    return results


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def rules_from_proxies(before_url: str, after_url: str) -> RuleBook:
    """Return the rule book of B's proxy, else A's, else the defaults."""
    return RuleBook(proxy_routes(after_url) or proxy_routes(before_url))


def case_name(record: Recorded, index: int) -> str:
    """Return a file-name-safe name for the case made from `record`."""
    base = record.name or f"{record.method} {record.path}"
    return f"{index:03d}-" + CASE_NAME.sub("-", base.lower()).strip("-")[:60]


def cases_save(results: list[ReplayResult], directory: Path) -> list[Path]:
    """Write one contract case file per mismatch: the request and A's answer as the expectation.

    ``tests/contract/test_recorded_cases.py`` runs every case of a directory against a
    deployment: it sends the request and expects A's status, and A's JSON body except at the
    paths listed in ``ignore`` (the rule's own ignores and the noise learned on A).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, result in enumerate(results, start=1):
        if result.verdict != "mismatch" or result.before is None:
            continue
        record = result.recorded
        body = record.body.decode("utf-8", "replace") if record.body is not None else None
        try:
            expected_body: Any = json.loads(result.before["body"])
            body_kind = "json"
        except ValueError:
            expected_body, body_kind = result.before["body"], "text"
        case = {
            "name": case_name(record, index),
            "source": f"replay line {record.line}",
            "request": {
                "method": record.method,
                "path": record.path,
                "query": record.query,
                "headers": record.headers,
                "body": body,
            },
            "expect": {
                "status": result.before["status"],
                "body_kind": body_kind,
                "body": expected_body,
                "ignore": result.ignore,
                "unordered": result.unordered,
            },
            "seen_after": {
                "status": result.after["status"] if result.after else None,
                "differences": result.differences,
            },
        }
        path = directory / f"{case['name']}.json"
        path.write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
