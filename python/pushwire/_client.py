"""APNsClient: async-first, with a sync facade for scripts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Union

from . import _core
from ._dispatch import Dispatcher
from ._errors import ClientClosedError, ConfigurationError
from ._message import Message, Notification
from ._results import Result, Results
from .credentials import CertificateCredentials, Credentials, TokenCredentials

ENVIRONMENTS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}


class APNsClient:
    """Sends notifications to APNs over a pool of multiplexed HTTP/2 connections.

    One long-lived client per credential. Use it as ``async with APNsClient(...) as client``.
    Every notification submitted gets exactly one :class:`Result`; rejections are results,
    not exceptions.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        environment: str = "production",
        base_url: str | None = None,
        ca_file: Union[str, os.PathLike[str], None] = None,
        request_timeout: float = 10.0,
        max_connections: int = 4,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        **pool_options: Any,
    ) -> None:
        if base_url is None:
            if environment not in ENVIRONMENTS:
                raise ConfigurationError(
                    f"environment must be 'production' or 'sandbox', got {environment!r}",
                    field="environment",
                )
            base_url = ENVIRONMENTS[environment]
        if request_timeout <= 0:
            raise ConfigurationError("request_timeout must be positive", field="request_timeout")
        self.base_url = base_url
        self.environment = environment
        self.request_timeout = request_timeout
        self._credentials = credentials
        self._engine = _core.Engine(worker_threads=worker_threads, max_in_flight=max_in_flight)
        cert_pem: bytes | None = None
        key_pem: bytes | None = None
        if isinstance(credentials, CertificateCredentials):
            cert_pem, key_pem = credentials.client_cert()
        identity = f"{credentials.identity}:{environment}" if credentials is not None else ""
        self._pool = self._engine.add_pool(
            base_url,
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
            identity=identity,
            max_connections=max_connections,
            request_timeout=request_timeout,
            client_cert_pem=cert_pem,
            client_key_pem=key_pem,
            **pool_options,
        )
        self._dispatcher: Dispatcher | None = None
        self._auth_sent: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"APNsClient(base_url={self.base_url!r}, credentials={self._credentials!r})"

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> APNsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close: queued notifications fail as not sent, open streams finish (bounded by
        ``request_timeout``); every submitted notification still gets its result."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._engine.close, self.request_timeout + 1.0)
        if self._dispatcher is not None:
            self._dispatcher.detach()
            self._dispatcher = None

    def _refresh_auth(self) -> None:
        """Hand the engine the current JWT when it changed (called once per engine call)."""
        creds = self._credentials
        if isinstance(creds, TokenCredentials):
            value = creds.authorization()
            if value is not self._auth_sent:
                self._engine.set_authorization(self._pool, value)
                self._auth_sent = value

    def _fix_auth(self, reasons: set[str]) -> None:
        """APNs refused our credential: mint a new JWT (ExpiredProviderToken) or move to fresh
        connections (UnrelatedKeyIdInToken). Never mints within 20 minutes of the last JWT."""
        creds = self._credentials
        if "ExpiredProviderToken" in reasons and isinstance(creds, TokenCredentials):
            value = creds.authorization(force=True)
            if value is not self._auth_sent:
                self._engine.set_authorization(self._pool, value)
                self._auth_sent = value
        if "UnrelatedKeyIdInToken" in reasons:
            self._engine.retire_connections(self._pool)

    def _dispatch(self) -> Dispatcher:
        if self._closed:
            raise ClientClosedError("the client is closed")
        loop = asyncio.get_running_loop()
        d = self._dispatcher
        if d is None or d.loop is not loop:
            if d is not None:
                if self._engine.outstanding():
                    raise ConfigurationError(
                        "this client is busy on another event loop; use one client per loop"
                    )
                d.detach()
            self._refresh_auth()
            d = self._dispatcher = Dispatcher(
                self._engine, self._pool, loop, self._refresh_auth, self._fix_auth
            )
        return d

    # -- sending ----------------------------------------------------------------------------

    async def send(self, notification: Notification) -> Result:
        """Send one notification. Calls from many tasks are batched into one engine call."""
        return await self._dispatch().send_one(notification)

    async def send_many(self, notifications: Sequence[Notification]) -> Results:
        """Send a batch; results in input order. The whole batch is validated first."""
        items = notifications if isinstance(notifications, list) else list(notifications)
        return await self._dispatch().send_list(items)

    async def send_to_tokens(self, message: Message, tokens: Sequence[str]) -> Results:
        """Send one message to many tokens; the payload is encoded and stored once."""
        token_list = tokens if isinstance(tokens, list) else list(tokens)
        return await self._dispatch().send_list(token_list, tokens_of=message._template)

    def stream(
        self, notifications: Iterable[Notification], *, strict: bool = False
    ) -> AsyncIterator[Result]:
        """Send an iterable of any length with bounded memory; yield results as they complete.

        ``Result.index`` is the position in the input. A notification refused locally yields a
        ``failed`` result, or raises :class:`PayloadError` with ``strict=True``.
        """
        return self._dispatch().stream(notifications, strict=strict)

    def stats(self) -> dict[str, int]:
        """Engine counters: connections, timeouts, retries, GOAWAYs, resets..."""
        return dict(self._engine.stats(self._pool))


class SyncAPNsClient:
    """Blocking facade over :class:`APNsClient` for scripts: same methods, no ``await``.

    Runs a private event loop in the calling thread; do not use it inside a running loop.
    """

    def __init__(self, credentials: Credentials | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = APNsClient(credentials, **options)

    def __enter__(self) -> SyncAPNsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def send(self, notification: Notification) -> Result:
        result: Result = self._run(self._client.send(notification))
        return result

    def send_many(self, notifications: Sequence[Notification]) -> Results:
        results: Results = self._run(self._client.send_many(notifications))
        return results

    def send_to_tokens(self, message: Message, tokens: Sequence[str]) -> Results:
        results: Results = self._run(self._client.send_to_tokens(message, tokens))
        return results

    def stream(
        self, notifications: Iterable[Notification], *, strict: bool = False
    ) -> Iterator[Result]:
        async def start() -> AsyncIterator[Result]:
            return self._client.stream(notifications, strict=strict)

        agen = self._run(start())
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def stats(self) -> dict[str, int]:
        return self._client.stats()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.aclose())
        self._loop.close()
