"""The console: static pages of this package (``static/``) that call the same ``/v1`` API,
and the login that turns an admin key into a session cookie (HttpOnly, SameSite=Strict; the
session is a short-lived child key, so revoking the admin key ends it at once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router

from ..store.clock import system_clock
from .auth import CSRF_HEADER, SESSION_COOKIE, presented_key
from .errors import ApiProblem
from .keys import Scope
from .schemas import Identity, LoginIn
from .services import services_of

STATIC = Path(__file__).parent / "static"


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/console/")


#: The console loads nothing but its own files (no CDN, no inline script) and is never framed.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@get("/console", include_in_schema=False)
async def console_page() -> File:
    return File(
        STATIC / "console.html",
        filename="console.html",
        media_type="text/html; charset=utf-8",
        content_disposition_type="inline",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CONSOLE_CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )


@post("/console/login", status_code=200, tags=["console"])
async def login(request: Request[Any, Any, Any], data: LoginIn) -> Response[Identity]:
    """Open a console session with an admin key (sets the session cookie)."""
    services = services_of(request)
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiProblem(403, "Forbidden", f"the console login needs {CSRF_HEADER}: 1")
    key = await services.db(services.keys.verify, data.key)
    if key is None or key.scope is not Scope.ADMIN:
        raise ApiProblem(
            401, "Unauthorized", "an active admin key is needed to log in", field="key"
        )
    seconds = services.settings.session_seconds
    session = await services.db(
        services.keys.create,
        f"session-{key.key_id}",
        Scope.SESSION,
        expires_at=system_clock() + seconds * 1000,
        parent=key.id,
    )
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session.secret,
        httponly=True,
        samesite="strict",
        secure=services.settings.secure_cookies,
        path="/",
        max_age=seconds,
    )
    identity = Identity(key.key_id, key.name, key.scope.value, key.application)
    return Response(identity, cookies=[cookie], headers={"Cache-Control": "no-store"})


@post("/console/logout", status_code=204, tags=["console"])
async def logout(request: Request[Any, Any, Any]) -> Response[None]:
    """End the console session."""
    services = services_of(request)
    presented, via_cookie = presented_key(request)
    if presented and via_cookie:
        key = await services.db(services.keys.verify, presented)
        if key is not None and key.scope is Scope.SESSION:
            await services.db(services.keys.revoke, key.key_id)
    expired = Cookie(
        key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict"
    )
    return Response(None, status_code=204, cookies=[expired])


def console_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            root,
            console_page,
            login,
            logout,
            create_static_files_router(
                path="/console/static", directories=[STATIC], include_in_schema=False
            ),
        ],
    )


def docs_assets_router() -> Router:
    """Swagger UI's files from the swagger-ui-py package: the docs load nothing from a CDN."""
    import swagger_ui  # type: ignore[import-untyped]

    assets = Path(swagger_ui.__file__).parent / "static"
    return Router(
        path="/",
        route_handlers=[
            create_static_files_router(
                path="/docs/assets", directories=[assets], include_in_schema=False
            )
        ],
    )
