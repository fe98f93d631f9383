"""Web Push to push services that speak only HTTP/1.1: the WebPushClient's pools fall back to
HTTP/1.1 keep-alive connections (one request at a time each); APNs pools still refuse such a
server. Counted and decrypted on the mock's side."""

from __future__ import annotations

import asyncio
import time

import pushwire
from pushwire import Notification, Outcome, _core
from pushwire.testing import MockWebPush
from pushwire.webpush import WebPushMessage

MESSAGE = WebPushMessage({"title": "hi"}, ttl=60)


def test_subscriptions_over_an_h2_and_an_http1_service_dead_and_hung_one_outcome_each() -> None:
    n, deadline = 600, 3.0
    rules = {"dead": "unregistered", "hung": "hang"}

    def sub_id(i: int) -> str:
        # Dead and hung ones on the HTTP/1.1 service (service 1, odd indexes).
        kind = "dead" if i % 20 == 1 else "hung" if i % 150 == 3 else "live"
        return f"{kind}{i:x}"

    async def main(mock: MockWebPush) -> None:
        subs = [mock.subscription(sub_id(i), service=i % 2) for i in range(n)]
        async with mock.client(request_timeout=deadline, retry=None, max_connections=8) as client:
            started = time.monotonic()
            results = await client.send_to_subscriptions(MESSAGE, subs)
            elapsed = time.monotonic() - started
            assert set(client.pools()) == set(mock.urls)
        assert [r.index for r in results] == list(range(n))
        for i, r in enumerate(results):
            expected = {"dead": "rejected", "hung": "timeout", "live": "delivered"}[sub_id(i)[:4]]
            assert r.outcome == expected, (i, r)
            if expected == "delivered":
                assert r.status == 201
            if expected == "timeout":
                assert r.maybe_delivered
        # Hung requests end at their deadline (each one costs its HTTP/1.1 connection).
        assert elapsed < deadline + 20
        assert mock.total_received == n
        for i, sub in enumerate(subs):
            assert mock.received(sub) == 1, i
            # Decrypted by both services: the encryption holds over HTTP/1.1 too.
            assert mock.messages(sub) == [b'{"title":"hi"}'], i
        dropped = {t.token for t in results.tokens_to_drop()}
        assert dropped == {subs[i].endpoint for i in range(n) if sub_id(i).startswith("dead")}
        assert any(sub_id(i).startswith("hung") for i in range(1, n, 2))

    with MockWebPush(services=1, http1_services=1, rules=rules) as mock:
        asyncio.run(main(mock))


def test_http1_service_answers_are_classified_like_h2_ones() -> None:
    rules = {"dead": "unregistered", "gone": "bad-token", "busy": "429"}

    async def main(mock: MockWebPush) -> None:
        # Service 1 is the HTTP/1.1-only one.
        subs = [mock.subscription(p, service=1) for p in ("ok1", "dead1", "gone1", "busy1")]
        async with mock.client(retry=None) as client:
            results = await client.send_to_subscriptions(MESSAGE, subs)
        got = [(r.status, r.reason, r.action.value) for r in results]
        assert got == [
            (201, None, "delivered"),
            (410, "Unregistered", "drop_token"),
            (404, "BadDeviceToken", "drop_token"),
            (429, "TooManyRequests", "retry"),
        ]
        assert results[3].retry_after == 1
        assert all(mock.received(s) == 1 for s in subs)

    with MockWebPush(services=1, http1_services=1, rules=rules) as mock:
        asyncio.run(main(mock))


def test_apns_pools_still_refuse_a_server_without_http2(
    credentials: pushwire.TokenCredentials, message: pushwire.Message
) -> None:
    server = _core.MockServer(http1_only=True)
    try:

        async def main() -> list[pushwire.Result]:
            client = pushwire.APNsClient(
                credentials,
                base_url=server.url,
                ca_file=server.ca_file,
                max_connect_attempts=2,
                backoff_base=0.01,
            )
            async with client:
                return await client.send_many([Notification("ab" * 32, message)])

        [result] = asyncio.run(main())
        assert result.outcome is Outcome.FAILED and not result.maybe_delivered
        assert "does not speak HTTP/2 (ALPN h2 not negotiated)" in (result.error or "")
        assert server.total_received == 0
    finally:
        server.stop()
