"""Ctrl-C during a send: stop reading input, let the notifications in flight finish, then
(second signal, or the grace period) close the client. Shared by the sending commands."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from .._client import AnyPushClient
from .errors import echo_warning

#: Added to the request timeout before a drain gives up waiting.
DRAIN_MARGIN = 2.0


class Interrupt:
    """SIGINT/SIGTERM, handled on the event loop so no result in flight is lost.

    First signal: read no more input; the notifications in flight get their results.
    Second signal (or ``grace`` seconds later): close the client: queued and to-be-resent
    notifications are given up (not sent), open streams still end by their deadline.
    A third signal is no longer caught: Python's default (KeyboardInterrupt) applies.
    """

    def __init__(self, client: AnyPushClient, grace: float, in_flight: Callable[[], int]) -> None:
        self.requested = False
        self._client = client
        self._grace = grace
        self._in_flight = in_flight
        self._closing: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._installed = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._on_signal)
        self._installed = True

    def remove(self) -> None:
        if self._installed:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.remove_signal_handler(sig)
            self._installed = False

    def _on_signal(self) -> None:
        if self.requested:
            echo_warning("interrupted again: closing now")
            self.remove()
            self._close_now()
            return
        self.requested = True
        echo_warning(
            f"interrupted: reading no more input; waiting up to {self._grace:.0f} s for the "
            f"{self._in_flight():,} notifications in flight (Ctrl-C again to close sooner)"
        )
        self._loop.call_later(self._grace, self._close_now)

    @property
    def closing(self) -> bool:
        return self._closing is not None

    def _close_now(self) -> None:
        if self._closing is None:
            self._closing = self._loop.create_task(self._client.aclose())

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await self._closing
