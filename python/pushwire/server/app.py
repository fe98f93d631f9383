"""The ASGI application of ``pushwire serve`` (Litestar on uvicorn).

Litestar because it speaks msgspec natively (pushwire's bodies are msgspec structs already:
decoding, strict validation and the OpenAPI document come from the same types) and is
actively kept; uvicorn with uvloop and httptools serves it.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import CollectorRegistry

from .. import __version__
from ..store import Store
from .api import v1
from .console import console_router, docs_assets_router
from .fast_registration import FastRegistrations
from .observability import HttpMetrics, healthz, metrics, metrics_middleware, readyz
from .problems import EXCEPTION_HANDLERS
from .services import Services
from .settings import ServerSettings

log = logging.getLogger("pushwire.server")


def _openapi() -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        js_url="/docs/assets/swagger-ui-bundle.js",
        css_url="/docs/assets/swagger-ui.css",
        standalone_preset_js_url="/docs/assets/swagger-ui-standalone-preset.js",
        path="/",
        favicon="<link rel='icon' type='image/png' href='/docs/assets/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="pushwire",
        version=__version__,
        description=(
            "Register devices, send notifications, follow jobs and read KPIs. Every request "
            "carries an API key: `Authorization: Bearer pw_...`. Errors are RFC 9457 "
            "problem documents (application/problem+json) naming the field at fault."
        ),
        path="/docs",
        render_plugins=[swagger],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="pw_... key")
            }
        ),
        security=[{"apiKey": []}],
    )


def create_app(settings: ServerSettings, *, store: Store | None = None) -> Litestar:
    """The application; it opens (and migrates) the store at ``settings.db`` on startup
    unless given one."""
    registry = CollectorRegistry()
    holder: dict[str, Services] = {}

    async def startup(app: Litestar) -> None:
        opened = store if store is not None else Store.open(settings.db)
        services = Services(settings, opened, registry)
        holder["services"] = services
        app.state.services = services

    async def shutdown(app: Litestar) -> None:
        services = holder.get("services")
        if services is None:
            return
        await services.jobs.drain(settings.shutdown_grace)
        await services.pool.aclose()
        services.close()
        if store is None:
            services.store.close()

    handlers: list[Any] = [v1, healthz, readyz, metrics, docs_assets_router()]
    if settings.console:
        handlers.append(console_router())
    app = Litestar(
        route_handlers=handlers,
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=_openapi(),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        request_max_body_size=settings.max_body,
        middleware=[metrics_middleware],
        debug=False,
    )
    app.state.http_metrics = HttpMetrics(registry)
    return app


def create_asgi_app(settings: ServerSettings, *, store: Store | None = None) -> FastRegistrations:
    """What ``pushwire serve`` runs: :func:`create_app` behind the fast registration route
    (:mod:`.fast_registration`), which answers most ``POST /v1/devices`` itself."""
    return FastRegistrations(create_app(settings, store=store), settings)


def app_from_environment() -> FastRegistrations:
    """uvicorn's factory in worker processes: settings from ``PUSHWIRE_SERVE_SETTINGS``."""
    app = create_asgi_app(ServerSettings.from_env())
    app.app.on_startup.append(_freeze_startup_objects)
    return app


def _freeze_startup_objects() -> None:
    """In a server process of its own: what imports and startup created lives as long as
    the process, so it is moved out of the garbage collector's sight (``gc.freeze``). A
    full collection then scans what requests create only, not the whole heap (they took
    ~100 ms each, a pause every request in flight felt)."""
    gc.collect()
    gc.freeze()
