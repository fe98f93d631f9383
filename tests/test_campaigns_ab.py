"""A/B treatments with a holdout over 100,000 endpoints, engagement ingest and KPIs, the
frequency cap and the send-rate cap, measured against the mock APNs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest

from pushwire.campaigns import (
    ENGAGEMENT_KEY,
    EngagementInputError,
    FrequencyCap,
    Schedule,
    Treatment,
    engagement_id,
)
from pushwire.store import PushMessage
from pushwire.testing import MockAPNs
from support.campaigns import FakeClock, add_ios, register_bulk, run_ticks, utc
from support.store import BACKENDS, open_store

A = PushMessage(title="A", body="Ten percent off")
B = PushMessage(title="B", body="Free shipping")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    clock = FakeClock(utc(2026, 12, 1, 8, 0))
    with open_store(request.param, tmp_path, clock=clock) as opened:
        add_ios(opened)
        opened.test_clock = clock  # type: ignore[attr-defined]
        yield opened


async def _client(apns, **options):
    return apns.client(**options)


def test_ab_split_with_holdout_over_100k_endpoints_and_kpis(tmp_path, credentials):
    n = 100_000
    clock = FakeClock(utc(2026, 12, 1, 8, 0))
    with open_store("sqlite", tmp_path, clock=clock) as store:
        add_ios(store)
        tokens = register_bulk(store, n, plan="pro")
        campaigns = store.campaigns
        campaign = campaigns.create(
            "ab",
            segment="plan=pro",
            treatments=[Treatment(A, 50, "A"), Treatment(B, 50, "B")],
            holdout_percent=10,
            schedule=Schedule("once", start="2026-12-01T09:00"),
        )
        campaigns.schedule(campaign.id)
        ids = dict(store.database.read(lambda c: c.query("SELECT token, id FROM endpoints")))
        assigned = {t: campaigns.treatment_of(campaign.id, ids[t]) for t in tokens[:1000]}
        with MockAPNs(credentials=credentials) as apns:
            client = asyncio.run(_client(apns))
            scheduler = campaigns.scheduler(clients={"ios": client}, page_size=5000)
            (report,) = run_ticks(scheduler, clock, utc(2026, 12, 1, 9, 0), timedelta(hours=1))
            received = {t: apns.received(t) for t in tokens}
        rows = store.database.read(
            lambda c: c.query("SELECT endpoint_id, treatment, state FROM campaign_sends")
        )
    by_id = {eid: (treatment, state) for eid, treatment, state in rows}
    groups = {-1: [], 0: [], 1: []}
    for token in tokens:
        groups[by_id[ids[token]][0]].append(token)
    holdout, group_a, group_b = groups[-1], groups[0], groups[1]
    # The split: within 1% of the targets (10% holdout, 45% / 45%).
    assert abs(len(holdout) / n - 0.10) < 0.01
    assert abs(len(group_a) / n - 0.45) < 0.01 and abs(len(group_b) / n - 0.45) < 0.01
    assert {t: received[t] for t in holdout} == dict.fromkeys(holdout, 0)
    assert all(received[t] == 1 for t in group_a + group_b)
    assert report.sent == len(group_a) + len(group_b) and report.holdout == len(holdout)
    # The assignment is the stable hash: the same answer before the send and after.
    names = {-1: "holdout", 0: "A", 1: "B"}
    assert assigned == {t: names[by_id[ids[t]][0]] for t in assigned}

    # The app echoes the engagement id: opens for every 3rd endpoint of A, every 5th of B,
    # plus events that must not count as opens (dismissed, a custom one, a duplicate open).
    slot_id = store_slot = campaigns_slot(tmp_path)
    opens_a, opens_b = group_a[::3], group_b[::5]
    events = [
        {
            "name": "opened",
            "engagement": engagement_id(campaign.id, slot_id, 0),
            "application": "ios",
            "token": t,
        }
        for t in opens_a
    ] + [
        {
            "name": "opened",
            "engagement": engagement_id(campaign.id, slot_id, 1),
            "application": "ios",
            "token": t,
        }
        for t in opens_b
    ]
    events += [dict(events[0])]  # the same open twice counts once
    events += [
        {
            "name": "dismissed",
            "engagement": engagement_id(campaign.id, slot_id, 1),
            "endpoint_id": ids[t],
        }
        for t in group_b[1::5]
    ]
    events += [
        {
            "name": "cart.viewed",
            "engagement": engagement_id(campaign.id, slot_id, 0),
            "application": "ios",
            "token": group_a[1],
        }
    ]
    with open_store("sqlite", tmp_path, clock=clock) as store:
        assert store.campaigns.record_engagement(events) == len(events)
        kpis = store.campaigns.kpis("ab")
        comparison = {r.treatment: r for r in store.campaigns.compare("ab")}
    assert store_slot == slot_id
    by_treatment = {k.treatment: k for k in kpis}
    assert set(by_treatment) == {"A", "B", "holdout"}
    a, b, h = by_treatment["A"], by_treatment["B"], by_treatment["holdout"]
    assert a.successful_deliveries == sum(received[t] for t in group_a) == len(group_a)
    assert b.successful_deliveries == sum(received[t] for t in group_b)
    assert (a.opened, b.opened) == (len(opens_a), len(opens_b))
    assert a.push_open_rate == pytest.approx(len(opens_a) / len(group_a))
    assert a.successful_delivery_rate == 1.0 and a.unique_endpoints_reached == len(group_a)
    assert h.holdout == len(holdout) and h.sent == 0
    assert b.events == {"dismissed": len(group_b[1::5])} and a.events == {"cart.viewed": 1}
    assert comparison["A"].opened == len(opens_a) and comparison["B"].opened == len(opens_b)
    assert comparison["A"].push_open_rate > comparison["B"].push_open_rate
    assert comparison["holdout"].holdout == len(holdout)
    assert a.to_dict()["push-open-rate"] == round(len(opens_a) / len(group_a), 6)


def campaigns_slot(tmp_path):
    with open_store("sqlite", tmp_path) as store:
        (slot,) = store.campaigns.slots("ab")
        return slot.id


def test_notifications_carry_the_engagement_id(store):
    from pushwire.campaigns.sending import treatment_message

    store.register("ios", "a" * 64, attributes={"plan": "pro"})
    campaign = store.campaigns.create("eid", segment="plan=pro", message=A)
    message = treatment_message(campaign, 7, 0)
    apns = message.render(store.application("ios"))
    assert (
        json.loads(apns.payload)[ENGAGEMENT_KEY]
        == engagement_id(campaign.id, 7, 0)
        == f"pw1.{campaign.id}.7.0"
    )
    assert (
        json.loads(message.render_fcm().encoded)["data"][ENGAGEMENT_KEY] == f"pw1.{campaign.id}.7.0"
    )


def test_engagement_ingest_refuses_bad_rows_whole(store):
    store.register("ios", "a" * 64)
    good = {"name": "opened", "engagement": "pw1.1.1.0", "application": "ios", "token": "a" * 64}
    bad_rows = [
        ({**good, "name": "Opened!"}, "name"),
        ({**good, "engagement": "campaign-1"}, "engagement"),
        ({**good, "token": "b" * 64}, "token"),
        ({"name": "opened", "engagement": "pw1.1.1.0"}, "endpoint_id"),
    ]
    for row, field in bad_rows:
        with pytest.raises(EngagementInputError) as e:
            store.campaigns.record_engagement([good, row])
        assert (e.value.field, e.value.index) == (field, 1)
    count = store.database.read(lambda c: c.query("SELECT COUNT(*) FROM engagement_events"))
    assert count[0][0] == 0


def test_frequency_cap_limits_pushes_per_endpoint(store, credentials):
    clock = store.test_clock
    tokens = register_bulk(store, 20, plan="pro")
    campaigns = store.campaigns
    campaign = campaigns.create(
        "every-hour",
        segment="plan=pro",
        message=A,
        schedule=Schedule("hourly", start="2026-12-01T08:30", end="2026-12-02T08:30"),
        frequency_cap=FrequencyCap(2, "day"),
    )
    campaigns.schedule(campaign.id)
    with MockAPNs(credentials=credentials) as apns:
        client = asyncio.run(_client(apns))
        scheduler = campaigns.scheduler(clients={"ios": client})
        # 08:30 .. 13:30: six hourly slots, at most two pushes per endpoint per 24 hours.
        run_ticks(scheduler, clock, utc(2026, 12, 1, 13, 45), timedelta(minutes=15))
        first_day = {t: apns.received(t) for t in tokens}
        # A day after the first push the window has room again.
        clock.set(utc(2026, 12, 2, 8, 15))
        run_ticks(scheduler, clock, utc(2026, 12, 2, 8, 45), timedelta(minutes=15))
        next_day = {t: apns.received(t) for t in tokens}
    assert first_day == dict.fromkeys(tokens, 2)
    assert next_day == dict.fromkeys(tokens, 3)
    day1, day2 = campaigns.kpis(campaign.id)
    assert (day1.day, day1.successful_deliveries, day1.capped) == ("2026-12-01", 40, 80)
    # Day 2: the 07:30 slot (the latest of those missed overnight) still had two pushes in
    # its 24 hours and was capped; 08:30 went out.
    assert (day2.day, day2.successful_deliveries, day2.capped) == ("2026-12-02", 20, 20)


def test_send_rate_cap_is_respected(store, credentials):
    tokens = register_bulk(store, 300, plan="pro")
    campaigns = store.campaigns
    campaigns.schedule(
        campaigns.create("paced", segment="plan=pro", message=A, rate_per_second=200).id
    )
    with MockAPNs(credentials=credentials) as apns:
        client = asyncio.run(_client(apns))
        scheduler = campaigns.scheduler(clients={"ios": client}, page_size=100)
        started = time.monotonic()
        (report,) = asyncio.run(scheduler.tick())
        elapsed = time.monotonic() - started
        assert sum(apns.received(t) for t in tokens) == 300
    assert report.sent == 300
    # 300 at 200/s: the first tenth of a second's worth goes at once, the rest paced.
    assert elapsed >= (300 - 20) / 200
    assert (report.sent - 20) / elapsed <= 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_campaigns_counting_the_same_endpoints_at_once_respect_the_cap(
    backend, tmp_path, credentials, monkeypatch
):
    """Two campaigns' slots reach the same endpoints at the same instant, capped at one push a
    day: the second must count the first's records. The first is held between its count and
    its insert for up to 2 s, waiting for the second to count; with the endpoints locked (or
    SQLite's one writer) the second cannot count until the first commits, so only the first
    sends."""
    import threading

    from pushwire.store import postgres as pg_backend
    from pushwire.store import sqlite as sqlite_backend

    counted = threading.Event()
    arrivals = 0
    arrivals_lock = threading.Lock()
    cap_count = "SELECT endpoint_id, COUNT(*) FROM campaign_sends"

    def hold_the_first_counter(original: Any) -> Any:
        def query(self: Any, sql: str, params: Any = ()) -> Any:
            nonlocal arrivals
            rows = original(self, sql, params)
            if sql.startswith(cap_count):
                with arrivals_lock:
                    arrivals += 1
                    first = arrivals == 1
                if first:
                    counted.wait(2.0)  # the race window, made wide
                else:
                    counted.set()
            return rows

        return query

    for module, name in (
        (pg_backend, "_PostgresConnection"),
        (sqlite_backend, "_SQLiteConnection"),
    ):
        cls = getattr(module, name)
        monkeypatch.setattr(cls, "query", hold_the_first_counter(cls.query))
    with open_store(backend, tmp_path, clock=FakeClock(utc(2026, 12, 1, 8, 0))) as store:
        add_ios(store)
        tokens = register_bulk(store, 50, plan="pro")
        for name in ("first", "second"):
            store.campaigns.schedule(
                store.campaigns.create(
                    name, segment="plan=pro", message=A, frequency_cap=FrequencyCap(1, "day")
                ).id
            )
        store.campaigns.scheduler(clients={}).plan()  # both slots due now
        with MockAPNs(credentials=credentials) as apns:

            def run_one(owner: str) -> None:
                async def main() -> None:
                    async with apns.client() as client:
                        scheduler = store.campaigns.scheduler(clients={"ios": client}, owner=owner)
                        await scheduler.run_slot()

                asyncio.run(main())

            threads = [threading.Thread(target=run_one, args=(o,)) for o in ("s1", "s2")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            received = [apns.received(t) for t in tokens]
        (first,) = store.campaigns.kpis("first")
        (second,) = store.campaigns.kpis("second")
    assert arrivals == 2
    assert received == [1] * 50, received
    assert sorted([first.successful_deliveries, second.successful_deliveries]) == [0, 50]
    assert sorted([first.capped, second.capped]) == [0, 50]
