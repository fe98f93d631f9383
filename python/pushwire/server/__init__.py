"""``pushwire serve``: an HTTP API over the library (devices, sends, jobs, KPIs, events,
applications and keys) and a web console, one process, SQLite or PostgreSQL.

===================== =======================================================================
module                concern
===================== =======================================================================
``settings``          :class:`ServerSettings`
``keys``              API keys: created, listed, revoked, verified (hashed, constant time)
``auth``              the caller: key or session cookie, scopes, CSRF header, rate limits
``problems``          exceptions -> RFC 9457 problem documents
``schemas``           request and response bodies (strict msgspec structs)
``clients``           one engine client per application, rebuilt when its row changes
``runner``            large sends as jobs: Redis Streams workers or in this process
``registrations``     work shared by the requests of one event-loop turn (group commit,
                      key check)
``services``          what handlers share; the authorisation guard
``api``               the ``/v1`` routes
``fast_registration`` ``POST /v1/devices`` without the framework's layers (refusals: ``api``)
``observability``     /healthz, /readyz, /metrics
``console``           the web console's pages and its login
``app``               :func:`create_app` (Litestar), :func:`create_asgi_app` (what
                      ``pushwire serve`` runs: it behind the fast registration route)
===================== =======================================================================

The commands ``pushwire serve`` and ``pushwire keys`` are in :mod:`pushwire.cli.serve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .keys import ApiKey, ApiKeys, CreatedKey, Scope
from .settings import ServerSettings

if TYPE_CHECKING:
    from .app import create_app, create_asgi_app

__all__ = [
    "ApiKey",
    "ApiKeys",
    "CreatedKey",
    "Scope",
    "ServerSettings",
    "create_app",
    "create_asgi_app",
]


def __getattr__(name: str) -> Any:
    # The web stack (pip install 'pushwire[serve]') is imported only when the app is built:
    # `pushwire keys` and the rest of the CLI work without it.
    if name in ("create_app", "create_asgi_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
