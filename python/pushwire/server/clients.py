"""One engine client per application, built from its ``credentials_ref`` on first use and
rebuilt when the application row changes (rotated credentials take effect without a
restart). A client whose credentials cannot be loaded fails that application's sends only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .._apns import APNsClient
from .._fcm import FCMClient
from .._webpush import WebPushClient
from ..store.credentials import client_for
from ..store.model import Application, Provider
from .settings import ServerSettings

log = logging.getLogger("pushwire.server")

Client = APNsClient | FCMClient | WebPushClient


class ClientPool:
    def __init__(self, settings: ServerSettings, metrics_registry: Any = None) -> None:
        self._settings = settings
        self._registry = metrics_registry
        self._clients: dict[str, tuple[datetime, Client]] = {}
        self._retired: set[asyncio.Task[None]] = set()
        # One lock per application: a slow build (credentials on a slow disk) holds up only
        # that application's sends.
        self._locks: dict[str, asyncio.Lock] = {}

    def options(self, application: Application) -> dict[str, Any]:
        s = self._settings
        options: dict[str, Any] = {"request_timeout": s.request_timeout}
        if s.ca_file:
            options["ca_file"] = s.ca_file
        if application.provider is Provider.APNS and s.apns_url:
            options["base_url"] = s.apns_url
        if application.provider is Provider.FCM:
            if s.fcm_url:
                options["base_url"] = s.fcm_url
            if s.token_uri:
                options["token_uri"] = s.token_uri
        return options

    def new_client(self, application: Application) -> Client:
        """A client of its own (a job's, closed by its owner)."""
        return client_for(application, **self.options(application))

    async def get(self, application: Application) -> Client:
        """The shared client of ``application`` (current settings)."""
        lock = self._locks.setdefault(application.name, asyncio.Lock())
        async with lock:
            held = self._clients.get(application.name)
            if held is not None and held[0] == application.updated_at:
                return held[1]
            loop = asyncio.get_running_loop()
            client = await loop.run_in_executor(None, self.new_client, application)
            await client.__aenter__()
            if self._registry is not None:
                from ..metrics import instrument

                instrument(client, name=application.name, registry=self._registry)
            self._clients[application.name] = (application.updated_at, client)
            if held is not None:
                self._retire(held[1])
            return client

    async def clients_for(self, applications: Iterable[Application]) -> dict[str, Client]:
        return {app.name: await self.get(app) for app in applications}

    def _retire(self, client: Client) -> None:
        """Close a replaced client once sends already on it had time to finish."""

        async def close_later() -> None:
            await asyncio.sleep(self._settings.request_timeout * 2)
            await client.aclose()

        task = asyncio.ensure_future(close_later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def count(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        for task in list(self._retired):
            task.cancel()
        clients = [c for _, c in self._clients.values()]
        self._clients.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
