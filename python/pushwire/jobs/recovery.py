"""Crash recovery: entries of a worker that stopped answering are reclaimed by another.

A worker that reads an entry owns it (the consumer group's pending entries list) until it
acknowledges it. While it works on an entry it keeps claiming it again (``XCLAIM ... JUSTID``
resets the idle time), so a live worker's entries never look abandoned. A worker killed with
``kill -9`` stops doing that: after ``min_idle`` its entries are taken over by whichever worker
runs ``XAUTOCLAIM`` next, and processed again. Notifications of such an entry that already
have a recorded outcome are not sent again; the others are (they may have reached the
provider once already: at-least-once, see the README), and counted as ``resent``.

``XAUTOCLAIM`` raises an entry's delivery count each time; one that keeps killing its workers
is dead-lettered after ``max_deliveries``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .keys import Keys

#: (entry id, fields, times delivered)
Claimed = tuple[bytes, dict[bytes, bytes], int]


async def reclaim(
    redis: Any, keys: Keys, group: str, consumer: str, *, min_idle: float, count: int
) -> list[Claimed]:
    """Take over up to ``count`` entries idle for ``min_idle`` seconds (any consumer)."""
    if count <= 0:
        return []
    claimed: list[Claimed] = []
    start: bytes | str = "0-0"
    min_idle_ms = max(1, int(min_idle * 1000))
    while len(claimed) < count:
        reply = await redis.xautoclaim(
            keys.stream, group, consumer, min_idle_ms, start_id=start, count=count - len(claimed)
        )
        start, entries = reply[0], reply[1]
        # reply[2] (Redis >= 7): ids of entries deleted from the stream meanwhile; Redis has
        # already removed them from the pending list.
        for entry_id, fields in entries:
            if fields is None:  # deleted between the scan and the claim
                continue
            claimed.append((entry_id, fields, await deliveries(redis, keys, group, entry_id)))
        if start in (b"0-0", "0-0"):
            break
    return claimed


async def deliveries(redis: Any, keys: Keys, group: str, entry_id: bytes) -> int:
    """How many times the entry was delivered (read or claimed)."""
    info = await redis.xpending_range(keys.stream, group, min=entry_id, max=entry_id, count=1)
    return int(info[0]["times_delivered"]) if info else 1


async def keep_claimed(
    redis: Any, keys: Keys, group: str, consumer: str, entry_ids: Iterable[bytes]
) -> None:
    """Reset the idle time of entries this worker is still working on."""
    ids = list(entry_ids)
    if ids:
        await redis.xclaim(keys.stream, group, consumer, 0, ids, justid=True)
