"""The producer side: :class:`Queue` writes jobs to the stream and reads their progress.

::

    async with Queue("redis://127.0.0.1:6379/0") as queue:
        job_id = await queue.enqueue("ios", tokens, PushMessage(title="Hi", body="there"))
        status = await queue.wait(job_id)
        print(status.recorded, status.by_outcome)

A job is split into chunks of ``chunk_size`` tokens, one stream entry each, written in
pipelined batches while the tokens are read (any number of tokens, bounded memory). Workers
may start on the first chunks before the last ones are written.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..store.message import PushMessage
from .connection import DEFAULT_REDIS_URL, client, display_url, redis_errors
from .errors import JobInputError, UnknownJobError
from .keys import DEFAULT_GROUP, DEFAULT_STREAM, Keys, check_job_id, check_name
from .metrics import queue_metrics
from .model import (
    MAX_CHUNK,
    ChunkEntry,
    JobStatus,
    OutcomeRecord,
    decode_record,
    encode_entry,
    new_job_id,
)

DEFAULT_CHUNK_SIZE = 1000
#: Job keys (settings, outcomes) expire this long after the job was enqueued.
DEFAULT_JOB_TTL = 7 * 24 * 3600
#: Chunks written per pipelined round trip.
_WRITE_BATCH = 32
_MAX_TOKEN = 4096

#: (application, tokens) parts of one job.
Parts = Iterable[tuple[str, Iterable[str]]]


async def ensure_group(redis: Any, keys: Keys, group: str) -> None:
    """Create the consumer group (and the stream) if missing. The group starts at the
    beginning of the stream, so chunks enqueued before any worker ran are read too."""
    import redis.exceptions as rex

    try:
        await redis.xgroup_create(keys.stream, group, id="0", mkstream=True)
    except rex.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def _message_dict(message: PushMessage | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(message, PushMessage):
        return message.to_dict()
    if isinstance(message, Mapping):
        return PushMessage.from_dict(message).to_dict()  # checks it
    raise JobInputError(
        "message must be a pushwire.store.PushMessage or a mapping of its fields",
        field="message",
    )


def _checked_tokens(tokens: Iterable[str], start: int) -> Iterator[str]:
    if isinstance(tokens, (str, bytes)):
        raise JobInputError("tokens must be an iterable of token strings", field="tokens")
    for i, token in enumerate(tokens, start):
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise JobInputError(
                f"token {i} must be a non-empty string of at most {_MAX_TOKEN} characters",
                field="tokens",
                index=i,
            )
        yield token


class Queue:
    """Enqueue send jobs on a Redis stream and follow them. Use ``async with``."""

    def __init__(
        self,
        redis_url: str = DEFAULT_REDIS_URL,
        *,
        stream: str = DEFAULT_STREAM,
        group: str = DEFAULT_GROUP,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        job_ttl: int = DEFAULT_JOB_TTL,
    ) -> None:
        if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK:
            raise JobInputError(f"chunk_size must be 1 to {MAX_CHUNK}", field="chunk_size")
        if not isinstance(job_ttl, int) or job_ttl < 60:
            raise JobInputError("job_ttl must be at least 60 seconds", field="job_ttl")
        self.keys = Keys(stream)
        self.group = check_name(group, "group")
        self.redis_url = redis_url
        self.chunk_size = chunk_size
        self.job_ttl = job_ttl
        self._redis: Any = client(redis_url)

    def __repr__(self) -> str:
        return f"Queue({display_url(self.redis_url)!r}, stream={self.keys.stream!r})"

    async def __aenter__(self) -> Queue:
        with redis_errors(self.redis_url, "connecting"):
            await self._redis.ping()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._redis.aclose()

    # -- producing ------------------------------------------------------------------------

    async def enqueue(
        self,
        app: str,
        tokens: Iterable[str],
        message: PushMessage | Mapping[str, Any],
        *,
        job_id: str | None = None,
    ) -> str:
        """Enqueue ``message`` to ``tokens`` of application ``app`` (its name in the
        workers' endpoint store); the job id. Tokens are read lazily."""
        return await self.enqueue_parts([(app, tokens)], message, job_id=job_id)

    async def enqueue_segment(
        self,
        store: Any,
        segment: Any,
        message: PushMessage | Mapping[str, Any],
        *,
        job_id: str | None = None,
        page_size: int = 2000,
    ) -> str:
        """Enqueue ``message`` to every enabled endpoint of a segment of ``store`` (a
        :class:`pushwire.store.Store`; ``segment`` a SegmentFilter or its text). The segment
        is read now, a page at a time: endpoints registered later are not in the job."""
        from ..store.segments import SegmentFilter, token_pages

        if isinstance(segment, str):
            segment = SegmentFilter.parse(segment)
        apps = store.segment_applications(segment)
        parts = [
            (
                app.name,
                itertools.chain.from_iterable(token_pages(store.database, app, segment, page_size)),
            )
            for app in apps
        ]
        return await self.enqueue_parts(parts, message, job_id=job_id)

    async def enqueue_parts(
        self,
        parts: Parts,
        message: PushMessage | Mapping[str, Any],
        *,
        job_id: str | None = None,
    ) -> str:
        """One job made of several (application, tokens) parts; indexes run across parts."""
        body = _message_dict(message)
        job = check_job_id(job_id) if job_id is not None else new_job_id()
        keys = self.keys
        redis = self._redis
        with redis_errors(self.redis_url, "enqueuing"):
            await ensure_group(redis, keys, self.group)
            created = await redis.hsetnx(keys.job(job), "created_at", repr(time.time()))
            if not created:
                from .errors import JobExistsError

                raise JobExistsError(f"job {job!r} exists already", field="job_id")
            meta = keys.job(job)
            await redis.hset(
                meta, mapping={"state": "enqueuing", "total": 0, "chunks": 0, "apps": ""}
            )
            await redis.expire(meta, self.job_ttl)
            await redis.zadd(keys.jobs, {job: time.time()})
            apps: list[str] = []
            index = chunk = 0
            pending: list[tuple[ChunkEntry, int]] = []
            for app, tokens in parts:
                check_name(app, "app")
                if app not in apps:
                    apps.append(app)
                    await redis.hset(meta, "apps", ",".join(apps))
                checked = _checked_tokens(tokens, index)
                while batch := list(itertools.islice(checked, self.chunk_size)):
                    pending.append((ChunkEntry(job, app, index, batch, body), chunk))
                    index += len(batch)
                    chunk += 1
                    if len(pending) >= _WRITE_BATCH:
                        await self._write(job, pending)
                        pending = []
            await self._write(job, pending)
            if index == 0:
                await redis.delete(meta)
                await redis.zrem(keys.jobs, job)
                raise JobInputError("the job has no tokens: nothing to send", field="tokens")
            await redis.hset(meta, "state", "queued")
        return job

    async def _write(self, job: str, chunks: Sequence[tuple[ChunkEntry, int]]) -> None:
        if not chunks:
            return
        pipe = self._redis.pipeline(transaction=True)
        for entry, number in chunks:
            pipe.xadd(self.keys.stream, encode_entry(entry, number))
        meta = self.keys.job(job)
        pipe.hincrby(meta, "total", sum(len(e.tokens) for e, _ in chunks))
        pipe.hincrby(meta, "chunks", len(chunks))
        await pipe.execute()

    # -- following ------------------------------------------------------------------------

    async def status(self, job_id: str) -> JobStatus:
        """The job's progress; :class:`UnknownJobError` if there is no such job."""
        check_job_id(job_id)
        with redis_errors(self.redis_url, "reading the job status"):
            raw = await self._redis.hgetall(self.keys.job(job_id))
        if not raw:
            raise UnknownJobError(
                f"no job {job_id!r} in stream {self.keys.stream!r} (never enqueued, or expired)",
                field="job_id",
            )
        return status_from_hash(job_id, raw)

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel the job: chunks no worker has taken yet record their notifications
        ``failed`` (reason ``JobCancelled``, ``maybe_delivered=False``) instead of sending
        them, so the job still completes with one outcome each. Chunks being sent finish.
        Idempotent; :class:`UnknownJobError` if there is no such job."""
        check_job_id(job_id)
        key = self.keys.job(job_id)
        with redis_errors(self.redis_url, "cancelling the job"):
            # Only an existing job: HSETNX on a missing key would create a stray hash.
            if not await self._redis.exists(key):
                raise UnknownJobError(
                    f"no job {job_id!r} in stream {self.keys.stream!r} (never enqueued, or "
                    "expired)",
                    field="job_id",
                )
            await self._redis.hsetnx(key, "cancelled_at", repr(time.time()))
        return await self.status(job_id)

    async def wait(
        self, job_id: str, *, timeout: float | None = None, poll: float = 0.5
    ) -> JobStatus:
        """Poll until every notification of the job has its final outcome; the status.
        ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.status(job_id)
            if status.complete:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"job {job_id}: {status.recorded} of {status.total} outcomes after {timeout} s"
                )
            await asyncio.sleep(poll)

    async def outcomes(self, job_id: str) -> AsyncIterator[tuple[int, OutcomeRecord]]:
        """Every recorded (index, outcome) of the job, in no particular order."""
        check_job_id(job_id)
        key = self.keys.outcomes(job_id)
        cursor = 0
        while True:
            with redis_errors(self.redis_url, "reading outcomes"):
                cursor, page = await self._redis.hscan(key, cursor, count=2000)
            for index, data in page.items():
                yield int(index), decode_record(data)
            if cursor == 0:
                return

    async def jobs(self, limit: int = 20) -> list[str]:
        """The latest job ids, newest first."""
        with redis_errors(self.redis_url, "listing jobs"):
            ids = await self._redis.zrevrange(self.keys.jobs, 0, max(0, limit - 1))
        return [i.decode() for i in ids]

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """The latest dead-letter entries, newest first (id, reason, job, entry, fields)."""
        with redis_errors(self.redis_url, "reading the dead-letter stream"):
            entries = await self._redis.xrevrange(self.keys.dead, count=count)
        return [
            {
                "id": entry_id.decode(),
                **{k.decode(): v.decode("utf-8", "replace") for k, v in f.items()},
            }
            for entry_id, f in entries
        ]

    async def stats(self) -> dict[str, Any]:
        """Queue depth, consumer-group lag and pending entries, live workers: see
        :func:`pushwire.jobs.metrics.queue_metrics`."""
        with redis_errors(self.redis_url, "reading queue metrics"):
            return await queue_metrics(self._redis, self.keys, self.group)


def _int(raw: Mapping[bytes, bytes], field: bytes) -> int:
    value = raw.get(field)
    return int(value) if value is not None else 0


def status_from_hash(job_id: str, raw: Mapping[bytes, bytes]) -> JobStatus:
    by_outcome: dict[str, int] = {}
    by_action: dict[str, int] = {}
    for field, value in raw.items():
        if field.startswith(b"o:"):
            by_outcome[field[2:].decode()] = int(value)
        elif field.startswith(b"a:"):
            by_action[field[2:].decode()] = int(value)
    total, recorded = _int(raw, b"total"), _int(raw, b"recorded")
    chunks_done = _int(raw, b"chunks_done")
    written = raw.get(b"state", b"") == b"queued"
    if not written:
        state = "enqueuing"
    elif recorded >= total and chunks_done >= _int(raw, b"chunks"):
        state = "complete"
    elif recorded == 0 and chunks_done == 0:
        state = "queued"
    else:
        state = "running"
    apps = raw.get(b"apps", b"").decode()
    cancelled = raw.get(b"cancelled_at")
    return JobStatus(
        job_id=job_id,
        state=state,
        total=total,
        recorded=recorded,
        chunks=_int(raw, b"chunks"),
        chunks_done=chunks_done,
        by_outcome=by_outcome,
        by_action=by_action,
        resent=_int(raw, b"resent"),
        dead_lettered=_int(raw, b"dead_lettered"),
        created_at=float(raw.get(b"created_at", b"0")),
        applications=[a for a in apps.split(",") if a],
        cancelled_at=float(cancelled) if cancelled is not None else None,
    )
