"""Blocking facades for scripts: the async clients run on a private event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._apns import APNsClient
from ._client import PushClient
from ._fcm import FCMClient
from ._results import Result, Results

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._message import Message, NotificationLike
    from .fcm import FCMMessage

C = TypeVar("C", bound=PushClient)


class _SyncClient(Generic[C]):
    """Same methods as the async client, without ``await``. Do not use inside a running loop."""

    def __init__(self, client: C, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._client = client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def send(self, notification: NotificationLike) -> Result:
        result: Result = self._run(self._client.send(notification))
        return result

    def send_many(self, notifications: Sequence[NotificationLike]) -> Results:
        results: Results = self._run(self._client.send_many(notifications))
        return results

    def send_to_tokens(self, message: Message | FCMMessage, tokens: Sequence[str]) -> Results:
        results: Results = self._run(self._client.send_to_tokens(message, tokens))
        return results

    def stream(
        self, notifications: Iterable[NotificationLike], *, strict: bool = False
    ) -> Iterator[Result]:
        agen: AsyncIterator[Result] = self._client.stream(notifications, strict=strict)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())  # type: ignore[attr-defined]

    def stats(self) -> dict[str, int]:
        return self._client.stats()

    def metrics(self) -> dict[str, Any]:
        return self._client.metrics()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.aclose())
        self._loop.close()


def _private_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


class SyncAPNsClient(_SyncClient[APNsClient]):
    """Blocking :class:`APNsClient` for scripts: same arguments, same methods, no ``await``."""

    def __init__(self, *args: Any, **options: Any) -> None:
        loop = _private_loop()
        super().__init__(APNsClient(*args, **options), loop)


class SyncFCMClient(_SyncClient[FCMClient]):
    """Blocking :class:`FCMClient` for scripts: same arguments, same methods, no ``await``."""

    def __init__(self, *args: Any, **options: Any) -> None:
        loop = _private_loop()
        super().__init__(FCMClient(*args, **options), loop)

    def send(self, notification: NotificationLike | FCMMessage) -> Result:
        """Send a ``Notification(token, message)``, or a message with its own target."""
        result: Result = self._run(self._client.send(notification))
        return result
