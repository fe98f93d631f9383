"""Recording final outcomes exactly once, and the progress counters that go with them.

Every notification of a job has an index; its outcome is written with ``HSETNX`` into the
job's outcome hash, so a second record for the same index (an entry processed again after it
was reclaimed from a worker presumed dead) changes nothing. The counters (recorded, by outcome,
by action) move in the same Lua script, and only for records that were new: progress never
counts a notification twice. Finishing a chunk (``XACK`` + ``XDEL`` + the chunk's mark) is one
script too, idempotent the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .keys import Keys
from .model import OutcomeRecord, encode_record

_RECORD = """
local outcomes, meta, results = KEYS[1], KEYS[2], KEYS[3]
local maxlen = tonumber(ARGV[1])
local job = ARGV[2]
local new, dup = 0, 0
local by = {}
for i = 3, #ARGV, 4 do
  local index, record = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', outcomes, index, record) == 1 then
    new = new + 1
    local o, a = 'o:' .. ARGV[i + 2], 'a:' .. ARGV[i + 3]
    by[o] = (by[o] or 0) + 1
    by[a] = (by[a] or 0) + 1
    if maxlen > 0 then
      redis.call('XADD', results, 'MAXLEN', '~', maxlen, '*',
                 'job', job, 'index', index, 'record', record)
    end
  else
    dup = dup + 1
  end
end
for field, n in pairs(by) do
  redis.call('HINCRBY', meta, field, n)
end
if new > 0 then
  redis.call('HINCRBY', meta, 'recorded', new)
  -- The outcomes live as long as the job (its settings hash has the job's TTL).
  local ttl = redis.call('TTL', meta)
  if ttl > 0 and redis.call('TTL', outcomes) == -1 then
    redis.call('EXPIRE', outcomes, ttl)
  end
end
return {new, dup}
"""

_MISSING = """
local outcomes = KEYS[1]
local first, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local missing = {}
for offset = 0, n - 1 do
  if redis.call('HEXISTS', outcomes, tostring(first + offset)) == 0 then
    missing[#missing + 1] = offset
  end
end
return missing
"""

_FINISH = """
local stream, meta, chunks = KEYS[1], KEYS[2], KEYS[3]
local group, id, chunk = ARGV[1], ARGV[2], ARGV[3]
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
if chunk ~= '' and redis.call('SADD', chunks, chunk) == 1 then
  redis.call('HINCRBY', meta, 'chunks_done', 1)
  local ttl = redis.call('TTL', meta)
  if ttl > 0 and redis.call('TTL', chunks) == -1 then
    redis.call('EXPIRE', chunks, ttl)
  end
end
return 1
"""


class OutcomeRecorder:
    """Writes outcome records and finishes chunks, for one stream."""

    def __init__(self, redis: Any, keys: Keys, *, results_maxlen: int = 0) -> None:
        self._redis = redis
        self._keys = keys
        self._results_maxlen = results_maxlen
        self._record = redis.register_script(_RECORD)
        self._missing = redis.register_script(_MISSING)
        self._finish = redis.register_script(_FINISH)

    async def record(
        self, job_id: str, records: Sequence[tuple[int, OutcomeRecord]]
    ) -> tuple[int, int]:
        """Record ``(index, record)`` pairs; (new records, records that existed already)."""
        if not records:
            return 0, 0
        args: list[Any] = [self._results_maxlen, job_id]
        for index, record in records:
            args += [index, encode_record(record), record.outcome, record.action]
        keys = self._keys
        new, dup = await self._record(
            keys=[keys.outcomes(job_id), keys.job(job_id), keys.results], args=args
        )
        return int(new), int(dup)

    async def missing(self, job_id: str, first: int, count: int) -> list[int]:
        """Offsets in ``[0, count)`` whose notification ``first + offset`` has no record."""
        offsets = await self._missing(keys=[self._keys.outcomes(job_id)], args=[first, count])
        return [int(x) for x in offsets]

    async def finish(self, group: str, entry_id: bytes | str, job_id: str, chunk: int) -> None:
        """Acknowledge and delete the entry; count its chunk done (once)."""
        keys = self._keys
        await self._finish(
            keys=[keys.stream, keys.job(job_id), keys.chunks(job_id)],
            args=[group, entry_id, chunk],
        )

    async def drop(self, group: str, entry_id: bytes | str) -> None:
        """Acknowledge and delete an entry that belongs to no known job."""
        await self._finish(keys=[self._keys.stream, "", ""], args=[group, entry_id, ""])
