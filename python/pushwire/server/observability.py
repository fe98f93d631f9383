"""``/healthz`` (the process answers), ``/readyz`` (the database, and Redis when configured,
answer) and ``/metrics`` (Prometheus: every application client's engine metrics via
:mod:`pushwire.metrics`, plus HTTP requests by route and status)."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .problems import problem_response
from .services import services_of


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "pushwire_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "pushwire_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.in_flight = Gauge(
            "pushwire_http_requests_in_flight", "Requests being answered", registry=registry
        )


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        metrics: HttpMetrics = scope["app"].state.http_metrics
        status = 500
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_flight.inc()
        try:
            await app(scope, receive, sending)
        finally:
            metrics.in_flight.dec()
            handler = scope.get("route_handler")
            route = scope.get("path_template") or (
                handler.paths and next(iter(handler.paths)) if handler else None
            )
            label = str(route or "unmatched")
            method = str(scope.get("method", "GET"))
            metrics.requests.labels(method, label, str(status)).inc()
            metrics.latency.labels(method, label).observe(time.perf_counter() - start)

    return middleware


@get("/healthz", include_in_schema=True, tags=["health"])
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/readyz", tags=["health"])
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    """The database (and Redis, when configured) answer: ready for traffic."""
    services = services_of(request)
    try:
        await services.db(services.store.database.read, lambda c: c.query("SELECT 1"))
        if services.settings.redis:
            await services.jobs.ping()
    except Exception as e:
        return problem_response(503, "Not ready", f"{type(e).__name__}: {e}")
    return Response({"status": "ready", "jobs": services.jobs.backend})


@get("/metrics", tags=["health"], media_type=CONTENT_TYPE_LATEST)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format."""
    services = services_of(request)
    return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)
