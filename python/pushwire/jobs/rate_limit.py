"""A token bucket in Redis shared by every worker: FCM's per-project quota (600,000 messages
a minute by default) is for the project, not for one machine.

The bucket refills at ``per_minute / 60`` tokens a second up to ``burst``. Taking ``n``
tokens always succeeds and may leave the bucket negative: the answer is how long to wait
before sending (a reservation), so callers are served in order and never spin. The clock is
Redis' own (``TIME``), the same for every worker whatever their machines' clocks say.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import JobInputError
from .keys import rate_limit_key

_TAKE = """
local key = KEYS[1]
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens, at = burst, now
end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
tokens = tokens - n
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', key, math.ceil((burst - tokens) * 1000 / rate) + 60000)
if tokens >= 0 then
  return 0
end
return math.ceil(-tokens * 1000 / rate)
"""


class SharedRateLimit:
    """``per_minute`` messages across all workers for one ``identity`` (an FCM project)."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        identity: str,
        per_minute: int,
        *,
        burst: int | None = None,
    ) -> None:
        if not isinstance(per_minute, int) or per_minute <= 0:
            raise JobInputError(
                "the rate limit must be a positive number per minute", field="rate_limit"
            )
        self.per_minute = per_minute
        self.burst = burst if burst is not None else max(1, per_minute // 60)
        self._key = rate_limit_key(prefix, identity)
        self._take = redis.register_script(_TAKE)

    async def reserve(self, n: int) -> float:
        """Take ``n`` tokens; the seconds to wait before using them."""
        wait_ms = await self._take(keys=[self._key], args=[self.per_minute / 60.0, self.burst, n])
        return int(wait_ms) / 1000.0

    async def acquire(self, n: int) -> float:
        """Take ``n`` tokens and wait until they may be used; the seconds waited."""
        wait = await self.reserve(n)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
