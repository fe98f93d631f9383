"""Resending what the provider asked to resend (429/500/503), bounded, and the client-side
rate limit. Every notification still ends with exactly one result."""

from __future__ import annotations

import asyncio
import time

import pytest

import pushwire
from pushwire import Notification, Outcome, RetryPolicy
from pushwire.testing import MockAPNs
from support.util import tokens

FAST = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2)


def send_all(server: MockAPNs, items, **options) -> pushwire.Results:
    async def main() -> pushwire.Results:
        async with server.client(**options) as client:
            return await client.send_many(items)

    return asyncio.run(main())


def test_a_503_storm_is_retried_a_bounded_number_of_times_then_failed(credentials, message):
    toks = tokens(200, "5030")
    with MockAPNs(credentials=credentials, rules={"5030": "503"}) as server:
        results = send_all(server, [Notification(t, message) for t in toks], retry=FAST)
        assert all(server.received(t) == 3 for t in toks)
    assert [r.token for r in results] == toks
    for r in results:
        assert (r.outcome, r.status, r.reason) == (Outcome.FAILED, 503, "ServiceUnavailable")
        assert r.attempts == 3 and not r.maybe_delivered
        assert "gave up after 3 sends" in (r.error or "")


def test_a_transient_500_is_resent_and_delivered_once(credentials, message):
    toks = tokens(300)
    with MockAPNs(credentials=credentials, rules={"": "500"}) as server:

        async def main() -> pushwire.Results:
            policy = RetryPolicy(max_attempts=5, base_delay=0.3, max_delay=0.6)
            async with server.client(retry=policy) as client:
                sending = asyncio.ensure_future(
                    client.send_many([Notification(t, message) for t in toks])
                )
                await asyncio.sleep(0.1)
                server.set_rules({})  # the server recovers
                return await sending

        results = asyncio.run(main())
        assert all(r.delivered for r in results)
        assert all(r.attempts >= 2 for r in results)
        # Delivered exactly once: earlier sends were answered 500, not processed.
        assert all(server.received(t) == r.attempts for t, r in zip(toks, results, strict=True))


def test_without_a_retry_policy_rejections_are_reported_as_is(credentials, message):
    toks = tokens(20, "5030")
    with MockAPNs(credentials=credentials, rules={"5030": "503"}) as server:
        results = send_all(server, [Notification(t, message) for t in toks], retry=None)
        assert all(server.received(t) == 1 for t in toks)
    assert {(r.outcome, r.status) for r in results} == {(Outcome.REJECTED, 503)}


def test_retry_after_longer_than_the_policy_allows_ends_the_retries(credentials, message):
    toks = tokens(5, "4290")
    # APNs' TooManyRequests carries no retry-after here; a policy that retries 429 with a
    # max delay below the quota default gives up at once rather than waiting.
    policy = RetryPolicy(max_attempts=3, statuses=frozenset({429}), base_delay=0.01, max_delay=0.05)
    with MockAPNs(credentials=credentials, rules={"4290": "429"}) as server:
        results = send_all(server, [Notification(t, message) for t in toks], retry=policy)
        assert all(server.received(t) == 3 for t in toks)
    assert all(r.outcome is Outcome.FAILED and r.reason == "TooManyRequests" for r in results)


def test_rate_limit_spreads_sends_over_time(credentials, message):
    toks = tokens(30)
    with MockAPNs(credentials=credentials) as server:
        start = time.monotonic()
        results = send_all(
            server, [Notification(t, message) for t in toks], rate_limit=1200
        )  # 20 per second, bursts of 20
        elapsed = time.monotonic() - start
    assert all(r.delivered for r in results)
    # 20 go at once, the other 10 need half a second of refill: a lower bound, robust to noise.
    assert elapsed >= 0.45


def test_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(pushwire.ConfigurationError):
        pushwire.APNsClient(base_url="https://localhost:1", rate_limit=0)


def test_a_high_rate_limit_waits_for_a_batch_not_for_each_notification():
    from pushwire._retry import RateLimiter

    fast = RateLimiter(per_minute=70_000 * 60)
    fast.take(fast.available())
    # 2 ms' worth (140 notifications), not the 14 µs one more would take.
    assert 0.0019 <= fast.wait_time() <= 0.0021
    slow = RateLimiter(per_minute=1200)  # 20/s: one notification's wait, as before
    slow.take(slow.available())
    assert 0.049 <= slow.wait_time() <= 0.051
