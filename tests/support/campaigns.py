"""Helpers shared by the campaign tests (no tests here): a controllable clock, stores with
endpoints in several zones, a scheduler loop over simulated time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from pushwire.store import Registration, Store
from support.store import apns_token

TOPIC = "com.example.app"


class FakeClock:
    """Epoch milliseconds that move only when told to."""

    def __init__(self, start: datetime) -> None:
        self.ms = int(start.timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def set(self, moment: datetime) -> None:
        self.ms = int(moment.timestamp() * 1000)

    def advance(self, delta: timedelta) -> None:
        self.ms += int(delta.total_seconds() * 1000)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, tz=timezone.utc)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def add_ios(store: Store) -> None:
    store.put_application("ios", provider="apns", topic=TOPIC)


def register_bulk(store: Store, count: int, *, prefix: str = "", **attributes: Any) -> list[str]:
    tokens = [apns_token(i, prefix) for i in range(count)]
    for start in range(0, count, 5000):
        store.register_many(
            Registration("ios", t, attributes=dict(attributes) or None)
            for t in tokens[start : start + 5000]
        )
    return tokens


def run_ticks(scheduler: Any, clock: FakeClock, until: datetime, step: timedelta) -> list[Any]:
    """Tick at every ``step`` of simulated time up to ``until``; every slot report."""

    async def main() -> list[Any]:
        reports = []
        while clock.now <= until:
            reports += await scheduler.tick()
            clock.advance(step)
        return reports

    return asyncio.run(main())
