"""FCM at quota speed: the pool size a rate needs, a sliding-window pace that never overfills a
window, and a whole (scaled-down) project quota spent through the mock with almost no 429."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import Any

import pytest

import pushwire
from pushwire import ConfigurationError, FCMMessage, Outcome, RetryPolicy
from pushwire._pacing import ConnectionPlanner, QuotaRetry, SlidingWindowPace, connections_for
from pushwire.testing import MockFCM


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "round_trip", "streams", "expected"),
    [
        (10_000, 0.04, 100, 4),  # 4 x 100 / 0.04 s = 10,000/s exactly
        (10_001, 0.04, 100, 5),
        (10_000, 0.04, 1000, 1),
        (600_000 / 60, 0.05, 100, 5),  # FCM's default quota at 50 ms
        (1, 10.0, 100, 1),
    ],
)
def test_connections_for_a_rate(rate, round_trip, streams, expected):
    assert connections_for(rate, round_trip, streams) == expected


def test_connections_for_refuses_nonsense():
    for args in ((0, 0.04, 100), (10, 0, 100), (10, 0.04, 0), (float("nan"), 0.04, 100)):
        with pytest.raises(ValueError):
            connections_for(*args)


def test_the_pace_never_puts_more_than_the_quota_in_any_window():
    clock = FakeClock()
    pace = SlidingWindowPace(1000, 1.0, slices=20, guard=0.015, clock=clock)
    sent: list[tuple[float, int]] = []
    while clock.now < 1010.0:
        room = pace.available()
        if room:
            n = min(room, 7)  # the dispatcher takes what it has, in chunks
            pace.take(n)
            sent.append((clock.now, n))
        else:
            clock.now += max(pace.wait_time(), 1e-4)
    # Every window-long stretch, wherever it starts, holds at most the quota...
    for start, _ in sent:
        assert sum(n for t, n in sent if start <= t < start + 1.0) <= 1000
    # ...and the quota is nearly all used (the guard keeps 1.5%).
    total = sum(n for _, n in sent)
    assert 0.975 * 10_000 <= total <= 10_000 + 1000


def test_wait_time_says_when_room_comes_back():
    clock = FakeClock()
    pace = SlidingWindowPace(100, 10.0, slices=10, guard=0.0, clock=clock)
    assert pace.per_span == 10 and pace.span == 1.0 and pace.rate == 10.0
    pace.take(10)
    assert pace.available() == 0 and pace.wait_time() == pytest.approx(1.0)
    clock.now += 0.5
    assert pace.wait_time() == pytest.approx(0.5)
    clock.now += 0.5
    assert pace.available() == 10 and pace.wait_time() == 0.0


def test_a_pause_holds_every_send_with_jitter():
    clock = FakeClock()
    pace = SlidingWindowPace(100, 1.0, clock=clock)
    pace.pause(2.0, jitter=0.1)
    assert pace.available() == 0
    assert 2.0 <= pace.wait_time() <= 2.2
    clock.now += 2.21
    assert pace.available() > 0


def test_quota_retry_pauses_the_pace_on_quota_exceeded_only():
    clock = FakeClock()
    pace = SlidingWindowPace(100, 1.0, clock=clock)
    retry = QuotaRetry.around(RetryPolicy(max_attempts=4, quota_delay=5.0), pace)
    assert retry.max_attempts == 4
    assert retry.delay(1, "UNAVAILABLE", 1) == 1.0
    assert pace.available() > 0
    assert retry.delay(1, "QUOTA_EXCEEDED", 3) == 3.0
    assert pace.available() == 0 and 3.0 <= pace.wait_time() <= 3.3


def test_avoid_hour_start_waits_until_minute_two():
    clock, wall = FakeClock(), FakeClock(3600.0 * 7 + 30.0)  # 07:00:30 UTC
    pace = SlidingWindowPace(100, 1.0, avoid_hour_start=True, clock=clock, wall_clock=wall)
    assert pace.available() == 0 and pace.wait_time() == pytest.approx(90.0)
    wall.now += 90.0
    assert pace.available() > 0
    wall.now = 3600.0 * 8 - 1  # 07:59:59: not yet the quiet start
    assert pace.available() > 0


def test_the_client_sizes_its_pool_from_given_figures_at_once(service_account: Any) -> None:
    with MockFCM(credentials=service_account, max_concurrent_streams=100) as server:
        client = server.client(
            quota_per_minute=600_000, streams_per_connection=100, round_trip=0.04
        )
        # The quota's rate, 10,000/s x 0.04 s / (1 + 1.5% guard) spread over 100 streams.
        plan = client.connection_plan
        assert plan is not None and plan.connections == 4
        assert (plan.round_trip_from, plan.streams_from) == ("given", "given")
        assert str(plan).startswith("4 connections = ceil(")
        assert client.pool_options.max_connections == 4
        asyncio.run(client.aclose())
        # Without the figures the pool starts with one connection and measures them.
        client = server.client(quota_per_minute=600_000)
        assert client.connection_plan is None and client.pool_options.max_connections == 1
        asyncio.run(client.aclose())
        capped = server.client(
            target_rate=10_000, round_trip=0.04, streams_per_connection=10, max_connections=3
        )
        assert capped.connection_plan is not None and capped.connection_plan.connections == 3
        assert capped.connection_plan.capped
        asyncio.run(capped.aclose())
        for bad, field in (
            ({"round_trip": 0}, "round_trip"),
            ({"streams_per_connection": 0}, "streams_per_connection"),
            ({"max_connections": 0}, "max_connections"),
            ({"target_rate": -1.0}, "target_rate"),
        ):
            with pytest.raises(ConfigurationError) as info:
                server.client(**{"target_rate": 100.0, **bad})
            assert info.value.field == field
        with pytest.raises(ConfigurationError):
            server.client(quota_per_minute=600_000, rate_limit=10, streams_per_connection=100)
        with pytest.raises(ConfigurationError):
            server.client(avoid_hour_start=True)


def test_the_client_reads_settings_and_the_round_trip_then_resizes(
    service_account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No figures given: one connection for the first answers, then as many as the wanted
    rate needs with the server's 20 streams per connection and the measured round trip."""
    tokens = [f"m{i:05d}" for i in range(1500)]
    rate = 1000.0

    async def main() -> tuple[pushwire.Results, dict[str, int], Any, int]:
        async with server.client(target_rate=rate) as client:
            await client.send(FCMMessage(token="first", data={"k": "v"}))
            opened_first = client.stats()["connections_opened"]
            results = await client.send_to_tokens(FCMMessage(data={"k": "v"}), tokens)
            return results, client.stats(), client.connection_plan, opened_first

    caplog.set_level(logging.DEBUG, logger="pushwire.fcm")
    with MockFCM(
        credentials=service_account, max_concurrent_streams=20, response_delay=0.05
    ) as server:
        results, stats, plan, opened_first = asyncio.run(main())
        assert all(r.delivered for r in results)
        assert server.total_received == len(tokens) + 1
        assert server.max_active_streams_seen <= 20
    assert opened_first == 1
    assert plan is not None
    assert (plan.streams, plan.streams_from, plan.round_trip_from) == (20, "SETTINGS", "measured")
    assert plan.round_trip >= 0.05
    assert plan.connections == math.ceil(rate * plan.round_trip / 20)
    assert stats["max_connections"] == plan.connections
    assert stats["peer_max_streams"] == 20
    assert f"FCM pool for project demo-project: {plan}" in caplog.messages
    # A slow machine measures a longer round trip and plans more; the work may be done
    # before the last of them is needed, but never on the one connection it started with.
    assert plan.connections >= 3 and stats["connections_opened"] >= 3


def test_the_planner_waits_for_figures_and_does_not_flap() -> None:
    clock = FakeClock()
    planner = ConnectionPlanner(1000.0, clock=clock)
    assert planner.initial() is None
    assert planner.update({"round_trip_us": 0, "peer_max_streams": 20}) is None
    assert planner.update({"round_trip_us": 50_000, "peer_max_streams": 0}) is None
    # The figures are in: planned at once, not an interval after the first look.
    plan = planner.update({"round_trip_us": 50_000, "peer_max_streams": 20})
    assert plan is not None and plan.connections == 3  # 1000/s x 0.05 s / 20 = 2.5
    assert planner.update({"round_trip_us": 80_000, "peer_max_streams": 20}) is None  # too soon
    clock.now += 1
    plan = planner.update({"round_trip_us": 80_000, "peer_max_streams": 20})
    assert plan is not None and plan.connections == 4  # 4.0: grows at once
    clock.now += 1
    # 2.9 connections' worth: not far enough below 3 to close one.
    assert planner.update({"round_trip_us": 58_000, "peer_max_streams": 20}) is None
    clock.now += 1
    plan = planner.update({"round_trip_us": 50_000, "peer_max_streams": 20})
    assert plan is not None and plan.connections == 3
    clock.now += 1
    # Given figures win over measured ones.
    given = ConnectionPlanner(1000.0, streams=100, clock=clock)
    plan = given.update({"round_trip_us": 50_000, "peer_max_streams": 20})
    assert plan is not None and plan.connections == 1 and plan.streams_from == "given"


def test_a_burst_opens_the_planned_connections(service_account: Any) -> None:
    tokens = [f"tok{i:05d}" for i in range(3000)]

    async def main() -> tuple[pushwire.Results, dict[str, int]]:
        async with server.client(
            target_rate=7500, round_trip=0.04, streams_per_connection=100
        ) as client:
            assert client.connection_plan is not None
            assert client.connection_plan.connections == 3
            results = await client.send_to_tokens(FCMMessage(data={"k": "v"}), tokens)
            return results, client.stats()

    with MockFCM(
        credentials=service_account, max_concurrent_streams=100, response_delay=0.04
    ) as server:
        results, stats = asyncio.run(main())
        assert all(r.delivered for r in results)
        assert stats["connections_opened"] == 3
        assert server.total_received == len(tokens)


def test_a_scaled_down_project_quota_is_spent_whole(service_account: Any) -> None:
    """600,000/min scaled down to 60,000/min counted in 3-second windows (3,000 each):
    12,000 messages take four windows; the pace keeps every window under the quota, so
    almost nothing is answered 429 and nothing is lost."""
    tokens = [f"q{i:06d}" for i in range(12_000)]
    window = 3.0

    async def main() -> tuple[pushwire.Results, float]:
        async with server.client(
            quota_per_minute=60_000,
            quota_window=window,
            streams_per_connection=100,
            round_trip=0.04,
            retry=RetryPolicy(max_attempts=5, quota_delay=window),
        ) as client:
            await client.send(FCMMessage(token="warm-up", data={"k": "v"}))  # OAuth first
            started = time.monotonic()
            results = await client.send_to_tokens(FCMMessage(data={"k": "v"}), tokens)
            return results, time.monotonic() - started

    with MockFCM(
        credentials=service_account,
        quota_per_window=3_000,
        quota_window=window,
        max_concurrent_streams=100,
        response_delay=0.04,
    ) as server:
        results, elapsed = asyncio.run(main())
        rejected = server.quota_rejections
        received = server.total_received
    assert Counter(r.outcome for r in results) == {Outcome.DELIVERED: len(tokens)}
    assert received == len(tokens) + 1 + rejected  # every message answered; 429s resent
    assert rejected < 0.01 * received, rejected
    used = len(tokens) / (elapsed * 1_000)  # the quota's rate is 1,000/s
    print(f"quota used {used:.1%} in {elapsed:.2f} s, {rejected} answered 429 of {received}")
    assert used >= 0.95, (used, elapsed)


def test_a_quota_set_too_high_meets_429s_and_pauses_every_send(service_account: Any) -> None:
    """The client believes in twice the real quota: the mock answers 429 QUOTA_EXCEEDED with
    Retry-After; the client holds all sends for it, resends the rejected, loses nothing."""
    tokens = [f"p{i:05d}" for i in range(1_500)]

    async def main() -> tuple[pushwire.Results, float]:
        async with server.client(
            quota_per_minute=36_000,  # 600/s; the mock allows 300/s
            quota_window=1.0,
            streams_per_connection=100,
            retry=RetryPolicy(max_attempts=10, quota_delay=1.0),
        ) as client:
            results = await client.send_to_tokens(FCMMessage(data={"k": "v"}), tokens)
            return results, client._pace._paused_until if client._pace else 0.0

    with MockFCM(credentials=service_account, quota_per_window=300, quota_window=1.0) as server:
        results, paused_until = asyncio.run(main())
        rejected = server.quota_rejections
        received = server.total_received
    assert Counter(r.outcome for r in results) == {Outcome.DELIVERED: len(tokens)}
    assert rejected > 0 and paused_until > 0
    assert received == len(tokens) + rejected
