"""Errors of the payments boundary, on top of the shared tree in `service_kit.errors`.

UpstreamUnavailable
├── ProviderTimedOut      504 provider_timeout: the provider did not answer; nothing stored
└── ProviderFailed        502 provider_error: the provider refused the call itself
"""

from __future__ import annotations

from rest_framework import status

from service_kit.errors import UpstreamUnavailable


class ProviderTimedOut(UpstreamUnavailable):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    code = "provider_timeout"


class ProviderFailed(UpstreamUnavailable):
    status_code = status.HTTP_502_BAD_GATEWAY
    code = "provider_error"
