"""Sending through the store against the mock APNs and FCM servers, on SQLite and PostgreSQL:
users across providers, segments streamed from the database, results applied back, the
sandbox/production mix-up, run statistics, bounded memory."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from datetime import datetime, timezone

import pytest

import pushwire
from pushwire import PayloadError
from pushwire.store import (
    EventKind,
    MissingClientError,
    PushMessage,
    Registration,
    SegmentFilter,
    StoreInputError,
)
from pushwire.testing import MockAPNs, MockFCM
from support.store import BACKENDS, apns_token, database_url, fcm_token, open_store

MESSAGE = PushMessage(title="Hi", body="there", data={"campaign": "spring"})


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with open_store(request.param, tmp_path) as opened:
        opened.put_application("ios", provider="apns", topic="com.example.app")
        opened.put_application("android", provider="fcm", project_id="demo-project")
        yield opened


def test_send_to_user_reaches_every_enabled_device_across_providers(
    store, credentials, service_account
):
    store.register("ios", apns_token(1), user_id="u1")
    store.register("ios", apns_token(2), user_id="u1")
    store.register("ios", apns_token(3), user_id="u1")
    store.disable("ios", apns_token(3))
    store.register("android", fcm_token(1), user_id="u1")
    store.register("ios", apns_token(4), user_id="u2")

    async def main():
        async with apns.client() as ios, fcm.client() as android:
            return await store.send_to_user(
                "u1", MESSAGE, clients={"ios": ios, "android": android}, actor="tester"
            )

    with MockAPNs(credentials=credentials) as apns, MockFCM(credentials=service_account) as fcm:
        report = asyncio.run(main())
        assert [apns.received(apns_token(i)) for i in (1, 2, 3, 4)] == [1, 1, 0, 0]
        assert fcm.received(fcm_token(1)) == 1
    assert report.total == 3 and report.delivered == 3 and report.delivery_rate == 1.0
    assert {name: t.sent for name, t in report.applications.items()} == {"ios": 2, "android": 1}
    (run,) = store.runs()
    assert run.id == report.run_id and run.status == "finished" and run.actor == "tester"
    assert run.target_kind == "user" and run.target == {"user_id": "u1"}
    assert run.message["title"] == "Hi" and run.total == 3
    assert run.applications["ios"]["delivered"] == 2


def test_send_to_segment_applies_the_results(store, credentials, service_account):
    dead = [apns_token(i, "dead") for i in range(5)]
    bad = [apns_token(i, "bad0") for i in range(3)]
    unavailable = [apns_token(i, "5030") for i in range(4)]
    fine = [apns_token(i) for i in range(150)]
    dead_android = [fcm_token(i, "dead") for i in range(2)]
    fine_android = [fcm_token(i) for i in range(40)]
    rows = [
        Registration(app, t, user_id=f"u{n}", attributes={"plan": "pro"})
        for app, tokens in (
            ("ios", dead + bad + unavailable + fine),
            ("android", dead_android + fine_android),
        )
        for n, t in enumerate(tokens)
    ]
    rows.append(Registration("ios", apns_token(999, "f"), attributes={"plan": "free"}))
    store.register_many(rows)
    rules = {"dead": "unregistered", "bad0": "bad-token", "5030": "503"}

    async def main(segment: str):
        async with apns.client(retry=None) as ios, fcm.client(retry=None) as android:
            return await store.send_to_segment(
                segment, MESSAGE, clients={"ios": ios, "android": android}, page_size=16
            )

    with (
        MockAPNs(credentials=credentials, rules=rules) as apns,
        MockFCM(credentials=service_account, rules={"dead": "unregistered"}) as fcm,
    ):
        report = asyncio.run(main("plan=pro"))
        assert apns.received(apns_token(999, "f")) == 0  # not in the segment
        assert all(apns.received(t) == 1 for t in dead + bad + unavailable + fine)
        # A second send skips the endpoints the first one disabled.
        again = asyncio.run(main("plan=pro"))
        assert all(apns.received(t) == 1 for t in dead + bad)
        assert all(apns.received(t) == 2 for t in unavailable + fine)
        assert all(fcm.received(t) == 1 for t in dead_android)

    ios, android = report.applications["ios"], report.applications["android"]
    assert (ios.sent, ios.delivered, ios.rejected) == (162, 150, 12)
    assert (ios.invalid_tokens, ios.tokens_disabled, ios.retryable) == (8, 8, 4)
    assert (android.sent, android.tokens_disabled) == (42, 2)
    assert report.by_reason == {
        "Unregistered": 5,
        "BadDeviceToken": 3,
        "ServiceUnavailable": 4,
        "UNREGISTERED": 2,
    }
    assert again.total == 162 + 42 - 10 and again.tokens_disabled == 0
    reasons = {e.token: e.disabled_reason for e in store.endpoints(enabled=False)}
    assert reasons == {
        **dict.fromkeys(dead, "Unregistered"),
        **dict.fromkeys(bad, "BadDeviceToken"),
        **dict.fromkeys(dead_android, "UNREGISTERED"),
    }
    assert all(store.get("ios", t).enabled for t in unavailable)  # retryable: unchanged
    disabled_events = store.events(kinds=[EventKind.DISABLED])
    assert len(disabled_events) == 10
    assert {e.details["run_id"] for e in disabled_events} == {report.run_id}
    assert all(e.cause == "send_result" for e in disabled_events)
    run = store.run(report.run_id)
    assert run.target_kind == "segment" and run.target == {"attributes": {"plan": ["pro"]}}
    assert run.tokens_disabled == 10 and run.by_outcome == {"delivered": 190, "rejected": 14}
    today = datetime.now(timezone.utc).date()
    kpis = {k.application: k for k in store.kpis(since=today)}
    assert kpis["ios"].runs == 2 and kpis["ios"].sent == 162 + 154
    assert kpis["ios"].invalid_tokens == 8
    assert kpis["ios"].invalid_token_rate == pytest.approx(8 / 316)
    assert kpis["android"].delivery_rate == pytest.approx(80 / 82)


def test_a_410_older_than_the_last_registration_keeps_the_endpoint(store, credentials):
    with MockAPNs(credentials=credentials) as apns:
        # The mock stamps this rule's 410s with the moment the rule was set...
        apns.set_rules({"beef": "reject:410:Unregistered", "dead": "reject:410:Unregistered"})
        time.sleep(0.01)
        # ...so these registrations come after the 410 timestamp: the app registered again.
        reregistered = [apns_token(i, "beef") for i in range(3)]
        store.register_many([Registration("ios", t) for t in reregistered])
        # And these registered before it: the 410 applies.
        earlier = datetime(2026, 1, 1, tzinfo=timezone.utc)
        dead = [apns_token(i, "dead") for i in range(3)]
        store.register_many([Registration("ios", t, registered_at=earlier) for t in dead])

        async def main():
            async with apns.client() as ios:
                return await store.send_to_segment("app=ios", MESSAGE, clients={"ios": ios})

        report = asyncio.run(main())
    tally = report.applications["ios"]
    assert (tally.invalid_tokens, tally.tokens_disabled, tally.kept_reregistered) == (6, 3, 3)
    for token in reregistered:
        endpoint = store.get("ios", token)
        assert endpoint.enabled and endpoint.last_410_at is not None
        assert endpoint.last_410_at < endpoint.last_registered_at
    assert not any(store.get("ios", t).enabled for t in dead)


def test_a_sandbox_production_mix_up_disables_nothing(store, credentials):
    tokens = [apns_token(i) for i in range(300)]
    store.register_many([Registration("ios", t) for t in tokens])

    async def main():
        async with apns.client() as ios:
            return await store.send_to_segment(SegmentFilter(), MESSAGE, clients={"ios": ios})

    # Every token answered BadDeviceToken: what production says of sandbox tokens.
    with MockAPNs(credentials=credentials, rules={"": "bad-token"}) as apns:
        report = asyncio.run(main())
    assert report.total == 300 and report.tokens_disabled == 0
    assert report.applications["ios"].withheld == 300
    assert report.alerts == ["ios: environment_mismatch"]
    assert all(e.enabled for e in store.endpoints())
    (alert,) = store.events(kinds=["config_alert"])
    assert alert.details["alert"] == "environment_mismatch"
    assert alert.details["run_id"] == report.run_id
    assert any("sandbox" in w for w in store.run(report.run_id).warnings)


def test_every_selected_application_needs_its_client_before_anything_is_sent(store, credentials):
    store.register("ios", apns_token(1))
    store.register("android", fcm_token(1))

    async def main(clients):
        return await store.send_to_segment("all", MESSAGE, clients=clients)

    with MockAPNs(credentials=credentials) as apns:

        async def only_ios():
            async with apns.client() as ios:
                await main({"ios": ios})

        async def swapped():
            async with apns.client() as ios:
                await main({"ios": ios, "android": ios})

        with pytest.raises(MissingClientError) as info:
            asyncio.run(only_ios())
        assert "android" in str(info.value)
        with pytest.raises(StoreInputError) as info:
            asyncio.run(swapped())
        assert "FCMClient" in str(info.value)
        assert apns.total_received == 0
    assert store.runs() == []


def test_a_message_invalid_for_a_provider_fails_before_anything_is_sent(store, credentials):
    store.register("ios", apns_token(1), user_id="u1")

    async def main():
        async with apns.client() as ios:
            await store.send_to_user("u1", PushMessage(body="x" * 5000), clients={"ios": ios})

    with MockAPNs(credentials=credentials) as apns:
        with pytest.raises(PayloadError):
            asyncio.run(main())
        assert apns.total_received == 0
    assert store.runs() == []


def test_a_user_without_devices_is_a_run_of_nothing(store):
    async def main():
        return await store.send_to_user("nobody", MESSAGE, clients={})

    report = asyncio.run(main())
    assert report.total == 0 and store.run(report.run_id).status == "finished"


# -- bounded memory ---------------------------------------------------------------------------

ENDPOINTS = 20_000
#: What the sending process may grow by while it sends. Holding the segment (tokens, results)
#: would cost several times this at 1M endpoints; benches/bench_store.py measures 1M.
MAX_GROWTH_MB = 50
MAX_PEAK_MB = 300


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc. Not ru_maxrss: Linux carries
    it over from the forking parent across exec, so a spawned child would report the
    parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _send_in_child(url: str, p8: bytes, answer) -> None:
    """Runs in a fresh process: send the whole store to the mock, report memory."""
    from pushwire.store import Store

    creds = pushwire.TokenCredentials(p8, key_id="ABC123DEFG", team_id="TEAM123456")
    with Store.open(url) as store, MockAPNs(credentials=creds) as apns:

        async def main():
            async with apns.client(max_in_flight=2000) as ios:
                before = _memory_mb("VmRSS")
                report = await store.send_to_segment(
                    "all", MESSAGE, clients={"ios": ios}, page_size=1000
                )
                return before, report.total, report.delivered

        before, total, delivered = asyncio.run(main())
        received = apns.total_received
    answer.send((before, _memory_mb("VmHWM"), total, delivered, received))


@pytest.mark.parametrize("backend", BACKENDS)
def test_send_to_segment_streams_20k_endpoints_in_bounded_memory(backend, tmp_path, p8_key):
    with database_url(backend, tmp_path) as url:
        with open_store_at(url) as store:
            store.put_application("ios", provider="apns", topic="com.example.app")
            for start in range(0, ENDPOINTS, 5000):
                store.register_many(
                    [Registration("ios", apns_token(i)) for i in range(start, start + 5000)]
                )
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_send_in_child, args=(url, p8_key, send))
        child.start()
        assert receive.poll(120), "the sending process did not answer"
        before, peak, total, delivered, received = receive.recv()
        child.join(30)
    assert total == delivered == received == ENDPOINTS
    assert peak < MAX_PEAK_MB, f"peak RSS {peak:.0f} MB"
    assert peak - before < MAX_GROWTH_MB, f"grew {peak - before:.0f} MB while sending"


def open_store_at(url: str):
    from pushwire.store import Store

    return Store.open(url)
