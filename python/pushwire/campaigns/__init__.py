"""Campaigns and engagement on the endpoint store: what Amazon Pinpoint's push users had.

A *campaign* sends to a segment a message, or several *treatments* (A/B variants with a split
in percent) with an optional *holdout* (a control group that gets nothing and is counted),
on a *schedule* (immediate, once, hourly, daily, weekly or cron, between a start and an end,
optionally in each endpoint's local time), outside *quiet hours*, under a send-rate cap and a
per-endpoint frequency cap. Its lifecycle is draft → scheduled → running → completed, with
pause, resume and cancel; every transition is an event with its actor.

The library API (what ``pushwire serve`` and the CLI call)::

    from pushwire.campaigns import Campaigns, Schedule, Treatment, QuietHours, FrequencyCap

    campaigns = store.campaigns                   # Campaigns(store)
    c = campaigns.create(name, segment=..., message=... | treatments=[...],
                         holdout_percent=..., schedule=Schedule(...), quiet_hours=...,
                         rate_per_second=..., frequency_cap=..., actor=...)   # -> Campaign
    campaigns.schedule(c.id, actor=...)            # also pause / resume / cancel
    campaigns.get(key), campaigns.list(state=...), campaigns.events(key), campaigns.slots(key)
    scheduler = campaigns.scheduler(clients={"ios": apns_client, "android": fcm_client})
    await scheduler.tick()                          # or: await scheduler.run(stop=event)
    campaigns.record_engagement([{"name": "opened", "engagement": eid,
                                  "application": "ios", "token": token}, ...])  # -> count
    campaigns.kpis(key, since=..., until=...)       # -> [CampaignKPI]
    campaigns.compare(key)                          # -> [TreatmentResult]

Errors are :class:`~.errors.CampaignError` subclasses (under ``pushwire.PushwireError``)
naming the field; JSON forms: ``Campaign.to_dict()``, ``CampaignKPI.to_dict()`` (Pinpoint's
metric names), ``CampaignEvent.to_dict()``, ``Slot.to_dict()``.

=============== ==============================================================================
module          concern
=============== ==============================================================================
``model``       campaign, schedule, quiet hours, caps, treatments, states: checked values
``errors``      the typed errors
``schedule``    occurrences of a schedule in a zone (cronsim), quiet hours, the last moment
``assign``      treatment / holdout by a stable hash of (campaign id, endpoint id)
``records``     campaign rows, lifecycle transitions and their events
``planning``    due occurrences -> slot rows, exactly one per (campaign, occurrence, zone)
``sending``     running one slot: send records before sending, outcomes after, resumable
``scheduler``   claim slots under a lease, run them, complete campaigns
``engagement``  engagement ids and bulk ingest of engagement events
``kpis``        Pinpoint-named KPIs per campaign, treatment, application and day
``service``     :class:`Campaigns`, the facade
=============== ==============================================================================
"""

from __future__ import annotations

from .engagement import STANDARD_EVENTS, EngagementEvent, parse_engagement
from .errors import (
    CampaignError,
    CampaignInputError,
    CampaignStateError,
    EngagementInputError,
    InvalidScheduleError,
    TreatmentSplitError,
    UnknownCampaignError,
    UnknownSegmentAttributeError,
    UnknownTimeZoneError,
)
from .kpis import CampaignKPI, TreatmentResult
from .model import (
    ENGAGEMENT_KEY,
    TIMEZONE_ATTRIBUTE,
    Campaign,
    CampaignEvent,
    Frequency,
    FrequencyCap,
    QuietHours,
    Schedule,
    Slot,
    State,
    Treatment,
)
from .scheduler import Scheduler
from .sending import SlotReport, engagement_id
from .service import Campaigns

__all__ = [
    "ENGAGEMENT_KEY",
    "STANDARD_EVENTS",
    "TIMEZONE_ATTRIBUTE",
    "Campaign",
    "CampaignError",
    "CampaignEvent",
    "CampaignInputError",
    "CampaignKPI",
    "CampaignStateError",
    "Campaigns",
    "EngagementEvent",
    "EngagementInputError",
    "Frequency",
    "FrequencyCap",
    "InvalidScheduleError",
    "QuietHours",
    "Schedule",
    "Scheduler",
    "Slot",
    "SlotReport",
    "State",
    "Treatment",
    "TreatmentResult",
    "TreatmentSplitError",
    "UnknownCampaignError",
    "UnknownSegmentAttributeError",
    "UnknownTimeZoneError",
    "engagement_id",
    "parse_engagement",
]
