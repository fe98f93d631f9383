"""Blocking facades for scripts and threaded web apps: the async clients run on a private
event loop in a daemon thread, so one client serves calls from any number of threads (the way
one ``requests.Session`` does)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ._apns import APNS_RETRY, APNsClient
from ._client import K, Keep, M, N, PathLike, PushClient, _check_keep
from ._errors import ClientClosedError, ConfigurationError, PushwireError
from ._fcm import DEFAULT_BASE_URL, FCMClient
from ._message import Message, NotificationLike
from ._oauth import ServiceAccountCredentials
from ._report import BulkReport
from ._results import Result, Results
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._webpush import WebPushClient, WebPushNotificationLike
from .credentials import Credentials
from .fcm import FCMMessage
from .vapid import VapidKey
from .webpush import WebPushMessage, WebPushSubscription

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._pool_options import PoolOptionArgs

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread; coroutines are handed to it from any
    thread. Stopping it cancels what is left and closes the loop in its own thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        """Stop the loop and wait for its thread (unless called from that thread)."""
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


async def _awaited(awaitable: Awaitable[T]) -> T:
    """A coroutine for any awaitable (run_coroutine_threadsafe takes only coroutines)."""
    return await awaitable


def _stop_unreachable(runner: _LoopThread, pid: int) -> None:
    """A client dropped without close(): end its loop thread (the engine closes itself when
    the async client is collected). Nothing to do in a forked child: the thread is not here."""
    if os.getpid() == pid:
        runner.stop()


class _SyncClient(Generic[N, M, K]):
    """Same methods as the async client, without ``await``. Safe to share between threads;
    not for use inside a running event loop (use the async client there)."""

    _ASYNC_NAME = "APNsClient"

    def __init__(self, client: PushClient[N, M, K]) -> None:
        self._client = client
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self._runner = _LoopThread(f"pushwire-{type(self).__name__}")
        self._finalizer = weakref.finalize(self, _stop_unreachable, self._runner, self._pid)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def _check_caller(self) -> None:
        if os.getpid() != self._pid:
            raise ConfigurationError(
                f"this client was created in process {self._pid} and this is a forked child "
                f"({os.getpid()}): its engine threads do not exist here. Create clients after "
                "forking (e.g. in a worker's startup or gunicorn's post_fork)",
                field="client",
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise ConfigurationError(
            f"{type(self).__name__} blocks, and this call was made inside a running event "
            f"loop, which it would stall: use pushwire.{self._ASYNC_NAME} with `await` there",
            field="client",
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            self._check_caller()
            with self._lock:
                # The lock only orders submission against close(): once closed, nothing more
                # reaches the loop. The wait itself happens outside it.
                if self._closed:
                    raise ClientClosedError("the client is closed")
                future = self._runner.submit(coro)
        except BaseException:
            coro.close()  # never "coroutine was never awaited"
            raise
        try:
            return future.result()
        except BaseException:
            # Interrupted (Ctrl-C) while waiting: stop the call on the loop too.
            future.cancel()
            raise

    def send(self, notification: N) -> Result:
        return self._run(self._client.send(notification))

    @overload
    def send_many(self, notifications: Sequence[N], *, keep: Literal["all"] = "all") -> Results: ...

    @overload
    def send_many(self, notifications: Sequence[N], *, keep: Literal["problems"]) -> BulkReport: ...

    def send_many(self, notifications: Sequence[N], *, keep: Keep = "all") -> Results | BulkReport:
        _check_keep(keep)
        if keep == "problems":
            return self._run(self._client.send_many(notifications, keep="problems"))
        return self._run(self._client.send_many(notifications))

    @overload
    def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Literal["all"] = "all"
    ) -> Results: ...

    @overload
    def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Literal["problems"]
    ) -> BulkReport: ...

    def send_to_tokens(
        self, message: M, tokens: Sequence[K], *, keep: Keep = "all"
    ) -> Results | BulkReport:
        _check_keep(keep)
        if keep == "problems":
            return self._run(self._client.send_to_tokens(message, tokens, keep="problems"))
        return self._run(self._client.send_to_tokens(message, tokens))

    def send_stream(
        self, notifications: Iterable[N], *, strict: bool = False, message_ids: bool = True
    ) -> BulkReport:
        """A :class:`BulkReport` of an iterable of any length (read on the loop thread)."""
        return self._run(
            self._client.send_stream(notifications, strict=strict, message_ids=message_ids)
        )

    def stream(self, notifications: Iterable[N], *, strict: bool = False) -> Iterator[Result]:
        """Results as they complete; the iterable is read on the client's loop thread."""
        agen: AsyncIterator[Result] = self._client.stream(notifications, strict=strict)
        started = False
        try:
            while True:
                try:
                    result = self._run(_awaited(agen.__anext__()))
                except StopAsyncIteration:
                    return
                started = True
                yield result
        finally:
            if started:
                # Closed meanwhile, or dropped inside a loop: nothing left to end.
                with contextlib.suppress(PushwireError):
                    self._run(_awaited(agen.aclose()))  # type: ignore[attr-defined]

    def stats(self) -> dict[str, int]:
        return self._client.stats()

    def metrics(self) -> dict[str, Any]:
        return self._client.metrics()

    def close(self) -> None:
        """Close the client (from any thread): open streams finish, queued notifications fail
        as not sent. Idempotent; in a forked child it returns at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer.detach()
        if os.getpid() != self._pid:
            return
        try:
            self._runner.submit(self._client.aclose()).result()
        finally:
            self._runner.stop()


class SyncAPNsClient(_SyncClient[NotificationLike, Message, str]):
    """Blocking :class:`APNsClient`: same arguments, same methods, no ``await``; one client
    can be shared by all the threads of a process."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        environment: str = "production",
        base_url: str | None = None,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 4,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = APNS_RETRY,
        rate_limit: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
    ) -> None:
        super().__init__(
            APNsClient(
                credentials,
                environment=environment,
                base_url=base_url,
                ca_file=ca_file,
                request_timeout=request_timeout,
                max_connections=max_connections,
                max_in_flight=max_in_flight,
                worker_threads=worker_threads,
                retry=retry,
                rate_limit=rate_limit,
                **pool_options,
            )
        )


class SyncFCMClient(_SyncClient[NotificationLike, FCMMessage, str]):
    """Blocking :class:`FCMClient`: same arguments, same methods, no ``await``; one client
    can be shared by all the threads of a process."""

    _ASYNC_NAME = "FCMClient"

    def __init__(
        self,
        service_account: ServiceAccountCredentials,
        *,
        project_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        token_uri: str | None = None,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int | None = None,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rate_limit: int | None = None,
        quota_per_minute: int | None = None,
        quota_window: float = 60.0,
        avoid_hour_start: bool = False,
        target_rate: float | None = None,
        round_trip: float | None = None,
        streams_per_connection: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
    ) -> None:
        self._fcm = FCMClient(
            service_account,
            project_id=project_id,
            base_url=base_url,
            token_uri=token_uri,
            ca_file=ca_file,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
            quota_per_minute=quota_per_minute,
            quota_window=quota_window,
            avoid_hour_start=avoid_hour_start,
            target_rate=target_rate,
            round_trip=round_trip,
            streams_per_connection=streams_per_connection,
            **pool_options,
        )
        super().__init__(self._fcm)

    def send(self, notification: NotificationLike | FCMMessage) -> Result:
        """Send a ``Notification(token, message)``, or a message with its own target."""
        return self._run(self._fcm.send(notification))


class SyncWebPushClient(_SyncClient[WebPushNotificationLike, WebPushMessage, WebPushSubscription]):
    """Blocking :class:`WebPushClient`: same arguments, same methods, no ``await``; one
    client can be shared by all the threads of a process (a Flask or Django view sending to
    a user's browsers)."""

    _ASYNC_NAME = "WebPushClient"

    def __init__(
        self,
        vapid_key: VapidKey | str | bytes | os.PathLike[str],
        *,
        subject: str,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 2,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rate_limit: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
    ) -> None:
        self._webpush = WebPushClient(
            vapid_key,
            subject=subject,
            ca_file=ca_file,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
            **pool_options,
        )
        super().__init__(self._webpush)

    @property
    def vapid_public_key(self) -> str:
        """The ``applicationServerKey`` browsers must subscribe with."""
        return self._webpush.vapid_public_key

    def send_to_subscriptions(
        self, message: WebPushMessage, subscriptions: Sequence[WebPushSubscription]
    ) -> Results:
        """Send one message to many subscriptions (each encrypted for its own keys)."""
        return self._run(self._webpush.send_to_subscriptions(message, subscriptions))

    def pools(self) -> dict[str, int]:
        """Push-service origin -> engine pool, for every service used so far."""
        return self._webpush.pools()
