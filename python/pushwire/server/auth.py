"""Who is calling, and may they: API keys (``Authorization: Bearer pw_...``) or a console
session cookie, checked against the database on every request; scopes; per-key rate
limits.

Scopes: an *app* key may register, update and unregister devices and post events of its own
application only; a *sender* key may also send, read devices, jobs, KPIs and events; an
*admin* key (or a console session opened with one) may do everything, including
applications and keys. Cookie-authenticated requests that change something must carry
``X-Pushwire-Console: 1``: a browser sends that header cross-site only after a CORS
preflight, which this server refuses unless configured (CSRF), on top of SameSite=Strict.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request

from .errors import ApiProblem
from .keys import ApiKey, Scope

SESSION_COOKIE = "pushwire_session"
CSRF_HEADER = "x-pushwire-console"

#: What each scope may do.
APP, SEND, ADMIN = "app", "send", "admin"
_ALLOWED: dict[Scope, frozenset[str]] = {
    Scope.APP: frozenset({APP}),
    Scope.SENDER: frozenset({APP, SEND}),
    Scope.ADMIN: frozenset({APP, SEND, ADMIN}),
    Scope.SESSION: frozenset({APP, SEND, ADMIN}),
}
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    key: ApiKey
    via_cookie: bool

    def may(self, action: str) -> bool:
        return action in _ALLOWED[self.key.scope]

    def require(self, action: str) -> None:
        if not self.may(action):
            raise ApiProblem(
                403,
                "Forbidden",
                f"a {self.key.scope.value} key may not do this (it needs a "
                f"{'sender or admin' if action == SEND else 'admin'} key)",
            )

    def require_application(self, application: str) -> None:
        """App keys act for their own application only."""
        if self.key.scope is Scope.APP and self.key.application != application:
            raise ApiProblem(
                403,
                "Forbidden",
                f"this app key belongs to another application than {application!r}",
                field="application",
            )


class RateLimiter:
    """A token bucket per key (``rate`` requests per second, bursts of ``rate``), in this
    process. ``clock`` returns seconds (monotonic); tests pass their own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate: int) -> float:
        """0 when the request may go; else the seconds until it could."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(rate), now))
            tokens = min(float(rate), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate


def presented_key(request: Request[Any, Any, Any]) -> tuple[str | None, bool]:
    """The key of the request and whether it came in the session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiProblem(
                401,
                "Unauthorized",
                "Authorization must be 'Bearer <API key>'",
                field="Authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None, False


def admit(
    request: Request[Any, Any, Any],
    key_text: str | None,
    via_cookie: bool,
    key: ApiKey | None,
    limiter: RateLimiter,
    default_rate: int | None,
) -> Principal:
    """The caller: ``key_text`` is the key the request presented (:func:`presented_key`),
    ``key`` what verifying it gave (None: not an active key). Or a 401/403/429 problem."""
    if key is None:
        if key_text is None:
            raise ApiProblem(
                401,
                "Unauthorized",
                "an API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise ApiProblem(
            401,
            "Unauthorized",
            "the API key is unknown, revoked or expired"
            if not via_cookie
            else "the console session has ended: log in again",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if via_cookie and request.method in _UNSAFE and request.headers.get(CSRF_HEADER) != "1":
        raise ApiProblem(
            403, "Forbidden", f"console requests that change something need {CSRF_HEADER}: 1"
        )
    rate = key.rate_limit or default_rate
    if rate is not None:
        wait = limiter.take(key.key_id, rate)
        if wait > 0:
            raise too_many_requests(rate, wait)
    return Principal(key, via_cookie)


def too_many_requests(rate: int, wait: float) -> ApiProblem:
    return ApiProblem(
        429,
        "Too many requests",
        f"this key may make {rate} requests per second",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )
