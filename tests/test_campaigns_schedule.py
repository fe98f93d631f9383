"""Campaign schedules against the mock APNs with a controllable clock: a daily campaign in each
endpoint's local time over three zones, quiet hours that hold or skip a slot, the lifecycle
and its events, bad input refused before anything is scheduled."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from pushwire import PushwireError
from pushwire.campaigns import (
    CampaignStateError,
    FrequencyCap,
    InvalidScheduleError,
    QuietHours,
    Schedule,
    State,
    Treatment,
    TreatmentSplitError,
    UnknownCampaignError,
    UnknownSegmentAttributeError,
    UnknownTimeZoneError,
)
from pushwire.store import PushMessage, Store, UnknownApplicationError
from pushwire.testing import MockAPNs
from support.campaigns import FakeClock, add_ios, run_ticks, utc
from support.store import BACKENDS, apns_token, open_store

MESSAGE = PushMessage(title="Good morning", body="Today's offers")
ZONES = {"America/New_York": 2, "Europe/Paris": 2, "Asia/Tokyo": 2}


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    clock = FakeClock(utc(2026, 11, 30, 0, 0))
    with open_store(request.param, tmp_path, clock=clock) as opened:
        add_ios(opened)
        opened.test_clock = clock  # type: ignore[attr-defined]
        yield opened


def register_zones(store: Store) -> dict[str, str | None]:
    """Two endpoints per zone and one without a zone (it uses the campaign's); token -> zone."""
    zones: dict[str, str | None] = {}
    n = 0
    for name, count in ZONES.items():
        for _ in range(count):
            token = apns_token(n)
            store.register("ios", token, attributes={"timezone": name, "plan": "pro"})
            zones[token] = name
            n += 1
    token = apns_token(n)
    store.register("ios", token, attributes={"plan": "pro"})
    zones[token] = None
    return zones


def send_times(store: Store, campaign_id: int) -> dict[str, list[int]]:
    rows = store.database.read(
        lambda c: c.query(
            "SELECT e.token, s.at FROM campaign_sends s JOIN endpoints e ON e.id = s.endpoint_id "
            "WHERE s.campaign_id = ? AND s.state = 'delivered' ORDER BY s.at",
            (campaign_id,),
        )
    )
    out: dict[str, list[int]] = {}
    for token, at in rows:
        out.setdefault(token, []).append(at)
    return out


def test_daily_campaign_in_local_time_reaches_each_endpoint_at_its_nine_once_a_day(
    store, credentials
):
    clock = store.test_clock
    zones = register_zones(store)
    campaigns = store.campaigns
    campaign = campaigns.create(
        "morning",
        segment="plan=pro",
        message=MESSAGE,
        schedule=Schedule(
            "daily",
            start="2026-12-01T09:00",
            end="2026-12-03T09:00",
            timezone="Europe/London",
            local_time=True,
        ),
        actor="alice",
    )
    campaigns.schedule(campaign.id, actor="alice")
    with MockAPNs(credentials=credentials) as apns:

        async def make():
            return apns.client()

        client = asyncio.run(make())
        scheduler = campaigns.scheduler(clients={"ios": client}, owner="s1")
        run_ticks(scheduler, clock, utc(2026, 12, 4, 12), timedelta(minutes=15))
        counts = {token: apns.received(token) for token in zones}
    assert counts == dict.fromkeys(zones, 3)
    times = send_times(store, campaign.id)
    for token, zone_name in zones.items():
        tz = ZoneInfo(zone_name or "Europe/London")
        local = [clock_ms_to(tz, at) for at in times[token]]
        # Ticks are 15 minutes apart: each push went out at 09:00-09:14 local, on 3 days.
        assert [(t.day, t.hour) for t in local] == [(1, 9), (2, 9), (3, 9)], (token, local)
        assert all(t.minute < 15 for t in local)
    slots = campaigns.slots(campaign.id)
    assert len(slots) == 3 * 4 and {s.state for s in slots} == {"done"}
    assert {s.zone for s in slots} == {*ZONES, "Europe/London"}
    assert campaigns.get(campaign.id).state is State.COMPLETED
    kinds = [(e.kind, e.actor) for e in campaigns.events(campaign.id)]
    assert kinds[:3] == [("created", "alice"), ("scheduled", "alice"), ("running", "s1")]
    assert kinds[-1] == ("completed", "s1")
    assert sum(k == "slot_done" for k, _ in kinds) == 12


def clock_ms_to(tz, ms):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(tz)


@pytest.mark.parametrize("mode", ["hold", "skip"])
def test_quiet_hours_hold_a_slot_until_they_end_or_skip_it(store, credentials, mode):
    clock = store.test_clock
    zones = register_zones(store)
    campaigns = store.campaigns
    campaign = campaigns.create(
        f"quiet-{mode}",
        segment="plan=pro",
        message=MESSAGE,
        schedule=Schedule("once", start="2026-12-01T09:00", timezone="UTC", local_time=True),
        quiet_hours=QuietHours("08:30", "10:00", mode=mode),
    )
    campaigns.schedule(campaign.id)
    with MockAPNs(credentials=credentials) as apns:
        client = asyncio.run(_client(apns))
        scheduler = campaigns.scheduler(clients={"ios": client})
        run_ticks(scheduler, clock, utc(2026, 12, 2, 12), timedelta(minutes=15))
        counts = {token: apns.received(token) for token in zones}
    assert counts == dict.fromkeys(zones, 1 if mode == "hold" else 0)
    slots = campaigns.slots(campaign.id)
    assert len(slots) == 4
    if mode == "hold":
        assert {(s.state, s.reason) for s in slots} == {("done", "held_quiet_hours")}
        for token, zone_name in zones.items():
            (at,) = send_times(store, campaign.id)[token]
            local = clock_ms_to(ZoneInfo(zone_name or "UTC"), at)
            assert (local.day, local.hour) == (1, 10) and local.minute < 15
    else:
        assert {(s.state, s.reason) for s in slots} == {("skipped", "quiet_hours")}
    assert campaigns.get(campaign.id).state is State.COMPLETED


async def _client(apns):
    return apns.client()


def test_lifecycle_pause_resume_cancel_with_actors(store, credentials):
    clock = store.test_clock
    zones = register_zones(store)
    campaigns = store.campaigns
    campaign = campaigns.create(
        "hourly",
        segment="plan=pro",
        message=MESSAGE,
        schedule=Schedule("hourly", start="2026-11-30T01:00", timezone="UTC"),
    )
    assert campaign.state is State.DRAFT
    campaigns.schedule("hourly", actor="alice")
    with MockAPNs(credentials=credentials) as apns:
        client = asyncio.run(_client(apns))
        scheduler = campaigns.scheduler(clients={"ios": client}, owner="s1")
        run_ticks(scheduler, clock, utc(2026, 11, 30, 1, 30), timedelta(minutes=30))
        assert campaigns.pause("hourly", actor="bob").state is State.PAUSED
        run_ticks(scheduler, clock, utc(2026, 11, 30, 3, 30), timedelta(minutes=30))
        paused = {t: apns.received(t) for t in zones}
        assert campaigns.resume("hourly", actor="carol").state is State.SCHEDULED
        run_ticks(scheduler, clock, utc(2026, 11, 30, 4, 30), timedelta(minutes=30))
        assert campaigns.cancel("hourly", actor="dave").state is State.CANCELLED
        run_ticks(scheduler, clock, utc(2026, 11, 30, 6, 30), timedelta(minutes=30))
        final = {t: apns.received(t) for t in zones}
    assert paused == dict.fromkeys(zones, 1)
    # Resumed at 04:00: the 02:00 and 03:00 occurrences were missed, 04:00 goes out.
    assert final == dict.fromkeys(zones, 2)
    with pytest.raises(CampaignStateError) as e:
        campaigns.resume("hourly")
    assert e.value.field == "state"
    transitions = [
        (e.kind, e.from_state, e.to_state, e.actor)
        for e in campaigns.events("hourly")
        if e.to_state is not None
    ]
    assert transitions == [
        ("created", None, "draft", transitions[0][3]),
        ("scheduled", "draft", "scheduled", "alice"),
        ("running", "scheduled", "running", "s1"),
        ("paused", "running", "paused", "bob"),
        ("resumed", "paused", "scheduled", "carol"),
        ("running", "scheduled", "running", "s1"),
        ("cancelled", "running", "cancelled", "dave"),
    ]
    states = sorted((s.occurrence, s.state, s.reason) for s in campaigns.slots("hourly"))
    assert states == [
        ("2026-11-30T01:00", "done", None),
        ("2026-11-30T02:00", "skipped", "missed"),
        ("2026-11-30T03:00", "skipped", "missed"),
        ("2026-11-30T04:00", "done", None),
    ]


def test_bad_input_is_refused_before_anything_is_scheduled(store):
    store.register("ios", apns_token(1), attributes={"plan": "pro"})
    campaigns = store.campaigns
    cases = [
        (
            dict(segment="plna=pro"),
            UnknownSegmentAttributeError,
            "segment.attributes.plna",
        ),
        (dict(segment="app=nope"), UnknownApplicationError, "segment.applications"),
        (
            dict(schedule=Schedule("cron", cron="0 0 30 2 *")),
            InvalidScheduleError,
            "schedule.cron",
        ),
        (
            dict(
                schedule=Schedule(
                    "cron", cron="0 9 1 1 *", start="2026-03-01T00:00", end="2026-06-01T00:00"
                )
            ),
            InvalidScheduleError,
            "schedule.cron",
        ),
        (
            dict(
                schedule={
                    "frequency": "daily",
                    "start": "2026-12-01T09:00",
                    "timezone": "Mars/Olympus",
                }
            ),
            UnknownTimeZoneError,
            "schedule.timezone",
        ),
        (
            dict(
                message=None,
                treatments=[Treatment(MESSAGE, 50), Treatment(MESSAGE, 40)],
            ),
            TreatmentSplitError,
            "treatments",
        ),
        (dict(holdout_percent=100), PushwireError, "holdout_percent"),
        (dict(frequency_cap={"limit": 0, "period": "day"}), PushwireError, "frequency_cap.limit"),
        (dict(quiet_hours={"start": "25:00", "end": "08:00"}), PushwireError, "quiet_hours.start"),
        (dict(rate_per_second=-5), PushwireError, "rate_per_second"),
    ]
    for overrides, error, field in cases:
        kwargs = dict(segment="plan=pro", message=MESSAGE, **{})
        kwargs.update(overrides)
        if kwargs.get("message") is None:
            kwargs.pop("message")
        with pytest.raises(error) as raised:
            campaigns.create("bad", **kwargs)
        assert isinstance(raised.value, PushwireError)
        assert raised.value.field == field, (overrides, raised.value)
    assert campaigns.list() == []
    assert store.database.read(lambda c: c.query("SELECT COUNT(*) FROM campaign_events"))[0][0] == 0
    # Names that look numeric but cannot be an id: non-ASCII digits, zero, past BIGINT.
    for key in ("bad", "²", "0", str(2**63), str(10**30)):
        with pytest.raises(UnknownCampaignError):
            campaigns.get(key)
    # A once-campaign whose time has passed cannot be scheduled.
    past = campaigns.create(
        "past",
        segment="plan=pro",
        message=MESSAGE,
        schedule=Schedule("once", start="2026-11-01T09:00"),
    )
    with pytest.raises(InvalidScheduleError):
        campaigns.schedule(past.id)
    assert campaigns.get(past.id).state is State.DRAFT
    assert campaigns.create(
        "capped", segment="plan=pro", message=MESSAGE, frequency_cap=FrequencyCap(1, "week")
    ).frequency_cap == FrequencyCap(1, "week")


def test_quiet_hours_are_each_endpoints_own_when_the_campaign_is_not_in_local_time(
    store, credentials
):
    clock = store.test_clock
    zones = register_zones(store)
    campaigns = store.campaigns
    campaign = campaigns.create(
        "evening",
        segment="plan=pro",
        message=MESSAGE,
        # 21:00 UTC is 16:00 in New York, 22:00 in Paris, 06:00 in Tokyo.
        schedule=Schedule("once", start="2026-12-01T21:00", timezone="UTC"),
        quiet_hours=QuietHours("22:00", "08:00"),
    )
    campaigns.schedule(campaign.id)
    with MockAPNs(credentials=credentials) as apns:
        client = asyncio.run(_client(apns))
        scheduler = campaigns.scheduler(clients={"ios": client})
        run_ticks(scheduler, clock, utc(2026, 12, 2, 12), timedelta(minutes=15))
        counts = {token: apns.received(token) for token in zones}
    assert counts == dict.fromkeys(zones, 1)
    times = send_times(store, campaign.id)
    expected = {
        "America/New_York": (1, 21),  # not quiet: at the campaign's time
        None: (1, 21),  # no zone: the campaign's (UTC), not quiet
        "Asia/Tokyo": (1, 23),  # held to 08:00 Tokyo
        "Europe/Paris": (2, 7),  # held to 08:00 Paris
    }
    for token, zone_name in zones.items():
        (at,) = times[token]
        moment = clock_ms_to(ZoneInfo("UTC"), at)
        assert (moment.day, moment.hour) == expected[zone_name], (zone_name, moment)
    assert campaigns.get(campaign.id).state is State.COMPLETED


def test_schedule_occurrences_weekly_cron_and_across_daylight_saving():
    from datetime import datetime
    from itertools import islice

    from pushwire.campaigns.schedule import occurrences

    tz = ZoneInfo("America/New_York")
    after = datetime(2026, 3, 1, tzinfo=tz)

    def first(schedule, n):
        walk = occurrences(schedule, tz, after=after, scheduled_at_ms=0)
        return [m.replace(tzinfo=None).isoformat(timespec="minutes") for m in islice(walk, n)]

    # Weekly from a Thursday; daily at 09:00 keeps 09:00 across the March 8 DST change.
    weekly = Schedule("weekly", start="2026-03-05T18:30", timezone="America/New_York")
    assert first(weekly, 3) == ["2026-03-05T18:30", "2026-03-12T18:30", "2026-03-19T18:30"]
    daily = Schedule("daily", start="2026-03-07T09:00", end="2026-03-09T09:00", timezone="UTC")
    assert first(daily, 5) == ["2026-03-07T09:00", "2026-03-08T09:00", "2026-03-09T09:00"]
    moments = list(occurrences(daily, tz, after=after, scheduled_at_ms=0))
    assert [m.utcoffset().total_seconds() / 3600 for m in moments] == [-5, -4, -4]
    # 02:30 does not exist on March 8 in New York: cron (and cronsim) run it at 03:00.
    cron = Schedule("cron", cron="30 2 * * *", start="2026-03-07T00:00", timezone="UTC")
    assert first(cron, 3) == ["2026-03-07T02:30", "2026-03-08T03:00", "2026-03-09T02:30"]
    weekdays = Schedule("cron", cron="0 9 * * 1-5", start="2026-03-06T00:00")
    assert first(weekdays, 3) == ["2026-03-06T09:00", "2026-03-09T09:00", "2026-03-10T09:00"]
