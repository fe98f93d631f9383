"""Resending what the provider asked us to resend later (429, 500, 503), and an optional
client-side rate limit. Both act per notification only on the rare rejected ones, and per
batch otherwise."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

#: FCM's QUOTA_EXCEEDED: wait at least a minute (protocol.md §4.3).
QUOTA_REASONS = frozenset({"QUOTA_EXCEEDED"})


@dataclass(frozen=True)
class RetryPolicy:
    """Which rejections are resent, how often and after how long.

    A ``retry-after`` header is always honoured (up to ``max_delay``; a longer one ends the
    retries). Otherwise the delay is exponential with full jitter between ``base_delay`` and
    ``max_delay``; FCM ``QUOTA_EXCEEDED`` waits at least ``quota_delay``. After
    ``max_attempts`` the notification's result is ``failed`` with the last status and reason.
    """

    max_attempts: int = 3
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 503}))
    base_delay: float = 1.0
    max_delay: float = 60.0
    quota_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def should_retry(self, status: int, attempt: int) -> bool:
        return status in self.statuses and attempt < self.max_attempts

    def delay(self, attempt: int, reason: str | None, retry_after: int | None) -> float | None:
        """Seconds before resend number ``attempt`` (1 = first resend), None = give up."""
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_delay else None
        if reason in QUOTA_REASONS:
            return max(self.quota_delay, self.base_delay)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


#: APNs asks for 5xx retries "after 15 minutes" at most; a bulk sender wants bounded retries.
DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


class RateLimiter:
    """A token bucket: at most ``per_minute`` notifications per minute, in bursts of up to
    ``per_minute / 60`` (one second's worth)."""

    #: The least time's worth of notifications a rate-limited sender waits for.
    BATCH_SECONDS = 0.002

    def __init__(self, per_minute: int) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self._tokens = self.capacity
        self._last = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    def take(self, n: int) -> None:
        self._tokens -= n

    def wait_time(self) -> float:
        """Seconds until the next batch may go: one notification, or at a high rate the
        rate's worth of ``BATCH_SECONDS``, so a sender wakes once per batch rather than once
        per notification (70,000/s was a wake-up and an engine call per 14 µs)."""
        self._refill()
        batch = min(self.capacity, max(1.0, self.rate * self.BATCH_SECONDS))
        return max(0.0, (batch - self._tokens) / self.rate)
