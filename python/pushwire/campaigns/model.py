"""What a campaign is: who (a segment), what (one message or several treatments, a holdout),
when (a schedule, quiet hours) and how fast (a send-rate cap, a per-endpoint frequency cap);
and what it becomes (its state, its lifecycle events, its slots).

Every value is checked when it is built, so a campaign that exists can be scheduled: bad
input raises a :class:`~.errors.CampaignInputError` naming the field before anything is
written.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..store.message import PushMessage
from ..store.segments import SegmentFilter
from .errors import CampaignInputError, TreatmentSplitError, UnknownTimeZoneError

#: The endpoint attribute that holds its IANA time zone (Pinpoint's ``Demographic.Timezone``).
TIMEZONE_ATTRIBUTE = "timezone"
#: The data key (APNs custom payload key, FCM ``data`` key) carrying the engagement id the
#: app echoes back with its events.
ENGAGEMENT_KEY = "pushwire_engagement"
#: Treatment number recorded for the holdout (the control group that gets nothing).
HOLDOUT = -1

_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:@/+-]{0,127}")


def zone(name: object, field_name: str) -> ZoneInfo:
    """The IANA zone ``name``, or :class:`UnknownTimeZoneError` naming ``field_name``."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise UnknownTimeZoneError(
            f"{field_name} must be an IANA time zone name such as 'Europe/Paris', not {name!r}",
            field=field_name,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZoneError(
            f"{field_name}: unknown time zone {name!r} (use an IANA name such as "
            "'America/New_York')",
            field=field_name,
        ) from None


def valid_zone(name: object) -> ZoneInfo | None:
    """The zone of an endpoint attribute value, or None when it is not a known zone."""
    try:
        return zone(name, TIMEZONE_ATTRIBUTE)
    except UnknownTimeZoneError:
        return None


class State(str, enum.Enum):
    """A campaign's lifecycle: draft → scheduled → running → completed; paused and
    cancelled on request."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


#: state -> states it may move to.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.SCHEDULED, State.CANCELLED}),
    State.SCHEDULED: frozenset({State.RUNNING, State.PAUSED, State.COMPLETED, State.CANCELLED}),
    State.RUNNING: frozenset({State.PAUSED, State.COMPLETED, State.CANCELLED}),
    State.PAUSED: frozenset({State.SCHEDULED, State.CANCELLED}),
    State.COMPLETED: frozenset(),
    State.CANCELLED: frozenset(),
}
#: States in which the scheduler plans and runs slots.
ACTIVE = (State.SCHEDULED, State.RUNNING)


class Frequency(str, enum.Enum):
    IMMEDIATE = "immediate"
    ONCE = "once"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    CRON = "cron"


def _wall_clock(value: object, field_name: str, tz: ZoneInfo) -> datetime | None:
    """A naive wall-clock datetime: naive input is taken as it is, aware input is converted
    to ``tz``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise CampaignInputError(
                f"{field_name} must be an ISO date-time such as 2026-12-24T09:00, not {value!r}",
                field=field_name,
            ) from None
    if not isinstance(value, datetime):
        raise CampaignInputError(f"{field_name} must be a datetime", field=field_name)
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(tz)
    return value.replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class Schedule:
    """When a campaign sends.

    ``frequency``: ``immediate`` (as soon as it is scheduled), ``once`` (at ``start``),
    ``hourly``/``daily``/``weekly`` (at ``start``'s minute / time / weekday and time), or
    ``cron`` (``cron``, five fields) between ``start`` and ``end``. ``start`` and ``end`` are
    wall-clock times in ``timezone`` (an aware datetime is converted to it). With
    ``local_time`` every endpoint gets each occurrence at that wall-clock time in its own
    zone (its ``timezone`` attribute; endpoints without a valid one use ``timezone``).
    """

    frequency: Frequency | str = Frequency.IMMEDIATE
    start: datetime | str | None = None
    end: datetime | str | None = None
    cron: str | None = None
    timezone: str = "UTC"
    local_time: bool = False

    def __post_init__(self) -> None:
        try:
            frequency = Frequency(self.frequency)
        except ValueError:
            raise CampaignInputError(
                f"schedule.frequency must be one of {[f.value for f in Frequency]}, "
                f"not {self.frequency!r}",
                field="schedule.frequency",
            ) from None
        tz = zone(self.timezone, "schedule.timezone")
        start = _wall_clock(self.start, "schedule.start", tz)
        end = _wall_clock(self.end, "schedule.end", tz)
        if frequency not in (Frequency.IMMEDIATE, Frequency.CRON) and start is None:
            raise CampaignInputError(
                f"schedule.start is required for a {frequency.value} schedule",
                field="schedule.start",
            )
        if frequency is Frequency.CRON:
            if not isinstance(self.cron, str) or not self.cron.strip():
                raise CampaignInputError(
                    "schedule.cron is required for a cron schedule ('0 9 * * 1-5')",
                    field="schedule.cron",
                )
        elif self.cron is not None:
            raise CampaignInputError(
                "schedule.cron is only for frequency='cron'", field="schedule.cron"
            )
        if start is not None and end is not None and end <= start:
            raise CampaignInputError(
                "schedule.end must be after schedule.start", field="schedule.end"
            )
        if not isinstance(self.local_time, bool):
            raise CampaignInputError(
                "schedule.local_time must be true or false", field="schedule.local_time"
            )
        object.__setattr__(self, "frequency", frequency)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "cron", self.cron.strip() if self.cron else None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def recurring(self) -> bool:
        return self.frequency not in (Frequency.IMMEDIATE, Frequency.ONCE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frequency": Frequency(self.frequency).value,
            "timezone": self.timezone,
            "local_time": self.local_time,
        }
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat(timespec="minutes")
        if self.cron is not None:
            out["cron"] = self.cron
        return out

    @classmethod
    def from_dict(cls, data: object) -> Schedule:
        if not isinstance(data, Mapping):
            raise CampaignInputError("schedule must be an object", field="schedule")
        known = {"frequency", "start", "end", "cron", "timezone", "local_time"}
        unknown = set(data) - known
        if unknown:
            raise CampaignInputError(
                f"unknown schedule keys {sorted(unknown)} (known: {sorted(known)})",
                field="schedule",
            )
        return cls(**dict(data))


def _hh_mm(value: object, field_name: str) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if isinstance(value, str) and (match := _HH_MM.fullmatch(value)):
        return time(int(match[1]), int(match[2]))
    raise CampaignInputError(f"{field_name} must be HH:MM (24 h), not {value!r}", field=field_name)


@dataclass(frozen=True)
class QuietHours:
    """No campaign push between ``start`` and ``end`` (wall clock in the endpoint's zone;
    ``22:00``-``08:00`` spans midnight). A slot that falls inside is held until ``end``
    (``mode='hold'``) or skipped (``mode='skip'``)."""

    start: time | str
    end: time | str
    mode: str = "hold"

    def __post_init__(self) -> None:
        start = _hh_mm(self.start, "quiet_hours.start")
        end = _hh_mm(self.end, "quiet_hours.end")
        if start == end:
            raise CampaignInputError(
                "quiet_hours.start and quiet_hours.end must differ", field="quiet_hours.end"
            )
        if self.mode not in ("hold", "skip"):
            raise CampaignInputError(
                f"quiet_hours.mode must be 'hold' or 'skip', not {self.mode!r}",
                field="quiet_hours.mode",
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def contains(self, moment: time) -> bool:
        start, end = self.start, self.end
        assert isinstance(start, time) and isinstance(end, time)
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end

    def to_dict(self) -> dict[str, str]:
        assert isinstance(self.start, time) and isinstance(self.end, time)
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, data: object) -> QuietHours:
        if not isinstance(data, Mapping) or set(data) - {"start", "end", "mode"}:
            raise CampaignInputError(
                "quiet_hours must be an object with start, end and mode", field="quiet_hours"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` campaign pushes (all campaigns together) per endpoint in any
    ``period`` (``day``: 24 hours, ``week``: 7 days) before the send."""

    limit: int
    period: str = "day"

    def __post_init__(self) -> None:
        if type(self.limit) is not int or self.limit < 1:
            raise CampaignInputError(
                f"frequency_cap.limit must be a positive integer, not {self.limit!r}",
                field="frequency_cap.limit",
            )
        if self.period not in ("day", "week"):
            raise CampaignInputError(
                f"frequency_cap.period must be 'day' or 'week', not {self.period!r}",
                field="frequency_cap.period",
            )

    @property
    def window_ms(self) -> int:
        return (1 if self.period == "day" else 7) * 86_400_000

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "period": self.period}

    @classmethod
    def from_dict(cls, data: object) -> FrequencyCap:
        if not isinstance(data, Mapping) or set(data) - {"limit", "period"}:
            raise CampaignInputError(
                "frequency_cap must be an object with limit and period", field="frequency_cap"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class Treatment:
    """One variant of an A/B test: its message and the percent of the (non-holdout)
    audience it gets."""

    message: PushMessage
    percent: float = 100.0
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "percent": self.percent, "message": self.message.to_dict()}

    @classmethod
    def from_dict(cls, data: object, index: int = 0) -> Treatment:
        if not isinstance(data, Mapping) or "message" not in data:
            raise CampaignInputError(
                f"treatments[{index}] must be an object with a message",
                field=f"treatments[{index}]",
            )
        return cls(
            message=PushMessage.from_dict(data["message"]),
            percent=data.get("percent", 100.0),
            name=data.get("name", ""),
        )


def check_treatments(treatments: Sequence[Treatment]) -> tuple[Treatment, ...]:
    """Treatments named (``A``, ``B``... by default), percents adding up to 100."""
    if not isinstance(treatments, (list, tuple)) or not treatments:
        raise CampaignInputError("a campaign needs a message or treatments", field="treatments")
    if len(treatments) > 26:
        raise CampaignInputError("at most 26 treatments", field="treatments")
    checked = []
    for i, t in enumerate(treatments):
        where = f"treatments[{i}]"
        if not isinstance(t, Treatment):
            raise CampaignInputError(f"{where} must be a Treatment", field=where)
        if not isinstance(t.message, PushMessage):
            raise CampaignInputError(
                f"{where}.message must be a PushMessage", field=f"{where}.message"
            )
        if ENGAGEMENT_KEY in t.message.data:
            raise CampaignInputError(
                f"{where}.message.data: key {ENGAGEMENT_KEY!r} is reserved for the engagement id",
                field=f"{where}.message.data",
            )
        percent = t.percent
        if (
            isinstance(percent, bool)
            or not isinstance(percent, (int, float))
            or not (math.isfinite(percent) and 0 < percent <= 100)
        ):
            raise TreatmentSplitError(
                f"{where}.percent must be a number in (0, 100], not {percent!r}",
                field=f"{where}.percent",
            )
        name = t.name or chr(ord("A") + i)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise CampaignInputError(
                f"{where}.name {name!r} is not a usable name", field=f"{where}.name"
            )
        checked.append(Treatment(t.message, float(percent), name))
    total = sum(t.percent for t in checked)
    if abs(total - 100.0) > 1e-9:
        shown = " + ".join(f"{t.percent:g}" for t in checked)
        raise TreatmentSplitError(
            f"treatment percents must add up to 100, not {shown} = {total:g} (the holdout is "
            "set apart with holdout_percent)",
            field="treatments",
        )
    if len({t.name for t in checked}) != len(checked):
        raise CampaignInputError("treatment names must differ", field="treatments")
    return tuple(checked)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.isdigit():
        raise CampaignInputError(
            "name must be 1-128 characters (letters, digits, space, _.:@/+-), starting with a "
            f"letter or digit and not all digits, not {name!r}",
            field="name",
        )
    return name


def check_holdout(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and 0 <= value < 100)
    ):
        raise CampaignInputError(
            f"holdout_percent must be a number in [0, 100), not {value!r}", field="holdout_percent"
        )
    return float(value)


def check_rate(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise CampaignInputError(
            f"rate_per_second must be a positive number, not {value!r}", field="rate_per_second"
        )
    return float(value)


@dataclass(frozen=True)
class Campaign:
    """A campaign as stored."""

    id: int
    name: str
    state: State
    segment: SegmentFilter
    treatments: tuple[Treatment, ...]
    holdout_percent: float
    schedule: Schedule
    quiet_hours: QuietHours | None
    rate_per_second: float | None
    frequency_cap: FrequencyCap | None
    created_at: datetime
    updated_at: datetime
    #: When it was scheduled (the moment an ``immediate`` campaign fires).
    scheduled_at: datetime | None

    @property
    def zoned(self) -> bool:
        """Slots per endpoint zone: in local time, or quiet hours (in each endpoint's zone)."""
        return self.schedule.local_time or self.quiet_hours is not None

    def spec(self) -> dict[str, Any]:
        """The JSON definition (what ``create`` takes back, what the CLI shows)."""
        return spec_dict(
            self.segment,
            self.treatments,
            self.holdout_percent,
            self.schedule,
            self.quiet_hours,
            self.rate_per_second,
            self.frequency_cap,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            **self.spec(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
        }


def spec_dict(
    segment: SegmentFilter,
    treatments: Sequence[Treatment],
    holdout_percent: float,
    schedule: Schedule,
    quiet_hours: QuietHours | None,
    rate_per_second: float | None,
    frequency_cap: FrequencyCap | None,
) -> dict[str, Any]:
    return {
        "segment": segment.to_dict(),
        "treatments": [t.to_dict() for t in treatments],
        "holdout_percent": holdout_percent,
        "schedule": schedule.to_dict(),
        "quiet_hours": quiet_hours.to_dict() if quiet_hours else None,
        "rate_per_second": rate_per_second,
        "frequency_cap": frequency_cap.to_dict() if frequency_cap else None,
    }


@dataclass(frozen=True)
class CampaignEvent:
    """One lifecycle transition (or slot milestone) and who caused it."""

    id: int
    campaign_id: int
    at: datetime
    kind: str
    from_state: str | None
    to_state: str | None
    actor: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": self.actor,
            "details": self.details,
        }


@dataclass(frozen=True)
class Slot:
    """One occurrence of a campaign in one zone: the unit that runs exactly once."""

    id: int
    campaign_id: int
    #: The nominal occurrence: wall-clock ISO time in ``zone``.
    occurrence: str
    zone: str
    due_at: datetime
    #: ``pending``, ``running``, ``done``, ``skipped`` or ``cancelled``.
    state: str
    reason: str | None
    run_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "occurrence": self.occurrence,
            "zone": self.zone,
            "due_at": self.due_at.isoformat(),
            "state": self.state,
            "reason": self.reason,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": self.counts,
        }
