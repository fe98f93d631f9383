"""``POST /v1/devices`` without the framework's per-request layers: the route every installed
app calls, so the one whose cost sets how many devices a server process registers per
second.

An ASGI application in front of the Litestar one. It answers the registrations that are
well-formed and allowed: a bearer key, a JSON body that decodes strictly into
:class:`~pushwire.server.schemas.RegisterDevice`, no NUL character, an active key allowed
to register for the application, within its rate limit. It does what the Litestar route
does (the same key check, batched with the other requests of the turn; the same group
commit; the same answer, :class:`DeviceOut`, and the same problem document when the store
refuses the row) minus the routing, dependency injection, guards, signature model and
middleware stack. Every other request, and any registration it would refuse before
writing (no key, a bad key, a bad body, another application, a rate limit, a body over the
limit, a cookie, a query string, configured CORS...), goes to the Litestar application
with its body replayed, and is answered there exactly as before: refusals keep one code
path. Nothing is written before that decision.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Litestar

from .._errors import PushwireError
from .auth import APP, Principal
from .errors import ApiProblem
from .observability import HttpMetrics
from .problems import PROBLEM_JSON, problem_of, unexpected_problem
from .schemas import DeviceOut, RegisterDevice
from .services import Services
from .settings import ServerSettings

PATH = "/v1/devices"
_JSON = b"application/json"
_PROBLEM = PROBLEM_JSON.encode()
# ASGI, loosely typed: this module reads and writes plain messages.
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RegisterDevice).decode


class FastRegistrations:
    def __init__(self, app: Litestar, settings: ServerSettings) -> None:
        self.app = app
        self._next: Callable[[Scope, Receive, Send], Awaitable[None]] = app  # type: ignore[assignment]
        self._max_body = settings.max_body
        self._default_rate = settings.rate_limit
        # With CORS configured the framework's middleware must see every request.
        self._enabled = settings.fast_registrations and not settings.cors_origins
        self._services: Services | None = None
        self._counted: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            self._enabled
            and scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope["query_string"]
        ):
            await self._next(scope, receive, send)
            return
        services = self._services
        if services is None:
            services = self._services = getattr(self.app.state, "services", None)
            if services is None:  # not started yet
                await self._next(scope, receive, send)
                return
        start = time.perf_counter()
        key_text = _bearer_key_of_json(scope["headers"])
        body = b""
        more = True
        while more and len(body) <= self._max_body:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        data = None
        if (
            key_text is not None
            and len(body) <= self._max_body  # the framework answers 413
            and b"\\u0000" not in body
            and b"\0" not in body
        ):
            with contextlib.suppress(msgspec.DecodeError):
                data = _decode(body)
        if key_text is None or data is None or not await self._admit(services, key_text, data):
            await self._next(scope, _replay(body, more, receive), send)
            return
        await self._register(services, data, send, start)

    async def _admit(self, services: Services, key_text: str, data: RegisterDevice) -> bool:
        """Whether the registration may go ahead (the checks of the Litestar route); False
        lets the route answer the refusal. A rate-limit token is taken last, when nothing
        else can refuse."""
        key = await services.verify_key(key_text)
        if key is None:
            return False
        principal = Principal(key, via_cookie=False)
        if not principal.may(APP):
            return False
        try:
            principal.require_application(data.application)
        except ApiProblem:
            return False
        rate = key.rate_limit or self._default_rate
        return rate is None or services.limiter.take(key.key_id, rate) == 0

    async def _register(
        self, services: Services, data: RegisterDevice, send: Send, start: float
    ) -> None:
        metrics: HttpMetrics = self.app.state.http_metrics
        metrics.in_flight.inc()
        status = 500
        try:
            headers: dict[str, str] = {}
            try:
                endpoint = await services.registrations.register(data.registration())
                status, content_type = 200, _JSON
                body = _encode(DeviceOut.of(endpoint))
            except PushwireError as e:
                problem, headers = problem_of(e, "POST", PATH)
                status, content_type, body = problem.status, _PROBLEM, _encode(problem)
            except Exception as e:
                problem = unexpected_problem(e, "POST", PATH)
                status, content_type, body = 500, _PROBLEM, _encode(problem)
            await _answer(send, status, content_type, body, headers)
        finally:
            metrics.in_flight.dec()
            counter = self._counted.get(status)
            if counter is None:
                counter = metrics.requests.labels("POST", PATH, str(status))
                self._counted[status] = counter
            counter.inc()
            metrics.latency.labels("POST", PATH).observe(time.perf_counter() - start)


def _bearer_key_of_json(headers: Any) -> str | None:
    """The key of a request with one ``Authorization: Bearer <key>`` header and a JSON
    body; None for anything else (no key, two, another scheme, a cookie, another content
    type), which the route judges."""
    found = None
    json = False
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return None
            found = value
        elif name == b"content-type":
            json = value.partition(b";")[0].strip().lower() == _JSON
        elif name == b"cookie":
            return None
    if not json or found is None or found[:7].lower() != b"bearer ":
        return None
    key = found[7:].strip()
    return key.decode("latin-1") if key else None


async def _answer(
    send: Send, status: int, content_type: bytes, body: bytes, headers: dict[str, str]
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """``receive`` with the body read so far given back first."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return again
