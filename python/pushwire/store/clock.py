"""Times in the store: integer MILLISECONDS since the epoch in the database (the unit of the
APNs 410 timestamp, and the same in SQLite and PostgreSQL), aware UTC datetimes in the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from .errors import StoreInputError

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MILLISECOND = timedelta(milliseconds=1)

#: Returns the current time in epoch milliseconds; injectable for tests.
Clock = Callable[[], int]


def system_clock() -> int:
    return time.time_ns() // 1_000_000


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def optional_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else to_datetime(ms)


def to_ms(moment: datetime, field: str) -> int:
    """Epoch milliseconds of a datetime; a naive one is taken as UTC (as classify does)."""
    if not isinstance(moment, datetime):
        raise StoreInputError(
            f"{field} must be a datetime, not {type(moment).__name__}", field=field
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Exact integer arithmetic: float timestamps can round 123.9999 ms down to 123.
    return (moment - _EPOCH) // _ONE_MILLISECOND


def utc_day(ms: int) -> str:
    """``YYYY-MM-DD`` of a moment, in UTC: the bucket of the daily KPIs."""
    return to_datetime(ms).strftime("%Y-%m-%d")
