"""When a campaign's slots fall: occurrences of a schedule in a zone, quiet hours, and the
moment after which a campaign has nothing left to send.

An *occurrence* is a wall-clock time in a zone (``2026-12-05T09:00`` in ``Asia/Tokyo``); its
UTC instant is the moment the slot is due. Recurring schedules run on a cron expression
(``cronsim``, which steps over DST gaps and repeats the way cron does); hourly, daily and
weekly are cron expressions made from ``start``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from .errors import InvalidScheduleError
from .model import Frequency, QuietHours, Schedule

#: A local time-of-day happens at most this long after the same wall clock in UTC
#: (Etc/GMT+12 is UTC-12): the last moment any zone can reach an occurrence.
_LATEST_OFFSET = timedelta(hours=12)
#: Iterations before a cron walk gives up (a pathological expression over a long range).
_MAX_STEPS = 100_000


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(tz)


def cron_expression(schedule: Schedule) -> str:
    """The cron expression of a recurring schedule."""
    start = schedule.start
    if schedule.frequency is Frequency.CRON:
        assert schedule.cron is not None
        return schedule.cron
    assert isinstance(start, datetime)
    if schedule.frequency is Frequency.HOURLY:
        return f"{start.minute} * * * *"
    if schedule.frequency is Frequency.DAILY:
        return f"{start.minute} {start.hour} * * *"
    return f"{start.minute} {start.hour} * * {(start.weekday() + 1) % 7}"


def occurrences(
    schedule: Schedule, tz: ZoneInfo, *, after: datetime, scheduled_at_ms: int
) -> Iterator[datetime]:
    """Occurrences (aware, in ``tz``) strictly after ``after`` (aware), in order, up to the
    schedule's end. ``immediate`` has one: the moment the campaign was scheduled."""
    if schedule.frequency is Frequency.IMMEDIATE:
        moment = from_ms(scheduled_at_ms, tz)
        if moment > after:
            yield moment
        return
    start = schedule.start
    if schedule.frequency is Frequency.ONCE:
        assert isinstance(start, datetime)
        moment = start.replace(tzinfo=tz)
        if moment > after:
            yield moment
        return
    end = schedule.end.replace(tzinfo=tz) if isinstance(schedule.end, datetime) else None
    base = after
    if isinstance(start, datetime):
        base = max(base, start.replace(tzinfo=tz) - timedelta(minutes=1))
    walk = CronSim(cron_expression(schedule), base.astimezone(tz))
    for _ in range(_MAX_STEPS):
        try:
            moment = next(walk)
        except (StopIteration, CronSimError):
            return
        if end is not None and moment > end:
            return
        if moment > after:
            yield moment


def check_fires(schedule: Schedule, now_ms: int) -> None:
    """:class:`InvalidScheduleError` unless the schedule fires at least once (a cron
    expression that cannot be parsed or never matches between start and end)."""
    tz = schedule.zone
    if schedule.frequency is Frequency.IMMEDIATE:
        if schedule.local_time:
            raise InvalidScheduleError(
                "schedule.local_time needs a time of day: use frequency='once' with a start",
                field="schedule.local_time",
            )
        return
    if schedule.frequency is Frequency.CRON:
        try:
            CronSim(cron_expression(schedule), datetime(2026, 1, 1, tzinfo=tz))
        except CronSimError as e:
            raise InvalidScheduleError(
                f"schedule.cron {schedule.cron!r} is not a cron expression: {e}",
                field="schedule.cron",
            ) from None
    if not schedule.recurring:
        return
    begin = (
        schedule.start.replace(tzinfo=tz) - timedelta(minutes=1)
        if isinstance(schedule.start, datetime)
        else from_ms(now_ms, tz)
    )
    if next(occurrences(schedule, tz, after=begin, scheduled_at_ms=now_ms), None) is None:
        shown = schedule.cron or cron_expression(schedule)
        window = f" before schedule.end {schedule.end}" if schedule.end else ""
        raise InvalidScheduleError(
            f"the schedule never fires: {shown!r} matches no time after "
            f"{begin.replace(tzinfo=None).isoformat(timespec='minutes')}{window}",
            field="schedule.cron" if schedule.frequency is Frequency.CRON else "schedule.end",
        )


def last_moment_ms(schedule: Schedule, scheduled_at_ms: int) -> int | None:
    """After this instant no zone has an occurrence left (None: recurring without end)."""
    if schedule.frequency is Frequency.IMMEDIATE:
        return scheduled_at_ms
    last = schedule.start if schedule.frequency is Frequency.ONCE else schedule.end
    if not isinstance(last, datetime):
        return None
    if schedule.local_time:
        return to_ms(last.replace(tzinfo=timezone.utc) + _LATEST_OFFSET)
    return to_ms(last.replace(tzinfo=schedule.zone))


def quiet_release(quiet: QuietHours, moment: datetime) -> datetime | None:
    """When a push due at ``moment`` (aware, in the endpoint's zone) may go out: None when
    it is outside quiet hours, else the end of the quiet hours."""
    wall = moment.replace(tzinfo=None)
    if not quiet.contains(wall.time()):
        return None
    end = quiet.end
    assert not isinstance(end, str)
    release = wall.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if release <= wall:
        release += timedelta(days=1)
    tz = moment.tzinfo
    assert isinstance(tz, ZoneInfo)
    return release.replace(tzinfo=tz)
