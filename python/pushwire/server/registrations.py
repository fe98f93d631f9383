"""Group commit of device registrations: registrations that arrive together (the handlers
that reach this point in the same turn of the event loop) are written in one transaction
(:meth:`pushwire.store.Store.register_each`), and each request is answered after that
commit with its own endpoint or its own error. Durability and the store's rules
(idempotency, re-enabling a disabled token) are those of :meth:`Store.register`; what is
saved is a transaction, an application lookup and the statements' fixed cost per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..store import Endpoint, Registration, Store

T = TypeVar("T")
#: Most registrations per transaction (a flush takes what is queued, up to this).
MAX_BATCH = 500


class RegistrationBatcher:
    def __init__(self, store: Store, run: Callable[..., Awaitable[Any]]) -> None:
        """``run(fn, *args)`` runs a store call (inline on SQLite, in a thread on
        PostgreSQL), as :meth:`Services.db` does."""
        self._store = store
        self._run = run
        self._queue: list[tuple[Registration, asyncio.Future[Endpoint]]] = []
        self._flushing = False

    async def register(self, registration: Registration) -> Endpoint:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Endpoint] = loop.create_future()
        self._queue.append((registration, future))
        if not self._flushing:
            self._flushing = True
            # After the handlers already runnable in this turn have queued theirs.
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    answers = await self._run(
                        self._store.register_each, [r for r, _ in batch], cause="api"
                    )
                except BaseException as e:  # every waiting request gets the failure
                    answers = [e] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._flushing = False
