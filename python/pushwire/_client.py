"""The client machinery shared by APNs, FCM and Web Push: engine, dispatcher, lifecycle,
sending."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Union

from . import _core
from ._dispatch import AuthRetry, Dispatcher
from ._errors import ClientClosedError, ConfigurationError
from ._pool_options import PoolOptions
from ._record import OutcomeRecord
from ._results import Result, Results
from ._retry import NO_RETRY, RateLimiter, RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Self

PathLike = Union[str, os.PathLike[str]]

#: What ``send`` takes (a ``Notification``, a ``WebPushNotification``...).
N = TypeVar("N")
#: The message ``send_to_tokens`` sends to every target.
M = TypeVar("M")
#: One target of ``send_to_tokens``: a device token, or a Web Push subscription.
K = TypeVar("K")


class PushClient(Generic[N, M, K]):
    """Base of :class:`APNsClient`, :class:`FCMClient` and :class:`WebPushClient`: one
    engine with one pool per credential (Web Push: per push service), every notification
    submitted gets exactly one :class:`Result`. ``N``, ``M`` and ``K`` are what the
    provider's ``send``, ``send_to_tokens`` message and targets are."""

    #: (status, reason) of rejections a fixed credential cures (subclasses set it).
    AUTH_RETRY: ClassVar[AuthRetry] = frozenset()

    def __init__(
        self,
        base_url: str | None,
        *,
        identity: str,
        ca_file: PathLike | None,
        options: PoolOptions,
        max_in_flight: int,
        worker_threads: int,
        retry: RetryPolicy | None,
        rate_limit: int | None,
        path_prefix: str = "",
        client_cert: tuple[bytes, bytes] | None = None,
    ) -> None:
        """``base_url`` None: no pool yet (Web Push adds one per push service)."""
        if options.request_timeout <= 0:
            raise ConfigurationError("request_timeout must be positive", field="request_timeout")
        self.base_url = base_url or ""
        self.request_timeout = options.request_timeout
        #: The pool's validated options (what the keyword arguments became).
        self.pool_options = options
        self._ca_file = os.fspath(ca_file) if ca_file is not None else None
        self._engine = _core.Engine(worker_threads=worker_threads, max_in_flight=max_in_flight)
        cert_pem, key_pem = client_cert if client_cert is not None else (None, None)
        self._pool = -1
        if base_url is not None:
            self._pool = self._engine.add_pool(
                base_url,
                options,
                path_prefix=path_prefix,
                ca_file=self._ca_file,
                identity=identity,
                client_cert_pem=cert_pem,
                client_key_pem=key_pem,
            )
        self._retry = retry if retry is not None else NO_RETRY
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigurationError(
                "rate_limit must be a positive number per minute", field="rate_limit"
            )
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._dispatcher: Dispatcher | None = None
        self._closed = False
        #: The engine's threads exist only in this process (a fork copies none of them).
        self._pid = os.getpid()

    # -- hooks for subclasses ----------------------------------------------------------------

    def _before_submit(self) -> None:
        """Called before every engine call: hand the engine a fresh credential if due."""

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        """The provider refused our credential (``rejected``: the engine's outcome records);
        fix it, and the notifications are resent once afterwards. Return an awaitable when the
        fix needs the network."""
        return None

    async def _ready(self) -> None:
        """Wait until the client can send (FCM: an access token)."""

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` began."""
        return self._closed

    async def aclose(self) -> None:
        """Close: queued notifications fail as not sent, open streams finish (bounded by
        ``request_timeout``); every submitted notification still gets its result."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            # A forked child: the engine and the event loop it was attached to are the
            # parent's; there is nothing here to finish or detach.
            self._dispatcher = None
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._engine.close, self.request_timeout + 1.0)
        if self._dispatcher is not None:
            self._dispatcher.detach()
            self._dispatcher = None

    def _dispatch(self) -> Dispatcher:
        if os.getpid() != self._pid:
            raise ConfigurationError(
                f"this client was created in process {self._pid} and this is a forked child "
                f"({os.getpid()}): its engine threads do not exist here. Create clients after "
                "forking (e.g. in a worker's startup or gunicorn's post_fork)",
                field="client",
            )
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
            d = self._dispatcher = Dispatcher(
                self._engine,
                self._pool,
                loop,
                self._before_submit,
                self.AUTH_RETRY,
                self._fix_auth,
                self._retry,
                self._limiter,
            )
        return d

    # -- sending ----------------------------------------------------------------------------

    async def send(self, notification: N) -> Result:
        """Send one notification. Calls from many tasks are batched into one engine call."""
        dispatcher = self._dispatch()
        await self._ready()
        return await dispatcher.send_one(notification)

    async def send_many(self, notifications: Sequence[N]) -> Results:
        """Send a batch; results in input order. The whole batch is validated first."""
        items = notifications if isinstance(notifications, list) else list(notifications)
        dispatcher = self._dispatch()
        await self._ready()
        return await dispatcher.send_list(items)

    async def send_to_tokens(self, message: M, tokens: Sequence[K]) -> Results:
        """Send one message to many tokens; the payload is encoded and stored once."""
        token_list = tokens if isinstance(tokens, list) else list(tokens)
        dispatcher = self._dispatch()
        await self._ready()
        template = message._template  # type: ignore[attr-defined]  # every message has one
        return await dispatcher.send_list(token_list, tokens_of=template)

    async def stream(
        self, notifications: Iterable[N], *, strict: bool = False
    ) -> AsyncIterator[Result]:
        """Send an iterable of any length with bounded memory; yield results as they complete.

        ``Result.index`` is the position in the input. A notification refused locally yields a
        ``failed`` result, or raises :class:`PayloadError` with ``strict=True``.
        """
        dispatcher = self._dispatch()
        await self._ready()
        async for result in dispatcher.stream(notifications, strict=strict):
            yield result

    #: Label of this client's provider in metrics (subclasses set it).
    PROVIDER: ClassVar[str] = ""

    def stats(self) -> dict[str, int]:
        """Engine counters: connections, timeouts, retries, GOAWAYs, resets, streams in flight..."""
        return dict(self._engine.stats(self._pool))

    def metrics(self) -> dict[str, Any]:
        """What :mod:`pushwire.metrics` exports: :meth:`stats`, the latency histogram
        (``latency_bounds`` in seconds, cumulative ``latency_buckets`` ending with +Inf,
        ``latency_sum``, ``latency_count``; submission to outcome), outcome counts and
        ``auth_refreshes`` (JWTs minted / OAuth2 tokens fetched). Reading it never blocks sends."""
        snapshot: dict[str, Any] = dict(self._engine.metrics(self._pool))
        snapshot.update(self._engine.stats(self._pool))
        snapshot["auth_refreshes"] = self._auth_refreshes()
        return snapshot

    def _auth_refreshes(self) -> int:
        """Credentials obtained so far (subclasses with credentials override)."""
        return 0


#: Any provider's client (where the store and the CLI hold clients of several providers).
AnyPushClient = PushClient[Any, Any, Any]
