"""What the proxy never stores: the deny-list applied to recordings, shadow diffs and their replays.

The one place the deny-list lives. By default:

* headers (any case): ``Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Strangler-Identity``,
  ``Proxy-Authorization``;
* JSON body keys, at any depth, whose name contains (any case, ignoring ``_`` and ``-``)
  ``password``, ``token``, ``secret``, ``card_number``, ``cvc`` or ``cvv``: so a login's
  password and the token it answers with, a card number, are never kept.

Configuration can only extend it: ``STRANGLER_REDACT_HEADERS`` and ``STRANGLER_REDACT_FIELDS``
add names for every route, a route's ``redact = {headers = [...], fields = [...]}`` adds names
for that route. Nothing removes a default (``none`` is refused at start, an unknown key of a
route's ``redact`` is refused with the table).

A redacted value becomes ``<redacted>``; an ``Authorization`` value keeps its scheme
(``Bearer <redacted>``) so a replay needs one token substituted. A body that is not JSON is kept
as it is: the rule names JSON keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

PLACEHOLDER = "<redacted>"
DENIED_HEADERS = ("authorization", "cookie", "set-cookie", "x-strangler-identity",
                  "proxy-authorization")  # fmt: skip
DENIED_KEY_PARTS = ("password", "token", "secret", "card_number", "cvc", "cvv")


def _key_form(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


class Redactor:
    """The deny-list in force: the defaults plus `headers` and `fields` (it never shrinks)."""

    __slots__ = ("_children", "fields", "headers")

    def __init__(self, *, headers: Iterable[str] = (), fields: Iterable[str] = ()):
        self.headers = frozenset((*DENIED_HEADERS, *(h.strip().lower() for h in headers)))
        self.fields = tuple(
            dict.fromkeys(_key_form(f) for f in (*DENIED_KEY_PARTS, *fields) if f.strip())
        )
        self._children: dict[tuple[tuple[str, ...], tuple[str, ...]], Redactor] = {}

    def extended(self, *, headers: tuple[str, ...] = (), fields: tuple[str, ...] = ()) -> Redactor:
        """Return this deny-list plus `headers` and `fields` (a route's own), remembered."""
        if not headers and not fields:
            return self
        key = (headers, fields)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= 256:
                self._children.clear()
            child = self._children[key] = Redactor(
                headers=(*self.headers, *headers), fields=(*self.fields, *fields)
            )
        return child

    def key_denied(self, key: str) -> bool:
        """Return whether a JSON body key holds a secret."""
        form = _key_form(key)
        return any(part in form for part in self.fields)

    def header(self, name: str, value: str) -> str:
        """Return `value`, or its redaction when header `name` is denied."""
        lowered = name.lower()
        if lowered not in self.headers:
            return value
        scheme, space, _ = value.partition(" ")
        if space and lowered.endswith("authorization"):
            return f"{scheme} {PLACEHOLDER}"
        return PLACEHOLDER

    def header_pairs(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return `(name, value)` pairs with denied values redacted."""
        return [(name, self.header(name, value)) for name, value in pairs]

    def header_dict(self, headers: dict[str, str]) -> dict[str, str]:
        """Return a headers mapping with denied values redacted."""
        return {name: self.header(name, value) for name, value in headers.items()}

    def body(self, text: str) -> str:
        """Return a body with the values of denied JSON keys redacted (other bodies as they are)."""
        if not text.lstrip().startswith(("{", "[")):
            return text
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        redacted, changed = self._json(parsed)
        return json.dumps(redacted, ensure_ascii=False) if changed else text

    def _json(self, value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict):
            out, changed = {}, False
            for key, item in value.items():
                if self.key_denied(str(key)):
                    out[key], changed = PLACEHOLDER, True
                else:
                    out[key], inner = self._json(item)
                    changed = changed or inner
            return out, changed
        if isinstance(value, list):
            pairs = [self._json(item) for item in value]
            return [item for item, _ in pairs], any(inner for _, inner in pairs)
        return value, False
