"""``late_answers`` counts responses the server sent for a stream that had already timed out;
the client's own RST_STREAM(CANCEL) at the deadline is not an answer."""

from __future__ import annotations

import asyncio

import pushwire
from pushwire.testing import MockAPNs

HUNG = ["eeee" + f"{i:060x}" for i in range(5)]
SLOW = ["5105" + f"{i:060x}" for i in range(5)]


def _run(server: MockAPNs, tokens: list[str], message: pushwire.Message, **options):
    async def go():
        async with server.client(**options) as client:
            results = await client.send_to_tokens(message, tokens)
            await asyncio.sleep(0.3)  # let the engine see whatever comes after the resets
            return results, client.stats()

    return asyncio.run(go())


def test_streams_the_server_never_answered_are_timeouts_not_late_answers(credentials, message):
    with MockAPNs(credentials=credentials, rules={"eeee": "hang"}) as server:
        results, stats = _run(server, HUNG, message, request_timeout=0.3)
    assert [r.outcome for r in results] == [pushwire.Outcome.TIMEOUT] * len(HUNG)
    assert stats["timeouts"] == len(HUNG)
    assert stats["late_answers"] == 0


def test_answers_slower_than_the_deadline_are_timeouts_and_no_answer_is_made_up(
    credentials, message
):
    """The server answers 0.6 s after a 0.3 s deadline. By then the client has reset the
    stream, and HTTP/2 discards frames on a stream it reset, so the engine never sees that
    answer: it is a timeout, and counting it as a late answer would be a guess."""
    with MockAPNs(credentials=credentials, rules={"5105": "delay:600"}) as server:
        results, stats = _run(server, SLOW, message, request_timeout=0.3)
        for token in SLOW:
            assert server.received(token) == 1
    assert [r.outcome for r in results] == [pushwire.Outcome.TIMEOUT] * len(SLOW)
    assert stats["timeouts"] == len(SLOW)
    assert stats["late_answers"] == 0
