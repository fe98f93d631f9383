"""Bridge between the engine's outcome batches and asyncio.

The engine writes one byte to a socket when outcomes are waiting; the event loop's reader
callback drains them all in one call and routes each to its job. Request ids are
``(job_id << 32) | index``: job 0 collects single ``send()`` calls, other jobs are
``send_many`` / ``stream`` batches. No Python runs on engine threads, so this works on asyncio
and uvloop alike.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, Callable

from . import _core
from ._core import Waiter
from ._errors import ClientClosedError, PayloadError, PushwireError, SendInterruptedError
from ._outcome import Outcome
from ._record import (
    APNS_ID,
    ATTEMPTS,
    HEADERS,
    ID,
    OUTCOME,
    REASON,
    RETRY_AFTER,
    STATUS,
    OutcomeRecord,
)
from ._record import replace as replace_fields
from ._report import BulkReport
from ._results import Result, Results, result_from_record
from ._retry import NO_RETRY, RateLimiter, RetryPolicy

_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1
#: (status, reason) of rejections a fixed credential cures: resent once after the fix.
AuthRetry = frozenset[tuple[int, str]]
#: Called with the rejected outcome records; returns an awaitable when the fix needs the network.
FixAuth = Callable[[list[OutcomeRecord]], Awaitable[None] | None]
#: Largest batch handed to the engine in one call: bounds the time the loop spends in Rust.
_MAX_CHUNK = 4096


class _ListJob:
    """Results of a ``send_many`` call, in input order."""

    __slots__ = ("future", "items", "remaining", "results", "tokens_of")

    def __init__(
        self,
        items: list[Any],
        tokens_of: _core.Template | None,
        future: asyncio.Future[Results],
    ) -> None:
        self.items = items
        self.tokens_of = tokens_of
        self.results: list[Result | None] = [None] * len(items)
        self.remaining = len(items)
        self.future = future

    def item(self, index: int) -> tuple[Any, _core.Template | None]:
        return self.items[index], self.tokens_of

    def fail_missing(self, why: str) -> None:
        """Give every item still without a result a ``failed`` one: called when the client
        closed, after every submitted notification got its outcome, so these were never sent."""
        for index, result in enumerate(self.results):
            if result is None:
                self.results[index] = local_failure(self.items[index], index, why)
        self.remaining = 0
        if not self.future.done():
            self.future.set_result(Results(self.results))  # type: ignore[arg-type]

    def on_result(self, record: OutcomeRecord, index: int) -> None:
        if self.results[index] is None:
            self.remaining -= 1
        self.results[index] = result_from_record(record, index)
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(Results(self.results))  # type: ignore[arg-type]


class _ListReportJob:
    """Outcomes of a ``send_many`` / ``send_to_tokens`` call with ``keep="problems"``: the
    delivered ones are counted into a :class:`BulkReport`, the others kept as Results."""

    __slots__ = ("future", "items", "remaining", "report", "seen", "tokens_of")

    def __init__(
        self,
        items: list[Any],
        tokens_of: _core.Template | None,
        future: asyncio.Future[BulkReport],
    ) -> None:
        self.items = items
        self.tokens_of = tokens_of
        self.report = BulkReport()
        #: One byte per notification: set once its outcome is in (a second is never counted).
        self.seen = bytearray(len(items))
        self.remaining = len(items)
        self.future = future

    def item(self, index: int) -> tuple[Any, _core.Template | None]:
        return self.items[index], self.tokens_of

    def fail_missing(self, why: str) -> None:
        """As :meth:`_ListJob.fail_missing`: the notifications without an outcome were never
        sent (the client closed first)."""
        seen = self.seen
        index = seen.find(0)
        while index != -1:
            seen[index] = 1
            self.report._add_problem(local_failure(self.items[index], index, why))
            index = seen.find(0, index + 1)
        self.remaining = 0
        if not self.future.done():
            self.future.set_result(self.report)

    def on_result(self, record: OutcomeRecord, index: int) -> None:
        seen = self.seen
        if seen[index]:
            return
        seen[index] = 1
        if record[OUTCOME] == "delivered" and record[HEADERS] is None:
            self.report._add_delivered(index, record[APNS_ID])
        else:
            self.report._add_problem(result_from_record(record, index))
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(self.report)


class _StreamJob:
    """Results of a ``stream`` call, in completion order.

    Submitted chunks are kept until all their results are in, so a notification can be resent
    once after an auth rejection; memory stays bounded by the in-flight window. With a
    ``report``, delivered outcomes are counted into it instead of becoming Results.
    """

    __slots__ = ("chunks", "counted", "ready", "report", "starts", "waiter")

    def __init__(self, report: BulkReport | None = None) -> None:
        self.report = report
        #: Outcomes counted into ``report`` (never in ``ready``).
        self.counted = 0
        self.ready: collections.deque[Result] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.starts: list[int] = []
        #: chunk start offset -> [items, results still expected]
        self.chunks: dict[int, list[Any]] = {}

    def add_chunk(self, offset: int, items: list[Any]) -> None:
        self.starts.append(offset)
        self.chunks[offset] = [items, len(items)]

    def _chunk_start(self, index: int) -> int:
        return self.starts[bisect.bisect_right(self.starts, index) - 1]

    def item(self, index: int) -> tuple[Any, _core.Template | None]:
        start = self._chunk_start(index)
        return self.chunks[start][0][index - start], None

    def on_result(self, record: OutcomeRecord, index: int) -> None:
        report = self.report
        if report is not None and record[OUTCOME] == "delivered" and record[HEADERS] is None:
            report._add_delivered(index, record[APNS_ID])
            self.counted += 1
        else:
            self.ready.append(result_from_record(record, index))
        start = self._chunk_start(index)
        entry = self.chunks[start]
        entry[1] -= 1
        if entry[1] == 0:
            del self.chunks[start]
            self.starts.remove(start)
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def local_failure(item: Any, index: int, error: PayloadError | str) -> Result:
    """The result of a notification that was never sent (refused locally, client closed).
    ``item`` is a notification tuple or a bare token."""
    if isinstance(item, str):
        token = item
    elif isinstance(item, tuple) and item and isinstance(item[0], str):
        token = item[0]
    else:
        token = ""
    return Result(
        index, token, Outcome.FAILED, 0, None, None, None, None, 0, 0, 0.0, 0, str(error), False
    )


#: While a bulk job (send_many, send_to_tokens, stream) runs, or with at least this many
#: notifications outstanding, outcome wake-ups are collected for COALESCE_DELAY seconds before
#: draining; otherwise every outcome is delivered as soon as it arrives (single sends stay as
#: fast as they can be). The job condition covers a rate-limited bulk send, which keeps few
#: outstanding: at 70,000/s it woke per handful of outcomes, 2x the Python CPU.
COALESCE_OUTSTANDING = 1000
COALESCE_DELAY = 0.001


class Dispatcher:
    def __init__(
        self,
        engine: _core.Engine,
        pool: int,
        loop: asyncio.AbstractEventLoop,
        before_submit: Callable[[], None],
        auth_retry: AuthRetry,
        on_auth_rejected: FixAuth,
        retry: RetryPolicy = NO_RETRY,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self.loop = loop
        self._before_submit = before_submit
        self._auth_retry = auth_retry
        self._on_auth_rejected = on_auth_rejected
        #: ids already resent once after an auth rejection
        self._auth_retried: set[int] = set()
        self._retry = retry
        self._limiter = limiter
        #: id -> engine submissions so far, for notifications being resent after 429/5xx
        self._resends: dict[int, int] = {}
        #: id -> (timer, last outcome) of notifications waiting for their resend
        self._waiting_resend: dict[int, tuple[asyncio.TimerHandle, OutcomeRecord]] = {}
        self._jobs: dict[int, Any] = {}
        self._job_ids = itertools.count(1)
        # Single sends in flight: id -> waiter, which holds the notification (for a resend).
        # No tuple or second dict per send: an object that lives as long as the send does is
        # work for the garbage collector, which 20k tasks awaiting send() feel.
        self._singles: dict[int, Waiter[Result]] = {}
        #: the pool of each :meth:`call` in flight (channel management, OAuth), for a resend
        self._call_pools: dict[int, int] = {}
        self._next_single = 0
        #: single sends queued for the next flush (each waiter holds its notification)
        self._pending: collections.deque[Waiter[Result]] = collections.deque()
        self._flush_scheduled = False
        self._capacity_waiters: list[asyncio.Future[None]] = []
        self._detached = False
        self._coalescing: asyncio.TimerHandle | None = None
        self._fd = engine.fileno()
        loop.add_reader(self._fd, self._on_readable)

    def busy(self) -> bool:
        """Whether anything sent through this dispatcher still waits for its outcome."""
        return bool(self._singles or self._jobs or self._pending or self._waiting_resend)

    # -- outcome delivery -------------------------------------------------------------------

    def _on_readable(self) -> None:
        if self._jobs or self._engine.outstanding() >= COALESCE_OUTSTANDING:
            # A bulk send: the engine completes a few streams per connection turn, and waking
            # for each handful cost a wake-up, a drain and a socket read per ~8 outcomes.
            # Collecting for a moment first makes the batches large (the answers keep coming
            # meanwhile, so throughput does not drop; latency grows by at most the delay).
            self.loop.remove_reader(self._fd)
            self._coalescing = self.loop.call_later(COALESCE_DELAY, self._coalesced)
            return
        self._drain()

    def _coalesced(self) -> None:
        self._coalescing = None
        if self._detached:
            return
        self.loop.add_reader(self._fd, self._on_readable)
        self._drain()

    def _drain(self) -> None:
        self.deliver(self._engine.drain())
        if self._pending:
            self._flush_singles()
        waiters, self._capacity_waiters = self._capacity_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def deliver(self, batch: list[OutcomeRecord]) -> None:
        resend: list[OutcomeRecord] = []
        retried = self._auth_retried
        auth_retry = self._auth_retry
        retry_statuses = self._retry.statuses
        route = self._route
        for record in batch:
            rid = record[ID]
            status = record[STATUS]
            reason = record[REASON]
            if reason is not None and (status, reason) in auth_retry and rid not in retried:
                resend.append(record)
                continue
            if retried:
                retried.discard(rid)
            if status in retry_statuses and record[OUTCOME] == "rejected":
                final = self._maybe_resend_later(record)
                if final is None:
                    continue
                record = final
            elif self._resends:
                record = self._count_attempts(record)
            route(record)
        if resend:
            self._resend_after_auth(resend)

    def _maybe_resend_later(self, record: OutcomeRecord) -> OutcomeRecord | None:
        """Schedule a resend after the delay the policy (or Retry-After) asks for; None when
        scheduled. When the policy gives up, the result becomes ``failed`` with the last
        status and reason."""
        rid = record[ID]
        status, reason = record[STATUS], record[REASON]
        submissions = self._resends.get(rid, 1)
        if self._retry.should_retry(status, submissions):
            delay = self._retry.delay(submissions, reason, record[RETRY_AFTER])
            if delay is not None:
                self._resends[rid] = submissions + 1
                timer = self.loop.call_later(delay, self._resend_one, record)
                self._waiting_resend[rid] = (timer, record)
                return None
        if self._retry.max_attempts <= 1:
            return record
        record = self._count_attempts(record)
        why = f"gave up after {submissions} sends: {status} {reason or ''}".rstrip()
        return replace_fields(record, outcome="failed", error=why, maybe_delivered=False)

    def _count_attempts(self, record: OutcomeRecord) -> OutcomeRecord:
        """Add the earlier sends of a resent notification to its ``attempts``."""
        earlier = self._resends.pop(record[ID], 1) - 1
        if earlier:
            record = replace_fields(record, attempts=record[ATTEMPTS] + earlier)
        return record

    def _resend_one(self, record: OutcomeRecord) -> None:
        self._waiting_resend.pop(record[ID], None)
        if self._engine.closed:
            self._route(self._count_attempts(record))
            return
        self._resend([record])

    def _route(self, record: OutcomeRecord) -> None:
        rid = record[ID]
        job_id = rid >> _INDEX_BITS
        if job_id == 0:
            waiter = self._singles.pop(rid, None)
            if self._call_pools:
                self._call_pools.pop(rid, None)
            if waiter is not None:
                # Resumes the waiting task now when no task is running (the reader callback);
                # a waiter its task cancelled takes nothing.
                waiter.resume(result_from_record(record, 0))
        else:
            job = self._jobs.get(job_id)
            if job is not None:
                job.on_result(record, rid & _INDEX_MASK)

    def _resend_after_auth(self, records: list[OutcomeRecord]) -> None:
        """Fix the credential once (new JWT, new access token, fresh connections), then resend
        each notification once; a second auth rejection is reported as the result."""
        fixing = self._on_auth_rejected(records)
        if fixing is None:
            self._auth_retried.update(self._resend(records))
        else:
            self.loop.create_task(self._resend_when_fixed(fixing, records))

    async def _resend_when_fixed(
        self, fixing: Awaitable[None], records: list[OutcomeRecord]
    ) -> None:
        try:
            await fixing
        except BaseException as e:
            # Whatever broke the fix (an error, a cancellation), each notification keeps its
            # one outcome: the rejection it got.
            for record in records:
                self._route(record)
            if not isinstance(e, Exception):
                raise
            return
        self._auth_retried.update(self._resend(records))

    def _resend(self, records: list[OutcomeRecord]) -> list[int]:
        """Submit the notifications behind ``records`` again under the same ids; returns the
        ids resent (the others are reported as they are)."""
        resent = []
        for record in records:
            rid = record[ID]
            job_id = rid >> _INDEX_BITS
            try:
                if job_id == 0:
                    item, template = self._singles[rid].item, None
                else:
                    item, template = self._jobs[job_id].item(rid & _INDEX_MASK)
                pool = self._call_pools.get(rid)
                if pool is None:
                    self._submit(rid, [item], template)
                else:
                    self._before_submit()
                    self._engine.submit(pool, rid, [item])
            except (KeyError, PushwireError):
                self._route(record)  # the caller is gone or the client closed: report as is
                continue
            resent.append(rid)
        return resent

    async def call(self, pool: int, item: Any) -> Result:
        """One request on another pool of the same engine (e.g. the OAuth token endpoint)."""
        waiter: Waiter[Result] = Waiter(self.loop, item)
        rid = self._single_ids(1)
        self._singles[rid] = waiter
        self._call_pools[rid] = pool
        try:
            self._engine.submit(pool, rid, [item])
        except BaseException:
            del self._singles[rid]
            del self._call_pools[rid]
            raise
        return await waiter

    async def _wait_capacity(self) -> None:
        if self._engine.closed:
            raise ClientClosedError("the client was closed")
        fut: asyncio.Future[None] = self.loop.create_future()
        self._capacity_waiters.append(fut)
        await fut

    def _submit(self, first_id: int, items: list[Any], template: Any = None) -> None:
        """Hand items (or, with ``template``, tokens) to the engine under consecutive ids."""
        self._before_submit()
        if template is None:
            self._engine.submit(self._pool, first_id, items)
        else:
            self._engine.submit_tokens(self._pool, first_id, template, items)
        if self._limiter is not None:
            self._limiter.take(len(items))

    def _room(self) -> int:
        """How many notifications may be submitted now (in-flight window and rate limit)."""
        room = min(self._engine.capacity(), _MAX_CHUNK)
        if self._limiter is not None:
            room = min(room, self._limiter.available())
        return room

    def _rate_limited_for(self) -> float | None:
        """Seconds until the rate limit lets another notification go, when it is what blocks."""
        if self._limiter is None or self._limiter.available() > 0:
            return None
        return self._limiter.wait_time()

    async def _wait_room(self) -> None:
        wait = self._rate_limited_for()
        if wait is not None:
            await asyncio.sleep(wait)
        else:
            await self._wait_capacity()

    # -- single sends (coalesced: one engine call per loop iteration) ------------------------

    async def send_one(self, item: Any) -> Result:
        return await self.queue_one(item)

    def queue_one(self, item: Any) -> Waiter[Result]:
        """Queue one notification for the next flush; its waiter gets the Result, or the
        PayloadError that refused it. Validation happens in the flush's one engine call
        (all of a batch is checked before any is queued), not in one call per send."""
        waiter: Waiter[Result] = Waiter(self.loop, item)
        self._pending.append(waiter)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_singles)
        return waiter

    def _single_ids(self, n: int) -> int:
        """The first of ``n`` consecutive ids for job 0 (single sends), kept below 2**32."""
        first = self._next_single
        if first + n > _INDEX_MASK:
            first = 0
        self._next_single = first + n
        return first

    def _flush_singles(self) -> None:
        self._flush_scheduled = False
        pending = self._pending
        while pending and pending[0].done():  # cancelled before sending: never sent
            pending.popleft()
        room = min(self._room(), len(pending))
        if room == 0:
            wait = self._rate_limited_for()
            if wait is not None and pending:
                self._flush_scheduled = True
                self.loop.call_later(wait, self._flush_singles)
            return  # otherwise the next outcome batch frees room and calls us again
        batch = []
        for _ in range(room):
            waiter = pending.popleft()
            if not waiter.done():
                batch.append(waiter)
        while batch:
            first = self._single_ids(len(batch))
            ids = range(first, first + len(batch))
            self._singles.update(zip(ids, batch, strict=True))
            try:
                self._submit(first, [waiter.item for waiter in batch])
                break
            except Exception as e:
                for rid in ids:
                    self._singles.pop(rid, None)
                if isinstance(e, PayloadError) and e.index is not None:
                    # One bad notification: its caller gets the error, the rest go on.
                    bad = batch.pop(e.index)
                    bad.set_exception(self._refusal(bad.item, e))
                    continue
                for waiter in batch:  # closed client: every waiting caller learns it
                    waiter.set_exception(e)
                break
        if pending and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_singles)

    def _refusal(self, item: Any, error: PayloadError) -> Exception:
        """The error ``send(item)`` raises: the engine's own words about this one notification
        alone (the batch it was flushed with is no business of its caller)."""
        try:
            self._engine.validate([item])
        except PayloadError as alone:
            return alone
        return error

    # -- batches ----------------------------------------------------------------------------

    async def send_list(self, items: list[Any], *, tokens_of: Any = None) -> Results:
        """Send every item; results in input order. ``tokens_of`` = template for a token list."""
        if not items:
            return Results()
        job = _ListJob(items, tokens_of, self.loop.create_future())
        await self._run_list(job)
        return job.future.result()

    async def send_list_report(self, items: list[Any], *, tokens_of: Any = None) -> BulkReport:
        """As :meth:`send_list`, the delivered counted into a :class:`BulkReport`."""
        if not items:
            return BulkReport()
        job = _ListReportJob(items, tokens_of, self.loop.create_future())
        await self._run_list(job)
        return job.future.result()

    async def _run_list(self, job: _ListJob | _ListReportJob) -> None:
        """Submit a list job's items as the window allows, then wait for all its outcomes."""
        items, tokens_of = job.items, job.tokens_of
        n = len(items)
        if n > _INDEX_MASK:
            raise PayloadError(f"batch of {n} notifications is too large; use stream()")
        if tokens_of is None:
            self._engine.validate(items)
        else:
            self._engine.validate_tokens(tokens_of, items)
        job_id = next(self._job_ids)
        self._jobs[job_id] = job
        try:
            offset = 0
            while offset < n:
                room = self._room()
                if room == 0:
                    if self._engine.closed:
                        break  # closed mid-send: detach() reports the rest as not sent
                    await self._wait_room()
                    continue
                chunk = items[offset : offset + room]
                self._submit((job_id << _INDEX_BITS) | offset, chunk, tokens_of)
                offset += len(chunk)
            await job.future
        finally:
            del self._jobs[job_id]

    async def stream(
        self, items: Iterable[Any], *, strict: bool, report: BulkReport | None = None
    ) -> AsyncIterator[Result]:
        """Send items as capacity allows; yield results as they complete (``index`` = position).

        With ``report``, delivered outcomes are counted into it and only the others yielded.
        A notification refused locally yields a ``failed`` result (or raises with ``strict``).
        If the client is closed meanwhile, reading stops, the results of everything submitted
        are still yielded, then :class:`ClientClosedError` says the input was not all read.
        """
        job_id = next(self._job_ids)
        job = _StreamJob(report)
        self._jobs[job_id] = job
        source = iter(items)
        submitted = received = 0
        exhausted = closed_early = False
        try:
            while True:
                if self._engine.closed and not exhausted:
                    exhausted = closed_early = True  # read no more; keep collecting results
                while not exhausted:
                    room = self._room()
                    if room == 0:
                        wait = self._rate_limited_for()
                        if wait is not None:
                            self.loop.call_later(wait, job.wake)
                        break
                    chunk = list(itertools.islice(source, room))
                    if not chunk:
                        exhausted = True
                        break
                    if submitted + len(chunk) > _INDEX_MASK:
                        raise PayloadError("stream longer than 2**32 notifications")
                    submitted = self._submit_stream_chunk(job_id, job, submitted, chunk, strict)
                while job.ready:
                    received += 1
                    yield job.ready.popleft()
                if exhausted and received + job.counted == submitted:
                    if closed_early:
                        raise ClientClosedError(
                            f"the client was closed during the stream: {submitted} notifications "
                            "were submitted and have their results; the rest of the input was "
                            "not read"
                        )
                    return
                if self._detached:
                    # Every submitted notification got its outcome before detach; a gap here
                    # means the engine could not report one.
                    raise ClientClosedError("the client was closed during the stream")
                job.waiter = self.loop.create_future()
                self._capacity_waiters.append(job.waiter)
                await job.waiter
                job.waiter = None
        finally:
            del self._jobs[job_id]

    async def stream_report(
        self, items: Iterable[Any], *, strict: bool, message_ids: bool = True
    ) -> BulkReport:
        """:meth:`stream` into a :class:`BulkReport`: memory bounded by the in-flight window
        plus the report (a few bytes per delivered notification; one without its id)."""
        report = BulkReport(keep_message_ids=message_ids)
        try:
            async for result in self.stream(items, strict=strict, report=report):
                report._add_problem(result)
        except ClientClosedError as e:
            raise SendInterruptedError(str(e), report) from None
        return report

    def _submit_stream_chunk(
        self, job_id: int, job: _StreamJob, offset: int, chunk: list[Any], strict: bool
    ) -> int:
        """Submit a chunk; items refused locally become failed results. Returns the new offset."""
        while chunk:
            try:
                self._submit((job_id << _INDEX_BITS) | offset, chunk)
                job.add_chunk(offset, chunk)
                return offset + len(chunk)
            except PayloadError as e:
                if strict or e.index is None:
                    raise
                bad = e.index
                if bad:
                    self._submit((job_id << _INDEX_BITS) | offset, chunk[:bad])
                    job.add_chunk(offset, chunk[:bad])
                job.ready.append(local_failure(chunk[bad], offset + bad, e))
                offset += bad + 1
                chunk = chunk[bad + 1 :]
        return offset

    # -- shutdown ---------------------------------------------------------------------------

    def detach(self) -> None:
        """Deliver what is left and stop listening; unanswered waiters learn the client closed."""
        self._detached = True
        if self._coalescing is not None:
            self._coalescing.cancel()
            self._coalescing = None
        self.deliver(self._engine.drain())
        # Closed before their resend: their last answer is their result.
        for timer, record in list(self._waiting_resend.values()):
            timer.cancel()
            self._route(self._count_attempts(record))
        self._waiting_resend.clear()
        self.loop.remove_reader(self._fd)  # harmless when already removed (coalescing)
        closed = ClientClosedError("the client was closed before this notification had an outcome")
        for waiter in [*self._singles.values(), *self._pending]:
            if not waiter.done():
                waiter.set_exception(closed)
        self._singles.clear()
        self._call_pools.clear()
        self._pending.clear()
        for job in self._jobs.values():
            if isinstance(job, (_ListJob, _ListReportJob)) and not job.future.done():
                job.fail_missing("not sent: the client was closed")
            elif isinstance(job, _StreamJob):
                job.wake()
        for w in self._capacity_waiters:
            if not w.done():
                w.set_result(None)
        self._capacity_waiters.clear()
