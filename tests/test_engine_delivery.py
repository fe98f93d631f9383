"""End to end through Rust to the mock and back: bulk, streaming, single sends, facades."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
import uvloop

import pushwire
from pushwire import Notification, Outcome
from pushwire.testing import MockAPNs
from support.util import tokens


def test_100k_in_one_send_many_each_received_exactly_once(credentials, message):
    n = 100_000
    toks = tokens(n)

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return await client.send_many([Notification(t, message) for t in toks])

    with MockAPNs(credentials=credentials) as server:
        results = asyncio.run(main())
        assert len(results) == n
        assert Counter(r.outcome for r in results) == {Outcome.DELIVERED: n}
        assert [r.index for r in results] == list(range(n))
        assert [r.token for r in results] == toks
        assert server.total_received == n
        assert all(server.received(t) == 1 for t in toks)
        assert all(r.status == 200 and r.apns_id and r.stream_id > 0 for r in results)


def test_one_payload_many_tokens(credentials, message):
    toks = tokens(5_000)

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return await client.send_to_tokens(message, toks)

    with MockAPNs(credentials=credentials) as server:
        results = asyncio.run(main())
        assert [r.token for r in results] == toks
        assert all(r.delivered for r in results)
        assert server.total_received == len(toks)


def test_rejections_are_results_with_reason_and_timestamp(credentials, message):
    dead, bad, ok = tokens(3, "dead"), tokens(3, "bad0"), tokens(3)

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return await client.send_many([Notification(t, message) for t in dead + bad + ok])

    with MockAPNs(
        credentials=credentials, rules={"dead": "unregistered", "bad0": "bad-token"}
    ) as server:
        results = asyncio.run(main())
    by_token = {r.token: r for r in results}
    for t in dead:
        r = by_token[t]
        assert (r.outcome, r.status, r.reason) == (Outcome.REJECTED, 410, "Unregistered")
        assert r.timestamp_ms is not None and r.timestamp is not None
    for t in bad:
        assert (by_token[t].status, by_token[t].reason) == (400, "BadDeviceToken")
    assert all(by_token[t].delivered for t in ok)


def test_stream_covers_every_index_once_with_bounded_window(credentials, message):
    n = 20_000
    toks = tokens(n)

    async def main() -> list[pushwire.Result]:
        async with server.client(max_in_flight=500) as client:
            seen = []
            async for r in client.stream(Notification(t, message) for t in toks):
                seen.append(r)
                # Backpressure: the engine never holds more than its window.
                assert client._engine.outstanding() <= 500
            return seen

    with MockAPNs(credentials=credentials) as server:
        results = asyncio.run(main())
        assert sorted(r.index for r in results) == list(range(n))
        assert all(r.token == toks[r.index] and r.delivered for r in results)
        assert server.total_received == n


def test_stream_turns_bad_items_into_failed_results_and_sends_the_rest(credentials, message):
    items = [Notification(t, message) for t in tokens(10)]
    items[3] = Notification("not-hex!", message)

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return [r async for r in client.stream(items)]

    with MockAPNs(credentials=credentials) as server:
        results = sorted(asyncio.run(main()), key=lambda r: r.index)
        assert [r.index for r in results] == list(range(10))
        assert results[3].outcome is Outcome.FAILED and "malformed" in (results[3].error or "")
        assert not results[3].maybe_delivered
        assert sum(r.delivered for r in results) == 9
        assert server.total_received == 9


def test_thousands_of_concurrent_single_sends(credentials, message):
    toks = tokens(3_000)

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return await asyncio.gather(*(client.send(Notification(t, message)) for t in toks))

    with MockAPNs(credentials=credentials) as server:
        results = asyncio.run(main())
        assert [r.token for r in results] == toks
        assert all(r.delivered for r in results)
        assert all(server.received(t) == 1 for t in toks)


def test_works_under_uvloop(credentials, message):
    toks = tokens(5_000)

    async def main() -> tuple[list[pushwire.Result], pushwire.Result]:
        async with server.client() as client:
            many = await client.send_many([Notification(t, message) for t in toks])
            one = await client.send(Notification(tokens(1, "abc")[0], message))
            return many, one

    with MockAPNs(credentials=credentials) as server:
        many, one = uvloop.run(main())
        assert all(r.delivered for r in many) and one.delivered
        assert server.total_received == len(toks) + 1


def test_sync_facade(credentials, message):
    toks = tokens(2_000)
    with MockAPNs(credentials=credentials) as server, server.sync_client() as client:
        one = client.send(Notification(toks[0], message))
        many = client.send_many([Notification(t, message) for t in toks[1:]])
        streamed = list(client.stream(Notification(t, message) for t in tokens(100, "ab")))
        assert one.delivered and all(r.delivered for r in many)
        assert sorted(r.index for r in streamed) == list(range(100))
        assert server.total_received == len(toks) + 100


def test_without_valid_jwt_the_mock_rejects(credentials, message, p8_key):
    other = pushwire.TokenCredentials(p8_key, key_id="ZZZ123DEFG", team_id="TEAM123456")

    async def main() -> pushwire.Result:
        async with pushwire.APNsClient(other, base_url=server.url, ca_file=server.ca_file) as c:
            return await c.send(Notification(tokens(1)[0], message))

    with MockAPNs(credentials=credentials) as server:
        r = asyncio.run(main())
    assert (r.outcome, r.status, r.reason) == (Outcome.REJECTED, 403, "InvalidProviderToken")


def test_results_say_what_to_do_after_a_run(credentials, message):
    dead, ok = tokens(5, "dead"), tokens(95)

    async def main() -> pushwire.Results:
        async with server.client() as client:
            return await client.send_many([Notification(t, message) for t in ok + dead])

    with MockAPNs(credentials=credentials, rules={"dead": "unregistered"}) as server:
        results = asyncio.run(main())
    assert isinstance(results, pushwire.Results)
    assert {r.action for r in results} == {pushwire.Action.DELIVERED, pushwire.Action.DROP_TOKEN}
    assert [d.token for d in results.tokens_to_drop()] == dead
    summary = results.summary()
    assert summary.by_reason == {"Unregistered": 5}
    # A token registered again after APNs' 410 timestamp is kept.
    later = {dead[0]: results[-5].timestamp_ms + 1}
    assert dead[0] not in [d.token for d in results.tokens_to_drop(registered_at=later)]


def test_a_burst_of_bad_device_tokens_is_a_config_alert_not_deletions(credentials, message):
    toks = tokens(300, "bad0")

    async def main() -> pushwire.Results:
        async with server.client() as client:
            return await client.send_to_tokens(message, toks)

    with MockAPNs(credentials=credentials, rules={"bad0": "bad-token"}) as server:
        results = asyncio.run(main())
    summary = results.summary()
    assert summary.environment_mismatch_suspected
    assert summary.tokens_to_drop == [] and results.tokens_to_drop() == []
    assert any("environment" in w for w in summary.warnings)


def test_one_client_follows_successive_event_loops(credentials, message):
    """send() finds its dispatcher without asking asyncio for the running loop when it can;
    a new loop (asyncio or uvloop) still gets a dispatcher of its own."""
    toks = tokens(4)

    async def send(token: str) -> pushwire.Result:
        return await client.send(Notification(token, message))

    async def close() -> None:
        await client.aclose()

    with MockAPNs(credentials=credentials) as server:
        client = server.client()
        results = [asyncio.run(send(toks[0])), uvloop.run(send(toks[1]))]
        results += [asyncio.run(send(toks[2])), asyncio.run(send(toks[3]))]
        asyncio.run(close())
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * 4
        assert all(server.received(t) == 1 for t in toks)


def test_a_client_waiting_on_one_loop_refuses_another(credentials, message):
    hung = tokens(1, "dd")[0]
    started = threading.Event()

    async def send_hung() -> pushwire.Result:
        sending = asyncio.ensure_future(client.send(Notification(hung, message)))
        await asyncio.sleep(0)
        started.set()
        return await sending

    async def send_other() -> pushwire.Result:
        return await client.send(Notification(tokens(1)[0], message))

    with MockAPNs(credentials=credentials, rules={"dd": "hang"}) as server:
        client = server.client(request_timeout=1.0)
        outcome: list[pushwire.Result] = []
        thread = threading.Thread(target=lambda: outcome.append(asyncio.run(send_hung())))
        thread.start()
        assert started.wait(10)
        with pytest.raises(pushwire.ConfigurationError, match="busy on another event loop"):
            asyncio.run(send_other())
        thread.join(10)
        assert [r.outcome for r in outcome] == [Outcome.TIMEOUT]
        asyncio.run(client.aclose())


def test_a_bad_send_among_coalesced_sends_fails_alone(credentials, message):
    """Sends of one loop iteration are validated by their one engine call: a refused one
    raises its own PayloadError (as if sent alone), the others are sent."""
    good = tokens(60)
    bad_at = {7, 30, 59}

    async def main() -> list[pushwire.Result | BaseException]:
        async with server.client() as client:
            sends = [
                client.send(Notification("zz" if i in bad_at else t, message))
                for i, t in enumerate(good)
            ]
            return await asyncio.gather(*sends, return_exceptions=True)

    async def alone() -> pushwire.PayloadError:
        async with server.client() as client:
            try:
                await client.send(Notification("zz", message))
            except pushwire.PayloadError as e:
                return e
        raise AssertionError("not refused")

    with MockAPNs(credentials=credentials) as server:
        outcomes = asyncio.run(main())
        reference = asyncio.run(alone())
        for i, (token, outcome) in enumerate(zip(good, outcomes, strict=True)):
            if i in bad_at:
                assert isinstance(outcome, pushwire.PayloadError)
                assert (str(outcome), outcome.field, outcome.index) == (
                    str(reference),
                    reference.field,
                    reference.index,
                )
                assert server.received(token) == 0
            else:
                assert isinstance(outcome, pushwire.Result) and outcome.delivered
                assert server.received(token) == 1
