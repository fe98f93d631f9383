"""Work that requests arriving together share: the calls made in the same turn of the event
loop are answered by ONE call of a function taking them all, each with its own answer or
its own error.

Two uses: the group commit of device registrations (:meth:`pushwire.store.Store.register_each`:
one transaction for the registrations of a turn; durability and the store's rules,
idempotency and re-enabling a disabled token, are those of :meth:`Store.register`), and
the API-key check (:meth:`ApiKeys.verify_many`: one read for the keys of a turn). Nothing
is answered before the shared call has returned, so a registration is answered after its
commit and a key is checked against the database after its request arrived (a revocation
committed before then is seen)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from ..store import Endpoint, Registration, Store

In = TypeVar("In")
Out = TypeVar("Out")
#: Most calls answered by one shared call (a flush takes what is queued, up to this).
MAX_BATCH = 500


class TurnBatcher(Generic[In, Out]):
    def __init__(
        self,
        many: Callable[[list[In]], Sequence[Out | BaseException]],
        run: Callable[..., Awaitable[Any]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        """``many(items)`` answers each item (a result or an exception, in order);
        ``run(fn, *args)`` runs it (inline on SQLite, in a thread on PostgreSQL), as
        :meth:`Services.db` does."""
        self._many = many
        self._run = run
        self._max = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._flushing = False
        self._task: asyncio.Future[None] | None = None

    async def __call__(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        if not self._flushing:
            self._flushing = True
            # After the handlers already runnable in this turn have queued theirs.
            loop.call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        self._task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                try:
                    answers: Sequence[Out | BaseException] = await self._run(
                        self._many, [item for item, _ in batch]
                    )
                except BaseException as e:  # every waiting call gets the failure
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


class RegistrationBatcher(TurnBatcher[Registration, Endpoint]):
    """The group commit of device registrations (cause ``api`` in the change log)."""

    def __init__(self, store: Store, run: Callable[..., Awaitable[Any]]) -> None:
        def register_each(rows: list[Registration]) -> Sequence[Endpoint | BaseException]:
            return store.register_each(rows, cause="api")

        super().__init__(register_each, run)

    async def register(self, registration: Registration) -> Endpoint:
        return await self(registration)
