"""The playbook's client of the proxy's admin API: the proxy's own client, signing as the playbook.

Its calls say ``X-Strangler-Actor: playbook:$USER``; everything else (the token found in the
var dir, errors naming what failed) is ``strangler_proxy.admin_client``'s.
"""

from __future__ import annotations

from strangler_proxy import admin_client
from strangler_proxy.admin_client import AdminCallError, default_proxy_url

__all__ = ["AdminCallError", "ProxyAdmin", "default_proxy_url"]


class ProxyAdmin(admin_client.ProxyAdmin):
    """The admin client, as the playbook (engine, gates, demo) calls the proxy."""

    actor = "playbook"
