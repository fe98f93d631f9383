"""Bodies of the engagement and campaign routes: strict msgspec structs (an unknown field is
refused, and named). Values are checked by the campaigns package itself (``Schedule``,
``QuietHours``, treatments...), so the API and the library refuse the same things."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Union

import msgspec

from ..campaigns import Campaign, CampaignEvent, CampaignKPI, Slot, TreatmentResult
from .schemas import Strict

#: Most events one ``POST /v1/events/batch`` may carry.
MAX_EVENTS_PER_BATCH = 10_000
#: Largest body of a batch, bytes (10,000 events of ~200 bytes fit with room to spare).
MAX_BATCH_BODY = 8 << 20
#: Largest id a client may give (a database BIGINT).
MAX_ID = 2**63 - 1


class EngagementIn(Strict):
    """What the app reports about a campaign notification: ``name`` (``received``,
    ``opened``, ``dismissed`` or a custom ``[a-z][a-z0-9_.:-]*``), ``engagement`` (the
    ``pushwire_engagement`` id the notification carried) and its device (``application`` and
    ``token``; sender and admin keys may give ``endpoint_id`` instead)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    engagement: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    application: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None
    endpoint_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    #: When it happened (RFC 3339; default: when it is recorded).
    at: datetime | None = None
    details: dict[str, Any] | None = None


class EngagementBatch(Strict):
    """Up to 10,000 events, recorded all or none (a bad one is named by its index)."""

    events: Annotated[
        list[EngagementIn], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_BATCH)
    ]


class EventsRecorded(msgspec.Struct):
    recorded: int


class ScheduleIn(Strict):
    """``frequency``: immediate, once, hourly, daily, weekly or cron; ``start``/``end``:
    wall-clock ``YYYY-MM-DDTHH:MM`` in ``timezone`` (an IANA zone); ``cron``: five fields;
    ``local_time``: at that wall-clock time in each endpoint's ``timezone`` attribute."""

    frequency: str = "immediate"
    start: str | None = None
    end: str | None = None
    cron: str | None = None
    timezone: str = "UTC"
    local_time: bool = False


class QuietHoursIn(Strict):
    """No push between ``start`` and ``end`` (HH:MM in the endpoint's zone); ``mode``:
    ``hold`` (send when they end) or ``skip``."""

    start: str
    end: str
    mode: str = "hold"


class FrequencyCapIn(Strict):
    """At most ``limit`` campaign pushes per endpoint per ``period`` (day or week)."""

    limit: int
    period: str = "day"


class TreatmentIn(Strict):
    """An A/B variant: its message (a PushMessage) and percent of the non-holdout audience."""

    message: dict[str, Any]
    percent: float = 100.0
    name: str = ""


class CampaignIn(Strict):
    """A campaign: a ``segment`` (filter text or its JSON), a ``message`` or ``treatments``
    (percents adding up to 100), an optional ``holdout_percent``, a ``schedule``,
    ``quiet_hours``, ``rate_per_second`` and ``frequency_cap``. It is created as a draft;
    ``schedule_now`` schedules it at once."""

    name: str
    segment: Union[str, dict[str, Any]] = ""
    message: dict[str, Any] | None = None
    treatments: Annotated[list[TreatmentIn], msgspec.Meta(max_length=26)] | None = None
    holdout_percent: float = 0.0
    schedule: ScheduleIn | None = None
    quiet_hours: QuietHoursIn | None = None
    rate_per_second: float | None = None
    frequency_cap: FrequencyCapIn | None = None
    schedule_now: bool = False


class CampaignOut(msgspec.Struct):
    id: int
    name: str
    state: str
    segment: dict[str, Any]
    treatments: list[dict[str, Any]]
    holdout_percent: float
    schedule: dict[str, Any]
    quiet_hours: dict[str, Any] | None
    rate_per_second: float | None
    frequency_cap: dict[str, Any] | None
    created_at: str
    updated_at: str
    scheduled_at: str | None

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return msgspec.convert(campaign.to_dict(), cls)


class CampaignPage(msgspec.Struct):
    """Oldest first; pass ``next_after`` as ``after`` for the next page (None: no more)."""

    campaigns: list[CampaignOut]
    next_after: int | None


class Progress(msgspec.Struct):
    """Where a campaign stands: its slots by state, and its sends over all slots."""

    slots: int
    slots_by_state: dict[str, int]
    sent: int
    delivered: int
    opened: int
    holdout: int
    capped: int
    tokens_disabled: int
    open_rate: float


class CampaignDetail(msgspec.Struct):
    campaign: CampaignOut
    progress: Progress


class SlotOut(msgspec.Struct):
    id: int
    occurrence: str
    zone: str
    due_at: str
    state: str
    reason: str | None
    run_id: int | None
    started_at: str | None
    finished_at: str | None
    counts: dict[str, int]

    @classmethod
    def of(cls, slot: Slot) -> SlotOut:
        data = slot.to_dict()
        data.pop("campaign_id")
        return msgspec.convert(data, cls)


class SlotPage(msgspec.Struct):
    """In due order; pass ``next_offset`` as ``offset`` for the next page (None: no more)."""

    slots: list[SlotOut]
    next_offset: int | None


class CampaignEventOut(msgspec.Struct):
    id: int
    at: str
    kind: str
    from_state: str | None
    to_state: str | None
    actor: str
    details: dict[str, Any]

    @classmethod
    def of(cls, event: CampaignEvent) -> CampaignEventOut:
        data = event.to_dict()
        data.pop("campaign_id")
        return msgspec.convert(data, cls)


class CampaignEventList(msgspec.Struct):
    events: list[CampaignEventOut]


def _kebab(name: str) -> Any:
    return msgspec.field(name=name)


class CampaignKPIOut(msgspec.Struct, kw_only=True):
    """One campaign, treatment, application and UTC day, with Pinpoint's metric names."""

    campaign_id: int
    campaign: str
    treatment: str
    application: str
    day: str
    sent: int
    opened: int
    successful_deliveries: int = _kebab("successful-deliveries")
    successful_delivery_rate: float = _kebab("successful-delivery-rate")
    push_open_rate: float = _kebab("push-open-rate")
    unique_endpoints_reached: int = _kebab("unique-endpoints-reached")
    holdout: int = 0
    capped: int = 0
    in_doubt: int = _kebab("in-doubt")
    tokens_disabled: int = _kebab("tokens-disabled")
    events: dict[str, int] = msgspec.field(default_factory=dict)

    @classmethod
    def of(cls, row: CampaignKPI) -> CampaignKPIOut:
        return msgspec.convert(row.to_dict(), cls)


class TreatmentOut(msgspec.Struct, kw_only=True):
    """A treatment (or ``holdout``) over the campaign's whole life."""

    treatment: str
    percent: float
    sent: int
    opened: int
    holdout: int
    successful_deliveries: int = _kebab("successful-deliveries")
    push_open_rate: float = _kebab("push-open-rate")

    @classmethod
    def of(cls, row: TreatmentResult) -> TreatmentOut:
        return msgspec.convert(row.to_dict(), cls)


class CampaignKPIs(msgspec.Struct):
    """``kpis`` per treatment, application and day; ``treatments`` compares them."""

    kpis: list[CampaignKPIOut]
    treatments: list[TreatmentOut]
