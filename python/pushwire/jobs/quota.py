"""FCM's per-project quota shared by every worker, as a sliding window in Redis: the quota is
for the project (600,000 messages a minute by default), not for one machine, and FCM's
minutes are not clock-aligned, so no window of ``window`` seconds may hold more than the quota.

Like the in-process pace (``pushwire._pacing.SlidingWindowPace``), the window is cut into
``slices`` spans and each span (stretched by ``guard``) holds at most ``quota / slices``: the
workers send at the quota's rate instead of one burst per window.

Each reservation is a member ``<id>:<n>`` of a sorted set scored by when its messages may go
(a Lua script, so taking is atomic across workers; the clock is Redis' own ``TIME``, the same
for every worker whatever their machines' clocks say). A full span makes the caller wait, not
spin: its reservation is placed at the moment enough older ones leave the span, so callers are
served in order. When its messages are answered the reservation is re-stamped with that
moment (:meth:`SharedQuota.settle`): messages that took a while to go out count until they
surely reached the server.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from typing import Any

from .._pacing import DEFAULT_GUARD
from .errors import JobInputError
from .keys import quota_key

_RESERVE = """
local key = KEYS[1]
local limit, span, n, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local total = 0
for i = 1, #entries, 2 do
  total = total + tonumber(string.match(entries[i], ':(%d+)$'))
end
local at = now
local excess = total + n - limit
if excess > 0 then
  -- Oldest first: once enough of them have left the span, there is room for n.
  for i = 1, #entries, 2 do
    excess = excess - tonumber(string.match(entries[i], ':(%d+)$'))
    if excess <= 0 then
      at = tonumber(entries[i + 1]) + span
      break
    end
  end
end
redis.call('ZADD', key, at, id .. ':' .. n)
redis.call('PEXPIRE', key, at - now + 2 * span)
return at - now
"""

_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
local span = tonumber(ARGV[2])
local at = redis.call('ZSCORE', key, ARGV[1])
if at and tonumber(at) < now then
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, 2 * span)
end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    """Messages allowed to go after ``wait`` seconds; hand it back to ``settle`` once sent."""

    members: tuple[str, ...]
    wait: float


class SharedQuota:
    """At most ``per_minute`` messages a minute (counted in any ``window`` seconds: its share
    of the minute) for one FCM ``project``, across every worker using the same Redis and
    ``prefix``."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        project: str,
        per_minute: int,
        *,
        window: float = 60.0,
        slices: int = 10,
        guard: float = DEFAULT_GUARD,
    ) -> None:
        if type(per_minute) is not int or per_minute <= 0:
            raise JobInputError(
                "the FCM quota must be a positive number of messages per minute",
                field="fcm_rate_limit",
            )
        if not 0 < window <= 60:
            raise JobInputError(
                "the FCM quota window must be in (0, 60] seconds", field="fcm_quota_window"
            )
        if slices < 1 or not 0 <= guard < 1:
            raise JobInputError("need slices >= 1 and 0 <= guard < 1", field="fcm_quota_window")
        per_window = max(1, round(per_minute * window / 60.0))
        slices = min(slices, per_window)
        self.per_minute = per_minute
        #: Messages allowed in any ``span`` seconds.
        self.per_span = per_window // slices
        self.span = window / slices * (1 + guard)
        #: The sustained rate, messages per second.
        self.rate = self.per_span / self.span
        self._span_ms = max(1, math.ceil(self.span * 1000))
        self._key = quota_key(prefix, project)
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)

    async def reserve(self, n: int) -> Reservation:
        """Take room for ``n`` messages (in parts of at most one span's share); the
        reservation says how many seconds to wait before sending them."""
        if n < 1:
            raise JobInputError("reserve at least one message", field="n")
        members, wait_ms = [], 0
        while n > 0:
            part = min(n, self.per_span)
            member = f"{uuid.uuid4().hex}"
            wait_ms = int(
                await self._reserve(
                    keys=[self._key], args=[self.per_span, self._span_ms, part, member]
                )
            )
            members.append(f"{member}:{part}")
            n -= part
        # Parts are placed in order: the last one's wait covers them all.
        return Reservation(tuple(members), wait_ms / 1000.0)

    async def acquire(self, n: int) -> Reservation:
        """Reserve ``n`` and wait until they may go."""
        reservation = await self.reserve(n)
        if reservation.wait > 0:
            await asyncio.sleep(reservation.wait)
        return reservation

    async def settle(self, reservation: Reservation) -> None:
        """The reservation's messages were answered: they count in the window from now."""
        for member in reservation.members:
            await self._settle(keys=[self._key], args=[member, self._span_ms])
