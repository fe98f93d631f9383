"""The client machinery shared by APNs, FCM and Web Push: engine, dispatcher, lifecycle,
sending."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, Union, overload

from . import _core
from ._dispatch import AuthRetry, Dispatcher
from ._errors import ClientClosedError, ConfigurationError
from ._pool_options import PoolOptions
from ._record import OutcomeRecord
from ._report import BulkReport
from ._results import Result, Results
from ._retry import NO_RETRY, RateLimiter, RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Self

PathLike = Union[str, os.PathLike[str]]
#: What a bulk send keeps: every Result, or only the ones that need attention.
Keep = Literal["all", "problems"]


def _check_keep(keep: str) -> None:
    if keep not in ("all", "problems"):
        raise ConfigurationError(
            f"keep must be 'all' (every Result) or 'problems' (a BulkReport), not {keep!r}",
            field="keep",
        )


class _Process:
    """Forks seen by this process: a forked child bumps the count (``os.register_at_fork``),
    so a client learns it was forked without asking the kernel its pid on every send."""

    forks = 0


def _forked() -> None:
    _Process.forks += 1


os.register_at_fork(after_in_child=_forked)


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    """True when ``loop`` is the loop running in this thread, known without
    ``asyncio.get_running_loop()``, which costs a getpid() syscall per call before Python
    3.12. An asyncio loop records the thread running it (``_thread_id``, set and cleared by
    ``run_forever``), and a thread runs one loop at a time. False means "ask asyncio" (uvloop
    keeps no such attribute)."""
    return getattr(loop, "_thread_id", None) == threading.get_ident()


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
        self._remember_process()

    def _remember_process(self) -> None:
        """The engine's threads exist only in this process (a fork copies none of them)."""
        self._pid = os.getpid()
        self._forks = _Process.forks

    # -- hooks for subclasses ----------------------------------------------------------------

    def _before_submit(self) -> None:
        """Called before every engine call: hand the engine a fresh credential if due."""

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        """The provider refused our credential (``rejected``: the engine's outcome records);
        fix it, and the notifications are resent once afterwards. Return an awaitable when the
        fix needs the network."""
        return None

    def _ready(self) -> Awaitable[None] | None:
        """What to wait for before the client can send (FCM: an access token), or None."""
        return None

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
        if _Process.forks != self._forks:
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
        if _Process.forks != self._forks:
            raise ConfigurationError(
                f"this client was created in process {self._pid} and this is a forked child "
                f"({os.getpid()}): its engine threads do not exist here. Create clients after "
                "forking (e.g. in a worker's startup or gunicorn's post_fork)",
                field="client",
            )
        if self._closed:
            raise ClientClosedError("the client is closed")
        d = self._dispatcher
        if d is not None and _runs_here(d.loop):
            return d
        loop = asyncio.get_running_loop()
        if d is None or d.loop is not loop:
            if d is not None:
                # What the dispatcher still waits for, not the engine's outstanding count: the
                # engine counts an outcome out only after handing it over, so right after the
                # last result on the old loop that count may not have caught up yet.
                if d.busy():
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
        ready = self._ready()
        if ready is not None:
            await ready
        return await dispatcher.queue_one(notification)

    @overload
    async def send_many(
        self, notifications: Sequence[N], *, keep: Literal["all"] = "all"
    ) -> Results: ...

    @overload
    async def send_many(
        self, notifications: Sequence[N], *, keep: Literal["problems"]
    ) -> BulkReport: ...

    async def send_many(
        self, notifications: Sequence[N], *, keep: Keep = "all"
    ) -> Results | BulkReport:
        """Send a batch; results in input order. The whole batch is validated first.

        ``keep="problems"`` returns a :class:`BulkReport` instead: delivered notifications are
        counted (their ids packed), only the others are kept as Results."""
        _check_keep(keep)
        items = notifications if isinstance(notifications, list) else list(notifications)
        dispatcher = self._dispatch()
        ready = self._ready()
        if ready is not None:
            await ready
        if keep == "problems":
            return await dispatcher.send_list_report(items)
        return await dispatcher.send_list(items)

    @overload
    async def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Literal["all"] = "all"
    ) -> Results: ...

    @overload
    async def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Literal["problems"]
    ) -> BulkReport: ...

    async def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Keep = "all"
    ) -> Results | BulkReport:
        """Send one message to many tokens; the payload is encoded and stored once.
        ``keep="problems"``: a :class:`BulkReport`, as for :meth:`send_many`."""
        _check_keep(keep)
        token_list = tokens if isinstance(tokens, list) else list(tokens)
        dispatcher = self._dispatch()
        ready = self._ready()
        if ready is not None:
            await ready
        template = message._template  # type: ignore[attr-defined]  # every message has one
        if keep == "problems":
            return await dispatcher.send_list_report(token_list, tokens_of=template)
        return await dispatcher.send_list(token_list, tokens_of=template)

    async def send_stream(
        self, notifications: Iterable[N], *, strict: bool = False, message_ids: bool = True
    ) -> BulkReport:
        """Send an iterable of any length (read lazily, as :meth:`stream` does) and return a
        :class:`BulkReport`: memory stays bounded by the in-flight window plus a few bytes
        per delivered notification, whatever the length. ``message_ids=False`` keeps no
        provider id of the delivered ones (20 bytes each for APNs: 200 MB for ten million),
        only their count and one byte of order each.

        A notification refused locally is a ``failed`` problem, or raises
        :class:`PayloadError` with ``strict=True``. If the client is closed meanwhile,
        :class:`SendInterruptedError` carries the report of everything submitted.
        """
        dispatcher = self._dispatch()
        ready = self._ready()
        if ready is not None:
            await ready
        return await dispatcher.stream_report(notifications, strict=strict, message_ids=message_ids)

    async def stream(
        self, notifications: Iterable[N], *, strict: bool = False
    ) -> AsyncIterator[Result]:
        """Send an iterable of any length with bounded memory; yield results as they complete.

        ``Result.index`` is the position in the input. A notification refused locally yields a
        ``failed`` result, or raises :class:`PayloadError` with ``strict=True``.
        """
        dispatcher = self._dispatch()
        ready = self._ready()
        if ready is not None:
            await ready
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
