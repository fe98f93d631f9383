"""Running slots: a pause in the middle of a slot stops it after its step and the resumed slot
sends the rest, each endpoint once; a campaign over APNs and FCM applications at once, with
KPIs per application."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from pushwire.campaigns import State
from pushwire.store import PushMessage, Registration
from pushwire.testing import MockAPNs, MockFCM
from support.campaigns import FakeClock, add_ios, register_bulk, utc
from support.store import BACKENDS, fcm_token, open_store

MESSAGE = PushMessage(title="Hello", body="World")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    clock = FakeClock(utc(2026, 12, 1, 8, 0))
    with open_store(request.param, tmp_path, clock=clock) as opened:
        add_ios(opened)
        opened.test_clock = clock  # type: ignore[attr-defined]
        yield opened


def test_pausing_mid_slot_stops_it_and_resuming_sends_the_rest_once(store, credentials):
    tokens = register_bulk(store, 300, plan="pro")
    campaigns = store.campaigns
    campaigns.schedule(
        campaigns.create("paced", segment="plan=pro", message=MESSAGE, rate_per_second=300).id
    )

    async def main(apns):
        async with apns.client() as client:
            scheduler = campaigns.scheduler(clients={"ios": client}, owner="s1", page_size=100)
            running = asyncio.ensure_future(scheduler.tick())
            while apns.total_received < 60:
                await asyncio.sleep(0.01)
            campaigns.pause("paced", actor="ops")
            (first,) = await running
            halfway = apns.total_received
            assert await scheduler.tick() == []  # paused: nothing starts
            campaigns.resume("paced", actor="ops")
            (second,) = await scheduler.tick()
            return first, halfway, second

    with MockAPNs(credentials=credentials) as apns:
        first, halfway, second = asyncio.run(main(apns))
        counts = [apns.received(t) for t in tokens]
    assert first.state == "paused" and 60 <= first.sent < 300 and halfway == first.sent
    assert second.state == "done" and first.sent + second.sent == 300
    assert counts == [1] * 300 and second.in_doubt == 0
    (slot,) = campaigns.slots("paced")
    assert slot.state == "done"
    kinds = [(e.kind, e.actor) for e in campaigns.events("paced")]
    assert ("paused", "ops") in kinds and ("slot_paused", "s1") in kinds
    assert ("slot_resumed", "s1") in kinds and kinds[-1] == ("completed", "s1")
    assert campaigns.get("paced").state is State.COMPLETED


def test_campaign_over_apns_and_fcm_applications(store, credentials, service_account):
    store.put_application("android", provider="fcm", project_id="demo-project")
    ios = register_bulk(store, 30, plan="pro")
    android = [fcm_token(i) for i in range(20)]
    store.register_many(Registration("android", t, attributes={"plan": "pro"}) for t in android)
    campaigns = store.campaigns
    campaigns.schedule(campaigns.create("both", segment="plan=pro", message=MESSAGE).id)
    # Sent after the registrations (a dead-token verdict older than one is not applied).
    store.test_clock.advance(timedelta(minutes=1))

    async def main(apns, fcm):
        async with apns.client() as a, fcm.client() as f:
            return await campaigns.scheduler(clients={"ios": a, "android": f}).tick()

    with (
        MockAPNs(credentials=credentials) as apns,
        MockFCM(credentials=service_account, rules={"tok000003": "unregistered"}) as fcm,
    ):
        (report,) = asyncio.run(main(apns, fcm))
        assert [apns.received(t) for t in ios] == [1] * 30
        assert [fcm.received(t) for t in android] == [1] * 20
    assert report.sent == 50
    kpis = {k.application: k for k in campaigns.kpis("both")}
    assert kpis["ios"].successful_deliveries == 30
    assert (kpis["android"].successful_deliveries, kpis["android"].tokens_disabled) == (19, 1)
    assert kpis["android"].successful_delivery_rate == pytest.approx(19 / 20)
    assert not store.get("android", fcm_token(3)).enabled
