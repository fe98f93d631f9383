"""Sending at a project's quota: how many HTTP/2 connections a rate needs, and a sliding-window
pace that never puts more than the quota into any window (so a provider counting in fixed or
sliding windows answers no 429).

FCM allows about 100 concurrent streams per connection, so one connection carries at most
``streams / round_trip`` messages a second; a rate needs ``ceil(rate * round_trip / streams)``
connections. FCMClient sizes its pool with a :class:`ConnectionPlanner`: it starts with one
connection and resizes once the engine has read the server's SETTINGS_MAX_CONCURRENT_STREAMS
and measured the round trip of the first answers.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._retry import QUOTA_REASONS, RetryPolicy

#: Keep this share of the window unused, so answers arriving a little later or earlier than
#: their siblings (network jitter) do not spill into a window the provider counts as full.
DEFAULT_GUARD = 0.015
#: "Avoid sending at the top of the hour": FCM's traffic peaks in the first minutes.
HOUR_START_QUIET = 120.0


def connections_for(rate: float, round_trip: float, streams_per_connection: int) -> int:
    """Connections that carry ``rate`` messages/s when each answer takes ``round_trip`` s and
    the server allows ``streams_per_connection`` concurrent streams (its
    SETTINGS_MAX_CONCURRENT_STREAMS)."""
    if not rate > 0 or not round_trip > 0 or streams_per_connection < 1:
        raise ValueError("need rate > 0, round_trip > 0 and streams_per_connection >= 1")
    return max(1, math.ceil(rate * round_trip / streams_per_connection))


@dataclass(frozen=True)
class ConnectionPlan:
    """A pool size and the figures it came from (``str()`` says why, for logs and docs)."""

    connections: int
    rate: float
    round_trip: float
    streams: int
    #: "measured" (the engine's moving average of stream round trips) or "given".
    round_trip_from: str
    #: "SETTINGS" (the server's SETTINGS_MAX_CONCURRENT_STREAMS) or "given".
    streams_from: str
    #: The caller's ``max_connections`` lowered the count to this.
    capped: bool = False

    def __str__(self) -> str:
        plural = "s" if self.connections != 1 else ""
        cap = ", capped by max_connections" if self.capped else ""
        return (
            f"{self.connections} connection{plural} = ceil({self.rate:g}/s x "
            f"{self.round_trip:.4g} s round trip ({self.round_trip_from}) / {self.streams} "
            f"streams ({self.streams_from})){cap}"
        )


class ConnectionPlanner:
    """Chooses a pool's connection count for ``rate`` messages/s from what the engine reads and
    measures (pool stats ``peer_max_streams`` from SETTINGS, ``round_trip_us`` from answers);
    ``round_trip``/``streams`` given by the caller override the measurements, ``cap`` bounds
    the count. Re-plans at most every ``interval`` seconds; grows as soon as the need rises,
    shrinks only when the need falls a fifth of a connection below the next smaller count (a
    round trip hovering at a boundary must not open and close connections in turn)."""

    SHRINK_MARGIN = 0.2

    def __init__(
        self,
        rate: float,
        *,
        round_trip: float | None = None,
        streams: int | None = None,
        cap: int | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise ValueError("need rate > 0")
        if round_trip is not None and not round_trip > 0:
            raise ValueError("need round_trip > 0")
        if streams is not None and streams < 1:
            raise ValueError("need streams_per_connection >= 1")
        if cap is not None and cap < 1:
            raise ValueError("need max_connections >= 1")
        self.rate = rate
        self._round_trip = round_trip
        self._streams = streams
        self._cap = cap
        self._interval = interval
        self._clock = clock
        self._next_look = 0.0
        #: The plan in force (None until the first one).
        self.current: ConnectionPlan | None = None

    def initial(self) -> ConnectionPlan | None:
        """The plan before any connection, when the caller gave both figures; else None (the
        pool starts with one connection and :meth:`update` sizes it)."""
        if self._round_trip is None or self._streams is None:
            return None
        self.current = self._plan(self._round_trip, "given", self._streams, "given")
        return self.current

    def due(self) -> bool:
        """Whether :meth:`update` would look at the stats now (cheap; call it first)."""
        return self._clock() >= self._next_look

    def update(self, stats: Mapping[str, int]) -> ConnectionPlan | None:
        """A new plan when the pool should change size, else None."""
        now = self._clock()
        if now < self._next_look:
            return None
        round_trip, round_trip_from = self._round_trip, "given"
        if round_trip is None:
            measured = stats.get("round_trip_us", 0)
            if measured <= 0:
                return None  # no answer yet
            round_trip, round_trip_from = measured / 1e6, "measured"
        streams, streams_from = self._streams, "given"
        if streams is None:
            streams = stats.get("peer_max_streams", 0)
            if streams <= 0:
                return None  # no SETTINGS yet
            streams_from = "SETTINGS"
        # Figures missing: look again on the next call; once planned, wait the interval.
        self._next_look = now + self._interval
        plan = self._plan(round_trip, round_trip_from, streams, streams_from)
        current = self.current.connections if self.current is not None else 1
        need = self.rate * round_trip / streams
        grow = plan.connections > current
        shrink = plan.connections < current and need <= current - 1 - self.SHRINK_MARGIN
        if self.current is not None and not grow and not shrink:
            return None
        self.current = plan
        return plan

    def _plan(
        self, round_trip: float, round_trip_from: str, streams: int, streams_from: str
    ) -> ConnectionPlan:
        connections = connections_for(self.rate, round_trip, streams)
        capped = self._cap is not None and connections > self._cap
        return ConnectionPlan(
            connections=min(connections, self._cap) if self._cap is not None else connections,
            rate=self.rate,
            round_trip=round_trip,
            streams=streams,
            round_trip_from=round_trip_from,
            streams_from=streams_from,
            capped=capped,
        )


class SlidingWindowPace:
    """At most ``messages`` in any ``window`` seconds, spread evenly: the window is cut into
    ``slices`` and any stretch of ``window / slices`` seconds (stretched by ``guard``) holds
    at most ``messages / slices``, so every window-long stretch holds at most ``messages`` and
    the sends flow at the quota's rate instead of a burst per window (a burst needs far more
    connections than the average rate). A drop-in for the dispatcher's rate limiter
    (``available``/``take``/``wait_time``).

    ``pause(seconds)`` stops all sending for a while (a 429 with Retry-After, plus jitter), and
    with ``avoid_hour_start`` nothing starts in the first two minutes of an hour (UTC).
    ``clock`` (monotonic) and ``wall_clock`` (epoch seconds) are injectable for tests.
    """

    def __init__(
        self,
        messages: int,
        window: float = 60.0,
        *,
        slices: int = 10,
        guard: float = DEFAULT_GUARD,
        avoid_hour_start: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if messages < 1 or not window > 0 or not 0 <= guard < 1 or slices < 1:
            raise ValueError("need messages >= 1, window > 0, slices >= 1 and 0 <= guard < 1")
        slices = min(slices, messages)
        #: Messages allowed in any ``span`` seconds.
        self.per_span = messages // slices
        self.span = window / slices * (1 + guard)
        #: The sustained rate, messages per second.
        self.rate = self.per_span / self.span
        self.avoid_hour_start = avoid_hour_start
        self._clock = clock
        self._wall_clock = wall_clock
        self._sent: deque[tuple[float, int]] = deque()  # (when, how many), oldest first
        self._in_window = 0
        self._paused_until = 0.0

    def _forget_old(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.span:
            self._in_window -= self._sent.popleft()[1]

    def _blocked_for(self, now: float) -> float:
        """Seconds sending is held back by a pause or the start of the hour."""
        wait = max(0.0, self._paused_until - now)
        if self.avoid_hour_start:
            into_hour = self._wall_clock() % 3600.0
            if into_hour < HOUR_START_QUIET:
                wait = max(wait, HOUR_START_QUIET - into_hour)
        return wait

    def available(self) -> int:
        now = self._clock()
        if self._blocked_for(now) > 0:
            return 0
        self._forget_old(now)
        return max(0, self.per_span - self._in_window)

    def take(self, n: int) -> None:
        now = self._clock()
        if self._sent and self._sent[-1][0] == now:
            when, count = self._sent.pop()
            self._sent.append((when, count + n))
        else:
            self._sent.append((now, n))
        self._in_window += n

    def wait_time(self) -> float:
        """Seconds until one more message may go."""
        now = self._clock()
        blocked = self._blocked_for(now)
        if blocked > 0:
            return blocked
        self._forget_old(now)
        if self._in_window < self.per_span:
            return 0.0
        # Wait until enough old sends leave the window to make room for one.
        excess = self._in_window - self.per_span + 1
        for when, count in self._sent:
            excess -= count
            if excess <= 0:
                return max(0.0, when + self.span - now)
        return self.span  # pragma: no cover - the loop always reaches excess <= 0

    def pause(self, seconds: float, *, jitter: float = 0.1) -> None:
        """Hold every send for ``seconds`` plus up to ``jitter`` of it at random (so many
        clients told the same Retry-After do not come back at the same instant)."""
        until = self._clock() + seconds * (1 + random.uniform(0, jitter))
        self._paused_until = max(self._paused_until, until)


@dataclass(frozen=True)
class QuotaRetry(RetryPolicy):
    """A RetryPolicy that also holds back every send of the client when the provider says the
    quota is exhausted (429 QUOTA_EXCEEDED): the rejected messages wait their Retry-After, and
    so does everything not yet sent, plus jitter, instead of meeting the same full window."""

    pace: SlidingWindowPace | None = field(default=None, compare=False, repr=False)

    @classmethod
    def around(cls, policy: RetryPolicy, pace: SlidingWindowPace) -> QuotaRetry:
        return cls(
            max_attempts=policy.max_attempts,
            statuses=policy.statuses,
            base_delay=policy.base_delay,
            max_delay=policy.max_delay,
            quota_delay=policy.quota_delay,
            pace=pace,
        )

    def delay(self, attempt: int, reason: str | None, retry_after: int | None) -> float | None:
        wait = super().delay(attempt, reason, retry_after)
        if wait is not None and reason in QUOTA_REASONS and self.pace is not None:
            self.pace.pause(wait)
        return wait
