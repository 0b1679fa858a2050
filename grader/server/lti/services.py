"""What the tool's calls to a platform share: one HTTP session with timeouts, and the service
connector that trades the tool's signed assertion for an access token (OAuth 2 client
credentials, the LTI Advantage way) and caches it until it expires.

Why a connector of our own: the library's base class leaves the token cache to its framework
adapters, and the Flask one keys it by issuer and scopes only, so two client ids of one issuer
(two Canvas developer keys) would share a token; ours adds the client id to the key.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import requests
from pylti1p3.service_connector import ServiceConnector

TIMEOUT = (5.0, 20.0)  # connect, read (seconds): a slow platform never holds a thread for long
TOKEN_MARGIN = 30.0  # seconds before its expiry a token is no longer reused


class TimeoutSession(requests.Session):
    """A requests session whose calls all time out (requests has no default timeout)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class ToolConnector(ServiceConnector):
    """The library's connector with a per-process token cache keyed by issuer, client id and
    scopes, each token kept until shortly before it expires."""

    _tokens: ClassVar[dict[str, tuple[str, float]]] = {}
    _lock = threading.Lock()

    def _scope_key(self, scopes: Any) -> str:
        return f"{self._registration.get_client_id()}|{super()._scope_key(scopes)}"

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        with self._lock:
            found = self._tokens.get(scope_key)
        if found and found[1] > time.monotonic():
            return found[0]
        return None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        lifetime = float(expires_in or 0) - TOKEN_MARGIN
        if lifetime > 0:
            with self._lock:
                self._tokens[scope_key] = (access_token, time.monotonic() + lifetime)

    @classmethod
    def forget_tokens(cls) -> None:
        with cls._lock:
            cls._tokens.clear()
