"""The engine under server faults: every notification gets exactly one outcome, nothing the
server never processed is lost, nothing is delivered twice. Bounded in time, loopback only."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pushwire
from pushwire import Notification, Outcome
from pushwire.testing import MockAPNs
from support.util import tokens


def send_all(server: MockAPNs, notifications, **options) -> list[pushwire.Result]:
    async def main() -> list[pushwire.Result]:
        async with server.client(**options) as client:
            return await client.send_many(notifications)

    return asyncio.run(main())


def assert_exactly_once(server: MockAPNs, toks: list[str], results: list[pushwire.Result]) -> None:
    """One outcome per token; delivered ones reached the server exactly once; none twice."""
    assert len(results) == len(toks)
    assert [r.token for r in results] == toks
    for r in results:
        received = server.received(r.token)
        assert received <= 1, f"{r.token} received {received} times"
        if r.outcome is Outcome.DELIVERED:
            assert received == 1
        if r.outcome is Outcome.FAILED and not r.maybe_delivered:
            assert received == 0, f"{r.token} reported not sent but the server got it"


def test_hang_case_only_hung_streams_time_out_and_the_call_returns(credentials, message):
    n, timeout = 20_000, 2.0
    toks = tokens(n)
    # 1% of the tokens never get an answer.
    hung = {t for i, t in enumerate(toks) if i % 100 == 7}
    hung_list = sorted(hung)
    with MockAPNs(credentials=credentials, rules=[f"{t}=hang" for t in []]) as server:
        server.set_rules([f"{t}=hang" for t in hung_list])
        # Reference: how long the same batch takes when everything is answered.
        start = time.monotonic()
        baseline = send_all(server, [Notification(t, message) for t in tokens(n, "aa")])
        baseline_s = time.monotonic() - start
        assert all(r.delivered for r in baseline)

        start = time.monotonic()
        results = send_all(
            server, [Notification(t, message) for t in toks], request_timeout=timeout
        )
        elapsed = time.monotonic() - start

    timed_out = {r.token for r in results if r.outcome is Outcome.TIMEOUT}
    assert timed_out == hung
    assert all(r.delivered for r in results if r.token not in hung)
    for r in results:
        if r.token in hung:
            assert r.stream_id > 0 and r.connection_id > 0 and r.maybe_delivered
            assert f"stream {r.stream_id} of connection {r.connection_id}" in (r.error or "")
    # Nothing waits forever: the batch ends within its own send time + timeout + 1 s (with a
    # generous allowance for this shared, noisy machine).
    assert elapsed <= baseline_s * 3 + timeout + 1.0, (elapsed, baseline_s)


def test_server_that_stops_answering_entirely_gets_its_connection_replaced(credentials, message):
    toks = tokens(3_000)
    trigger = tokens(1, "b1ac")
    items = [Notification(t, message) for t in toks[:1500] + trigger + toks[1500:]]
    with MockAPNs(credentials=credentials, rules={"b1ac": "blackhole"}) as server:

        async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], dict[str, int]]:
            async with server.client(
                request_timeout=3.0, ping_interval=0.3, ping_timeout=0.5, max_connections=2
            ) as client:
                first = await client.send_many(items)
                server.set_rules({})
                second = await client.send_many(
                    [Notification(t, message) for t in tokens(500, "cc")]
                )
                return first, second, client.stats()

        first, second, stats = asyncio.run(main())
        assert_exactly_once(server, [n.token for n in items], first)
        outcomes = Counter(r.outcome for r in first)
        assert outcomes[Outcome.DELIVERED] >= 1500
        # What was on the silent connection is reported as uncertain, never as delivered.
        assert all(r.maybe_delivered for r in first if not r.delivered)
        assert stats["ping_failures"] + stats["dead_by_timeouts"] >= 1
        assert stats["connections_opened"] >= 2
        # The client recovered: the next batch goes through.
        assert all(r.delivered for r in second)


def test_goaway_after_n_streams_retries_unprocessed_ones_exactly_once(credentials, message):
    toks = tokens(6_000)
    with MockAPNs(credentials=credentials, goaway_after_streams=500) as server:
        results = send_all(server, [Notification(t, message) for t in toks])
        assert_exactly_once(server, toks, results)
        assert Counter(r.outcome for r in results) == {Outcome.DELIVERED: len(toks)}
        # Graceful GOAWAY lets streams already on the wire finish, so a connection serves at
        # least 500; more than one connection was needed.
        assert 2 <= server.connections_accepted <= len(toks) // 500 + 1


def test_goaway_rule_and_abrupt_close_mid_batch(credentials, message):
    toks = tokens(4_000)
    goaway, close = tokens(1, "90a7"), tokens(1, "c105e")
    sequence = toks[:1000] + goaway + toks[1000:2500] + close + toks[2500:]
    with MockAPNs(credentials=credentials, rules={"90a7": "goaway", "c105e": "close"}) as server:
        results = send_all(server, [Notification(t, message) for t in sequence])
        assert_exactly_once(server, sequence, results)
        delivered = sum(r.delivered for r in results)
        uncertain = [r for r in results if not r.delivered]
        # Only requests in flight when the connection died can be uncertain.
        assert all(r.outcome is Outcome.FAILED and r.maybe_delivered for r in uncertain)
        assert delivered >= len(toks) - 2 * 1000
        assert server.connections_accepted >= 3


def test_max_concurrent_streams_starting_at_one_is_followed(credentials, message):
    toks = tokens(1_000)
    # Every answer takes 20 ms, so streams overlap and the server sees how many the client opens.
    with MockAPNs(
        credentials=credentials,
        start_streams_at_one=True,
        max_concurrent_streams=50,
        response_delay=0.02,
    ) as server:
        results = send_all(server, [Notification(t, message) for t in toks], max_connections=1)
        assert all(r.delivered for r in results)
        assert server.refused_streams == 0
        # One stream until the first success, then up to the raised limit, never beyond it.
        assert 25 <= server.max_active_streams_seen <= 50


def test_max_concurrent_streams_lowered_to_one_then_raised_mid_flight(credentials, message):
    toks = tokens(3_000)
    with MockAPNs(
        credentials=credentials, max_concurrent_streams=100, response_delay=0.02
    ) as server:

        async def main() -> list[pushwire.Result]:
            async with server.client(max_connections=1) as client:
                sending = asyncio.ensure_future(
                    client.send_many([Notification(t, message) for t in toks])
                )
                await asyncio.sleep(0.15)
                assert not sending.done()  # the change happens mid-flight
                server.set_max_concurrent_streams(1)
                await asyncio.sleep(0.3)
                assert not sending.done()
                server.set_max_concurrent_streams(100)
                return await sending

        results = asyncio.run(main())
        assert [r.token for r in results] == toks
        assert all(r.delivered for r in results)
        # The mock may refuse streams the client opened just before it acknowledged the lower
        # limit (a known mock race, see tests/test_fault_matrix.py); each refusal is resent
        # transparently, so every extra reception is one refused stream, never a duplicate.
        extra = sum(server.received(t) for t in toks) - len(toks)
        assert extra == server.refused_streams


def test_connection_refused_fails_every_notification_as_not_sent(message):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> list[pushwire.Result]:
        async with pushwire.APNsClient(
            base_url=f"https://127.0.0.1:{port}",
            max_connect_attempts=2,
            backoff_base=0.01,
            backoff_max=0.05,
        ) as client:
            return await client.send_many([Notification(t, message) for t in tokens(200)])

    results = asyncio.wait_for(main(), 30)
    results = asyncio.run(results)
    assert {r.outcome for r in results} == {Outcome.FAILED}
    assert all(not r.maybe_delivered and "not sent" in (r.error or "") for r in results)
    assert "127.0.0.1" in (results[0].error or "")


def test_untrusted_certificate_is_refused(message, credentials):
    with MockAPNs(credentials=credentials) as server:

        async def main() -> list[pushwire.Result]:
            # No ca_file: the mock's self-made CA is not trusted, and nothing disables that.
            async with pushwire.APNsClient(
                credentials, base_url=server.url, max_connect_attempts=1, backoff_base=0.01
            ) as client:
                return await client.send_many([Notification(t, message) for t in tokens(5)])

        results = asyncio.run(main())
        assert server.total_received == 0
    assert {r.outcome for r in results} == {Outcome.FAILED}
    assert "certificate" in (results[0].error or "").lower()


def test_refused_stream_is_retried_then_reported_as_not_delivered(credentials, message):
    refused = tokens(1, "5ef0")[0]
    toks = tokens(300)
    with MockAPNs(credentials=credentials, rules={"5ef0": "refused"}) as server:

        async def main() -> tuple[list[pushwire.Result], dict[str, int]]:
            async with server.client(max_retries=3) as client:
                out = await client.send_many([Notification(t, message) for t in [*toks, refused]])
                return out, client.stats()

        results, stats = asyncio.run(main())
    *ok, last = results
    assert all(r.delivered for r in ok)
    # REFUSED_STREAM means "not processed" (RFC 9113 8.7): retried, never reported as maybe sent.
    assert last.outcome is Outcome.FAILED and not last.maybe_delivered
    assert last.attempts == 4 and "refused stream" in (last.error or "")
    assert stats["retries"] == 3


def test_answers_slower_than_the_deadline_give_one_timeout_each(credentials, message):
    slow = tokens(50, "510")
    fast = tokens(500)
    with MockAPNs(credentials=credentials, rules={"510": "delay:1500"}) as server:
        results = send_all(
            server, [Notification(t, message) for t in slow + fast], request_timeout=0.5
        )
    assert [r.token for r in results] == slow + fast
    assert all(r.outcome is Outcome.TIMEOUT for r in results[:50])
    assert all(r.delivered for r in results[50:])
