"""``strangler routes [set ROUTE MODE [SERVICE]]``: the design's top-level routes command.

The dispatcher maps ``routes`` here (``"routes": ("strangler_proxy.routes_cli", ...)``); it is the
same as ``strangler proxy routes ...``, talking to the running proxy's admin API.
"""

from __future__ import annotations

from .cli import routes_main


def main(argv: list[str]) -> int:
    """List the routes of the running proxy, or switch one."""
    return routes_main(argv)
