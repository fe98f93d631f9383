"""What the handlers share in one server process: the store, API keys, clients, jobs,
rate limiter and metrics registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from ..store import Store
from .auth import Principal, RateLimiter, admit, presented_key
from .clients import ClientPool
from .errors import ApiProblem
from .keys import ApiKey, ApiKeys
from .registrations import RegistrationBatcher, TurnBatcher
from .runner import JobRunner
from .settings import ServerSettings

T = TypeVar("T")


class Services:
    def __init__(self, settings: ServerSettings, store: Store, registry: Any) -> None:
        self.settings = settings
        self.store = store
        self.keys = ApiKeys(store)
        self.registry = registry
        self.pool = ClientPool(settings, registry)
        self.jobs = JobRunner(
            store, self.pool, settings.redis, stream=settings.stream, group=settings.group
        )
        self.limiter = RateLimiter()
        # SQLite: one connection under a lock, microseconds per statement: run inline.
        # PostgreSQL: a pool and network round trips: run in threads.
        self._inline = store.database.dialect == "sqlite"
        # Registrations commit in a thread of their own, on either database: the event loop
        # goes on reading requests while a batch is written (and while SQLite checkpoints
        # its write-ahead log, which waits for the disk).
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pushwire-registrations")
        self.registrations = RegistrationBatcher(store, self.in_writer)
        #: The keys of the requests of a turn, read in one query.
        self.verify_key: TurnBatcher[str, ApiKey | None] = TurnBatcher(
            self.keys.verify_many, self.db
        )

    async def in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    def close(self) -> None:
        """After the last request: the registrations' thread ends."""
        self._writer.shutdown(wait=True)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def principal(self, request: Request[Any, Any, Any]) -> Principal:
        cached = request.scope.get("pushwire_principal")
        if isinstance(cached, Principal):
            return cached
        key_text, via_cookie = presented_key(request)
        key = await self.verify_key(key_text) if key_text is not None else None
        principal = admit(
            request, key_text, via_cookie, key, self.limiter, self.settings.rate_limit
        )
        request.scope["pushwire_principal"] = principal  # type: ignore[typeddict-unknown-key]
        return principal


def refuse_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """NUL characters mean nothing in a path or query and PostgreSQL cannot store them."""
    raw = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
    if b"%00" in raw or b"\x00" in raw or "\x00" in request.scope["path"]:
        raise ApiProblem(400, "Invalid request", "NUL characters are not accepted in the URL")


def refuse_nul(value: Any, field: str = "") -> None:
    """422 naming the field of the first string (or key) of a decoded body holding a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiProblem(
                422, "Invalid value", "NUL characters are not accepted", field=field or None
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            refuse_nul(key, path)
            refuse_nul(item, path)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            refuse_nul(item, f"{field}[{i}]")
    elif isinstance(value, msgspec.Struct):
        refuse_nul(msgspec.to_builtins(value), field)


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state.services
    return services


async def authorized(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard: the caller must hold a key allowing ``opt['action']``; runs before
    the body is read, so an anonymous request learns nothing about the body's schema."""
    services = services_of(connection)
    request = connection if isinstance(connection, Request) else None
    if request is None:
        return
    refuse_nul_in_url(request)
    principal = await services.principal(request)
    action = handler.opt.get("action")
    if action is not None:
        principal.require(action)
