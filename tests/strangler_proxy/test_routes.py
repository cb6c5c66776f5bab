"""The route table model: matching, specificity, validation, files."""

from __future__ import annotations

import pytest

from strangler_proxy.paths import PathRefused, path_for_routing
from strangler_proxy.routes import RouteTableError, step0_table, table_from_dict, table_from_file

MONOLITH = "http://127.0.0.1:8001"


def table(*routes, services=None):
    data = {"routes": list(routes)}
    if services is not None:
        data["services"] = services
    return table_from_dict(data, monolith_url=MONOLITH)


def test_step0_table_sends_every_path_to_the_monolith():
    t = step0_table(MONOLITH)
    route, _ = t.match("POST", "/anything/at/all", {})
    assert (route.mode, route.service) == ("monolith", "monolith")
    assert t.services["monolith"].instances == (MONOLITH,)


def test_a_pattern_route_captures_parameters_and_beats_a_prefix():
    t = table(
        {"name": "all", "prefix": "/"},
        {"name": "orders", "prefix": "/api/orders/"},
        {"name": "pay", "path": "/api/orders/{id}/pay", "methods": ["POST"]},
        services={"monolith": {"url": MONOLITH}},
    )
    route, params = t.match("POST", "/api/orders/42/pay", {})
    assert (route.name, params) == ("pay", {"id": "42"})
    assert t.match("GET", "/api/orders/42/pay", {})[0].name == "orders"
    assert t.match("POST", "/api/orders/42/pay/extra", {})[0].name == "orders"
    assert t.match("GET", "/api/users/", {})[0].name == "all"


def test_a_prefix_matches_on_a_segment_boundary_only():
    t = table({"name": "pay", "prefix": "/api/pay"}, {"name": "slash", "prefix": "/api/orders/"})
    assert t.match("GET", "/api/pay", {})[0].name == "pay"
    assert t.match("GET", "/api/pay/1", {})[0].name == "pay"
    assert t.match("GET", "/api/payments", {}) is None
    assert t.match("GET", "/api/orders", {})[0].name == "slash"


def test_methods_and_headers_narrow_a_route():
    t = table(
        {"name": "all", "prefix": "/api/"},
        {"name": "beta", "prefix": "/api/", "headers": {"X-Beta": "1"}},
        {"name": "reads", "prefix": "/api/", "methods": ["get"], "headers": {"X-Any": "*"}},
    )
    assert t.match("GET", "/api/x", {"X-Beta": "1"})[0].name == "beta"
    assert t.match("GET", "/api/x", {"X-Beta": "2"})[0].name == "all"
    assert t.match("GET", "/api/x", {"X-Any": "whatever"})[0].name == "reads"
    assert t.match("POST", "/api/x", {"X-Any": "whatever"})[0].name == "all"


def test_an_invalid_table_is_refused_whole_naming_each_route_and_problem():
    with pytest.raises(RouteTableError) as caught:
        table(
            {"name": "ok", "prefix": "/"},
            {"name": "badmode", "prefix": "/a/", "mode": "sideways"},
            {"name": "ghost", "prefix": "/b/", "mode": "extracted", "service": "nowhere"},
            {"name": "both", "prefix": "/c/", "path": "/c/{id}"},
            {"name": "canary", "prefix": "/d/", "mode": "canary:150", "service": "monolith"},
            {"name": "ok", "prefix": "/e/"},
            {"name": "limits", "prefix": "/f/", "timeout": -1, "retries": 9, "methods": ["FETCH"]},
        )
    problems = "\n".join(caught.value.problems)
    assert "route 'badmode': mode 'sideways' is not one of" in problems
    assert "route 'ghost': unknown service 'nowhere'" in problems
    assert "route 'both': give exactly one of 'prefix' or 'path'" in problems
    assert "route 'canary': canary percentage in 'canary:150' must be between 0 and 100" in problems
    assert "route 'ok': name used twice" in problems
    assert "route 'limits': 'timeout' must be between" in problems
    assert "route 'limits': 'retries' must be an integer from 0 to 5" in problems
    assert "route 'limits': unknown methods ['FETCH']" in problems


def test_services_and_rate_limits_are_validated_too():
    with pytest.raises(RouteTableError) as caught:
        table_from_dict(
            {
                "services": {"pay": {"url": "ftp://x"}, "users": {}},
                "rate_limits": {"writes": {"rate": 0}},
                "routes": [
                    {
                        "name": "r",
                        "prefix": "/",
                        "rate_limit": "reads",
                        "compare": {"ignore": ["x"]},
                    }
                ],
            },
            monolith_url=MONOLITH,
        )
    problems = "\n".join(caught.value.problems)
    assert "service 'pay': instance 'ftp://x' is not an http://host:port URL" in problems
    assert "service 'users': needs 'url', 'instances' or 'discovery = true'" in problems
    assert "rate limit 'writes': 'rate' must be at least" in problems
    assert "route 'r': unknown rate limit group 'reads'" in problems
    assert "route 'r': compare 'ignore' entry 'x' must be a JSON pointer" in problems


def test_toml_and_yaml_files_load_the_same_table(tmp_path):
    toml = tmp_path / "routes.toml"
    toml.write_text(
        '[services.payments]\nurl = "http://127.0.0.1:8101"\n\n'
        '[[routes]]\nname = "payments"\nprefix = "/api/payments/"\nmode = "shadow"\n'
        'service = "payments"\n'
        'compare = { ignore = ["/created_at", "/results/*/id"] }\n\n'
        '[[routes]]\nname = "rest"\nprefix = "/"\n'
    )
    yaml = tmp_path / "routes.yaml"
    yaml.write_text(
        "services:\n  payments: {url: 'http://127.0.0.1:8101'}\nroutes:\n"
        "  - {name: payments, prefix: /api/payments/, mode: shadow, service: payments,"
        " compare: {ignore: [/created_at, '/results/*/id']}}\n"
        "  - {name: rest, prefix: /}\n"
    )
    a = table_from_file(toml, monolith_url=MONOLITH)
    b = table_from_file(yaml, monolith_url=MONOLITH)
    assert a.as_dict() == b.as_dict()
    assert a.match("GET", "/api/payments/1/", {})[0].compare.ignore == (
        "/created_at",
        "/results/*/id",
    )


def test_a_malformed_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "routes.toml"
    bad.write_text("[[routes]\nname = ")
    with pytest.raises(RouteTableError, match=r"routes\.toml.*not valid toml"):
        table_from_file(bad, monolith_url=MONOLITH)
    with pytest.raises(RouteTableError, match="cannot be read"):
        table_from_file(tmp_path / "missing.yaml", monolith_url=MONOLITH)


@pytest.mark.parametrize(
    "path",
    ["/a/../b", "/a/%2e%2e/b", "/a/.%2E/b", "/a%2Fb", "/a%5cb", "/a/%252e%252e/", "/a//b", "/a/./b",
     "/a\\b", "/a/%00", "/a/\x01", "relative", "/a/%0d%0aSet-Cookie:x"],
)  # fmt: skip
def test_ambiguous_or_escaping_paths_are_refused(path):
    with pytest.raises(PathRefused):
        path_for_routing(path)


def test_plain_and_harmlessly_encoded_paths_are_decoded_for_matching():
    assert path_for_routing("/api/orders/1/") == "/api/orders/1/"
    assert path_for_routing("/api/caf%C3%A9/") == "/api/café/"
    assert path_for_routing("/api/%61rders/") == "/api/arders/"
    assert path_for_routing("/.well-known/x") == "/.well-known/x"
