"""The Waiter a single send() awaits: asyncio's future protocol on asyncio and uvloop, a
resume that runs the waiting task at once outside a task and schedules it inside one, and
one outcome per send when the client closes from a task that a resume is running."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

import pushwire
from pushwire import Notification, RetryPolicy
from pushwire._core import Waiter
from pushwire.testing import MockAPNs
from support.util import tokens

LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, main: Callable[[], Awaitable[Any]]) -> Any:
    if loop_kind == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_resume_outside_a_task_runs_the_waiting_task_before_returning(loop_kind: str) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        waiter: Waiter[str] = Waiter(loop, "item")
        steps: list[str] = []

        async def wait() -> None:
            steps.append(await waiter)

        task = loop.create_task(wait())
        await asyncio.sleep(0)  # the task now waits on the waiter

        def from_a_callback() -> None:
            assert waiter.resume("answer") is True
            steps.append("resume returned")

        loop.call_soon(from_a_callback)
        await task
        assert waiter.item == "item" and waiter.done() and waiter.result() == "answer"
        return steps

    assert run(loop_kind, main) == ["answer", "resume returned"]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_resume_inside_a_task_schedules_the_waiting_task(loop_kind: str) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        waiter: Waiter[str] = Waiter(loop)
        steps: list[str] = []

        async def wait() -> None:
            steps.append(await waiter)

        task = loop.create_task(wait())
        await asyncio.sleep(0)
        assert waiter.resume("answer") is True  # this coroutine is a running task
        steps.append("resume returned")
        await task
        return steps

    assert run(loop_kind, main) == ["resume returned", "answer"]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_cancelling_the_waiting_task_cancels_the_waiter(loop_kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiter: Waiter[str] = Waiter(loop)
        task = loop.create_task(asyncio.wait_for(waiter, 0.01))
        with pytest.raises(asyncio.TimeoutError):
            await task
        assert waiter.cancelled()
        with pytest.raises(asyncio.CancelledError):
            waiter.result()
        assert waiter.resume("late") is False  # a late outcome is dropped, not raised

        other: Waiter[str] = Waiter(loop)
        task = loop.create_task(_await(other))
        await asyncio.sleep(0)
        task.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert other.cancelled()

    run(loop_kind, main)


async def _await(waiter: Waiter[Any]) -> Any:
    return await waiter


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_errors_and_states(loop_kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        failing: Waiter[str] = Waiter(loop)
        task = loop.create_task(_await(failing))
        await asyncio.sleep(0)
        failing.set_exception(pushwire.ClientClosedError("closed"))
        with pytest.raises(pushwire.ClientClosedError):
            await task
        assert isinstance(failing.exception(), pushwire.ClientClosedError)
        with pytest.raises(asyncio.InvalidStateError):
            failing.set_result("again")

        pending: Waiter[str] = Waiter(loop)
        with pytest.raises(asyncio.InvalidStateError):
            pending.result()
        seen: list[Any] = []
        pending.add_done_callback(seen.append)
        pending.add_done_callback(lambda w: seen.append("second"))
        assert pending.remove_done_callback(seen.append) == 1
        pending.set_result("x")
        await asyncio.sleep(0)
        assert seen == ["second"]
        pending.add_done_callback(seen.append)  # already done: scheduled
        await asyncio.sleep(0)
        assert seen == ["second", pending]
        assert asyncio.isfuture(pending)
        assert repr(pending) == "<Waiter finished>"

        # Stepping the awaitable twice without its completion is asyncio's error.
        lone: Waiter[str] = Waiter(loop)
        steps = lone.__await__()
        assert next(steps) is lone
        with pytest.raises(RuntimeError, match="await wasn't used with future"):
            next(steps)

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_the_task_runs_in_its_own_context(loop_kind: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> str:
        loop = asyncio.get_running_loop()
        waiter: Waiter[None] = Waiter(loop)

        async def wait() -> str:
            var.set("task's")
            await waiter
            return var.get()

        task = loop.create_task(wait())
        await asyncio.sleep(0)
        loop.call_soon(waiter.resume, None)
        return await task

    assert run(loop_kind, main) == "task's"


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_callback_error_neither_stops_the_batch_nor_vanishes(loop_kind: str) -> None:
    """Resuming from a reader callback delivers a whole batch: an exception escaping a step
    goes to the loop's handler, KeyboardInterrupt propagates from the loop's next turn (as
    from any callback), and every other waiter of the batch is still resumed first."""
    loop = uvloop.new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
    try:
        handled: list[Any] = []
        loop.set_exception_handler(lambda _loop, context: handled.append(context["exception"]))
        waiters: list[Waiter[int]] = [Waiter(loop) for _ in range(3)]
        resumed: list[str] = []

        def boom(_w: Any) -> None:
            raise ValueError("in a callback")

        def interrupt(_w: Any) -> None:
            raise KeyboardInterrupt

        waiters[0].add_done_callback(boom)
        waiters[1].add_done_callback(interrupt)
        waiters[2].add_done_callback(lambda _w: resumed.append("third"))

        def deliver() -> None:
            for i, waiter in enumerate(waiters):
                waiter.resume(i)
            resumed.append("batch done")

        loop.call_soon(deliver)
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(0.05))
        assert [type(e) for e in handled] == [ValueError]
        assert resumed == ["third", "batch done"]
    finally:
        loop.close()


def test_a_waiter_is_tracked_by_the_garbage_collector() -> None:
    """A pending waiter and the task awaiting it form a cycle; the collector must see it."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiter: Waiter[None] = Waiter(loop)
        assert gc.is_tracked(waiter)

    asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_closing_from_a_resumed_task_leaves_every_send_one_outcome(
    loop_kind: str, credentials: pushwire.TokenCredentials, message: pushwire.Message
) -> None:
    """The first task to get its result closes the client while a resume is running it; the
    close then delivers the rest from inside that task, where a resume must schedule instead.
    Every send ends with one outcome, checked against what the mock received."""
    # Answered 503 and waiting half a minute for their resend when the close comes: the
    # close reports their last answer from inside the closing task.
    waiting = tokens(50, "5030")
    toks = tokens(250) + waiting
    with MockAPNs(credentials=credentials, rules={"5030": "503"}) as server:

        async def main() -> dict[str, str]:
            client = server.client(retry=RetryPolicy(base_delay=30, max_delay=60))
            outcomes: dict[str, str] = {}

            async def one(token: str) -> None:
                try:
                    result = await client.send(Notification(token, message))
                except pushwire.ClientClosedError:
                    outcomes[token] = "closed"
                    return
                assert token not in outcomes
                outcomes[token] = result.outcome.value
                if len(outcomes) == 1:
                    await client.aclose()

            await asyncio.wait_for(asyncio.gather(*(one(t) for t in toks)), 30)
            return outcomes

        outcomes = run(loop_kind, main)
        assert sorted(outcomes) == sorted(toks)
        assert "delivered" in outcomes.values()
        assert {outcomes[t] for t in waiting} == {"rejected"}
        for token, outcome in outcomes.items():
            if outcome in ("delivered", "rejected"):
                assert server.received(token) == 1
            else:
                assert outcome in ("closed", "failed") and server.received(token) <= 1
