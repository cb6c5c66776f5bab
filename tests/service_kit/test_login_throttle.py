"""Which address a login attempt is counted under: the peer, or the proxy's last X-F-F entry."""

from __future__ import annotations

import pytest

from service_kit.login_throttle import client_address


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"REMOTE_ADDR": "198.51.100.7"}, "198.51.100.7"),
        # An untrusted peer's X-Forwarded-For is its own writing: ignored.
        ({"REMOTE_ADDR": "198.51.100.7", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "198.51.100.7"),
        # The proxy on loopback appends the client it saw: that last entry is the client.
        (
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"},
            "203.0.113.9",
        ),
        # ... and on a private network (compose).
        ({"REMOTE_ADDR": "172.18.0.5", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "203.0.113.9"),
        # A garbled last entry falls back to the peer.
        (
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, nonsense"},
            "127.0.0.1",
        ),
        # IPv6 clients are counted per /64; IPv4-mapped addresses as IPv4.
        ({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "2001:db8:1:2:bbbb::9"}, "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "::ffff:198.51.100.7"}, "198.51.100.7"),
        ({}, "unknown"),
    ],
)
def test_the_client_address_is_the_peer_or_what_a_trusted_proxy_saw(meta, expected):
    assert client_address(meta) == expected


def test_trusted_proxies_are_configurable(settings):
    settings.STRANGLER_TRUSTED_PROXIES = "192.0.2.10/32"
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}

    assert client_address({"REMOTE_ADDR": "192.0.2.10", **forwarded}) == "203.0.113.9"
    assert client_address({"REMOTE_ADDR": "127.0.0.1", **forwarded}) == "127.0.0.1"


def test_a_malformed_trusted_proxies_setting_names_itself(settings):
    settings.STRANGLER_TRUSTED_PROXIES = "127.0.0.1/8x"

    with pytest.raises(ValueError, match="STRANGLER_TRUSTED_PROXIES"):
        client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"})
