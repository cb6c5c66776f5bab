"""strangler_proxy: the gateway that moves endpoints from the monolith one route at a time.

A separate process (``strangler proxy``); it never imports Django or the monolith, so it starts in
a fraction of a second. See docs/proxy.md for the route table, modes, headers and admin API.
"""
