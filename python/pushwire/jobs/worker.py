"""The worker: reads job chunks from the stream as a member of a consumer group, sends them
through one engine client per application, records every notification's final outcome
exactly once, applies the results to the endpoint store, then acknowledges the chunk.

::

    worker = Worker(WorkerSettings(redis_url=..., stream=..., group=...),
                    store=Store.open("postgresql://..."), options=ClientOptions())
    await worker.run()          # until worker.stop() (SIGTERM in `pushwire worker`)

Several chunks are in progress at once (``prefetch``), each cut into slices that are sent as
soon as the in-flight window (``window`` notifications) has room, so one worker keeps its
HTTP/2 streams busy. Outcomes are recorded per slice: a worker that dies loses at most the
slices it had in flight, and only those are sent again by the worker that reclaims its
entries (:mod:`.recovery`).

Stopping (``stop()``, SIGTERM): no more entries are read or reclaimed; chunks in progress
finish (their notifications are sent, recorded and acknowledged) within ``shutdown_grace``
seconds; chunks still unfinished then stay pending for another worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._classify import BadTokenBurstDetector
from .._errors import ConfigurationError, CredentialsError, PayloadError
from .._results import Result
from ..store.errors import StoreError, UnknownApplicationError
from ..store.model import Application, Provider
from ..store.subscriptions import sendable
from .clients import AppClient, ClientFactory, ClientOptions, Rendered
from .connection import DEFAULT_REDIS_URL, client, display_url, redis_errors
from .errors import JobInputError, MalformedEntryError, QueueUnavailableError
from .keys import DEFAULT_GROUP, DEFAULT_PREFIX, DEFAULT_STREAM, Keys, check_name
from .metrics import WorkerMetrics
from .model import (
    CANCELLED_REASON,
    ChunkEntry,
    OutcomeRecord,
    decode_entry,
    default_consumer,
    excerpt,
    failed_record,
    record_of,
)
from .outcomes import OutcomeRecorder
from .queue import ensure_group
from .quota import Reservation, SharedQuota
from .recovery import keep_claimed, reclaim
from .shared_auth import SharedAuth

log = logging.getLogger("pushwire.jobs")

#: Dead-letter stream length cap (approximate trimming).
DEAD_LETTER_MAXLEN = 100_000
#: How long recording an outcome batch is retried while Redis is unreachable.
RECORD_RETRY_SECONDS = 60.0


@dataclass
class WorkerSettings:
    """Where the worker reads and how much it takes on. Every duration is in seconds."""

    redis_url: str = DEFAULT_REDIS_URL
    stream: str = DEFAULT_STREAM
    group: str = DEFAULT_GROUP
    consumer: str = field(default_factory=default_consumer)
    #: Prefix of the shared credential and rate-limit keys.
    key_prefix: str = DEFAULT_PREFIX
    #: Chunks in progress at once.
    prefetch: int = 4
    #: Notifications in flight at once (sent, outcome not yet recorded).
    window: int = 5000
    #: Notifications per engine call and per outcome record batch.
    slice_size: int = 500
    #: XREADGROUP block time: how soon a stop request is noticed while the queue is empty.
    block: float = 1.0
    #: Entries idle this long on another consumer are reclaimed (that worker is presumed dead).
    reclaim_idle: float = 60.0
    #: How often to look for such entries (default: a quarter of ``reclaim_idle``).
    reclaim_interval: float | None = None
    #: An entry delivered more often than this is dead-lettered (it kills its workers).
    max_deliveries: int = 5
    #: Also append every outcome record to ``STREAM:results`` (capped at this length; 0 = off).
    results_stream_maxlen: int = 0
    #: Apply results to the endpoint store (disable dead tokens, record events).
    apply_results: bool = True
    #: How often the worker publishes its metrics to Redis.
    metrics_interval: float = 1.0
    #: How long a stop waits for chunks in progress (default: request timeout + 10 s).
    shutdown_grace: float | None = None
    #: Share APNs JWTs and FCM access tokens through Redis.
    share_credentials: bool = True

    def check(self) -> None:
        Keys(self.stream)
        check_name(self.group, "group")
        check_name(self.consumer, "consumer")
        check_name(self.key_prefix, "key_prefix")
        for name in ("prefetch", "window", "slice_size", "max_deliveries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise JobInputError(f"{name} must be a positive integer", field=name)
        if self.slice_size > self.window:
            raise JobInputError("slice_size must not exceed window", field="slice_size")
        for name in ("block", "reclaim_idle", "metrics_interval"):
            if getattr(self, name) <= 0:
                raise JobInputError(f"{name} must be positive", field=name)
        if self.results_stream_maxlen < 0:
            raise JobInputError("results_stream_maxlen must be >= 0", field="results_stream")


class _Window:
    """Counting semaphore over notifications in flight."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, n: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + n <= self.size)
            self.used += n

    async def release(self, n: int) -> None:
        async with self._changed:
            self.used -= n
            self._changed.notify_all()


class Worker:
    """One worker process's loop. ``store`` (a :class:`pushwire.store.Store`) knows the
    applications and receives the results; ``options`` say how to reach the providers."""

    def __init__(
        self, settings: WorkerSettings, *, store: Any, options: ClientOptions | None = None
    ) -> None:
        settings.check()
        self.settings = settings
        self.options = options or ClientOptions()
        self.keys = Keys(settings.stream)
        self.metrics = WorkerMetrics()
        self._store = store
        # The store is synchronous: it runs on one thread of its own, off the event loop.
        self._store_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="pushwire-store"
        )
        self._stopping: asyncio.Event | None = None
        self._active: dict[bytes, asyncio.Task[None]] = {}
        self._detectors: dict[tuple[str, str], BadTokenBurstDetector] = {}
        self._redis: Any = None
        self._recorder: OutcomeRecorder | None = None
        self._clients: ClientFactory | None = None
        self._window = _Window(settings.window)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Worker({display_url(s.redis_url)!r}, stream={s.stream!r}, group={s.group!r}, "
            f"consumer={s.consumer!r})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading; finish the chunks in progress; then :meth:`run` returns."""
        if self._stopping is not None and not self._stopping.is_set():
            log.info("stopping: finishing %d chunks in progress", len(self._active))
            self._stopping.set()

    def abort(self) -> None:
        """Stop now: chunks in progress are abandoned (pending, for another worker)."""
        self.stop()
        for task in list(self._active.values()):
            task.cancel()

    async def run(self) -> dict[str, float]:
        """Work until :meth:`stop`; the final metrics. Raises :class:`QueueUnavailableError`
        if Redis cannot be reached at start."""
        s = self.settings
        self._stopping = asyncio.Event()
        redis = self._redis = client(s.redis_url)
        background: list[asyncio.Task[None]] = []
        try:
            with redis_errors(s.redis_url, "starting the worker"):
                await redis.ping()
                await ensure_group(redis, self.keys, s.group)
            self._recorder = OutcomeRecorder(
                redis, self.keys, results_maxlen=s.results_stream_maxlen
            )
            shared = SharedAuth(redis, s.key_prefix, s.consumer) if s.share_credentials else None
            self._clients = ClientFactory(
                self._application, self.options, redis=redis, prefix=s.key_prefix, shared=shared
            )
            log.info(
                "worker %s reading %s (group %s) at %s",
                s.consumer,
                s.stream,
                s.group,
                display_url(s.redis_url),
            )
            background = [
                asyncio.ensure_future(self._publish_loop()),
                asyncio.ensure_future(self._reclaim_loop()),
                asyncio.ensure_future(self._heartbeat_loop()),
            ]
            await self._read_loop()
            await self._drain()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self._count_clients()
            if self._clients is not None:
                await self._clients.aclose()
                self._clients = None
            with contextlib.suppress(Exception):
                await self._publish(final=True)
            await redis.aclose()
            self._store_thread.shutdown(wait=True)
        return self.metrics.snapshot()

    async def _wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if a stop was requested meanwhile."""
        assert self._stopping is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _drain(self) -> None:
        if not self._active:
            return
        grace = self.settings.shutdown_grace
        if grace is None:
            grace = self.options.request_timeout + 10.0
        _, pending = await asyncio.wait(list(self._active.values()), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning(
                "%d chunks unfinished after %.0f s: left pending for another worker",
                len(pending),
                grace,
            )

    # -- reading --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        import redis.exceptions as rex

        s = self.settings
        assert self._stopping is not None
        backoff = 0.5
        while not self._stopping.is_set():
            room = s.prefetch - len(self._active)
            if room <= 0:
                stop = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait(
                    [stop, *self._active.values()], return_when=asyncio.FIRST_COMPLETED
                )
                stop.cancel()
                continue
            try:
                reply = await self._redis.xreadgroup(
                    s.group,
                    s.consumer,
                    {self.keys.stream: ">"},
                    count=room,
                    block=int(s.block * 1000),
                )
                backoff = 0.5
            except rex.ResponseError as e:
                if "NOGROUP" in str(e):  # the stream was deleted: start over
                    await ensure_group(self._redis, self.keys, s.group)
                    continue
                raise QueueUnavailableError(f"reading {self.keys.stream}: {e}") from None
            except (rex.ConnectionError, rex.TimeoutError, OSError) as e:
                log.warning(
                    "Redis at %s unreachable (%s); retrying in %.1f s",
                    display_url(s.redis_url),
                    " ".join(str(e).split())[:200],
                    backoff,
                )
                await self._wait_stop(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._start(entry_id, fields, 1)

    def _start(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        if entry_id in self._active:
            return
        task = asyncio.ensure_future(self._process(entry_id, fields, deliveries))
        self._active[entry_id] = task

        def done(t: asyncio.Task[None]) -> None:
            self._active.pop(entry_id, None)
            if t.cancelled():
                return
            error = t.exception()
            if error is not None:
                self.metrics.chunk_errors += 1
                log.error(
                    "entry %s not finished (%s: %s): it stays pending and will be reclaimed",
                    entry_id.decode(),
                    type(error).__name__,
                    error,
                )

        task.add_done_callback(done)

    async def _reclaim_loop(self) -> None:
        s = self.settings
        interval = s.reclaim_interval or s.reclaim_idle / 4
        while not await self._wait_stop(interval):
            room = s.prefetch - len(self._active)
            if room <= 0:
                continue
            try:
                claimed = await reclaim(
                    self._redis,
                    self.keys,
                    s.group,
                    s.consumer,
                    min_idle=s.reclaim_idle,
                    count=room,
                )
            except Exception as e:
                log.warning("reclaiming idle entries failed: %s", e)
                continue
            for entry_id, fields, deliveries in claimed:
                if self._stopping is not None and self._stopping.is_set():
                    break  # claimed by us, idle again soon: another worker takes it
                self.metrics.reclaimed_entries += 1
                log.warning(
                    "reclaimed entry %s (idle over %.1f s on a worker presumed dead; delivery %d)",
                    entry_id.decode(),
                    s.reclaim_idle,
                    deliveries,
                )
                self._start(entry_id, fields, deliveries)

    async def _heartbeat_loop(self) -> None:
        s = self.settings
        while not await self._wait_stop(s.reclaim_idle / 3):
            await self._keep_claimed()
        # While draining, keep our entries ours until they are finished.
        while self._active:
            await self._keep_claimed()
            await asyncio.sleep(s.reclaim_idle / 3)

    async def _keep_claimed(self) -> None:
        try:
            await keep_claimed(
                self._redis, self.keys, self.settings.group, self.settings.consumer, self._active
            )
        except Exception as e:
            log.warning("could not renew claims on entries in progress: %s", e)

    # -- processing -----------------------------------------------------------------------

    async def _application(self, name: str) -> Application:
        loop = asyncio.get_running_loop()
        app: Application = await loop.run_in_executor(
            self._store_thread, self._store.application, name
        )
        return app

    async def _process(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        s = self.settings
        assert self._recorder is not None and self._clients is not None
        try:
            entry, chunk = decode_entry(fields)
        except MalformedEntryError as e:
            await self._dead_letter(entry_id, fields, str(e), None)
            await self._recorder.drop(s.group, entry_id)
            return
        if deliveries > s.max_deliveries:
            reason = (
                f"delivered {deliveries} times without being acknowledged: its workers died "
                "while sending it"
            )
            await self._give_up(entry_id, fields, entry, chunk, reason, "retry")
            return
        if await self._redis.hexists(self.keys.job(entry.job), "cancelled_at"):
            # Cancelled before this chunk ran: one outcome each, none sent.
            await self._record_unsent(
                entry, "not sent: the job was cancelled", "retry", CANCELLED_REASON
            )
            await self._recorder.finish(s.group, entry_id, entry.job, chunk)
            self.metrics.chunks_done += 1
            return
        try:
            app = await self._clients.get(entry.app)
            message = self._clients.message_for(app, entry.job, entry.message)
        except UnknownApplicationError as e:
            await self._give_up(entry_id, fields, entry, chunk, str(e), "fix_config")
            return
        except (CredentialsError, ConfigurationError) as e:
            reason = f"application {entry.app!r}: cannot build its client: {e}"
            await self._give_up(entry_id, fields, entry, chunk, reason, "fix_config")
            return
        except PayloadError as e:
            reason = f"the job's message cannot be sent to application {entry.app!r}: {e}"
            await self._give_up(entry_id, fields, entry, chunk, reason, "fix_payload")
            return
        offsets: Sequence[int] = range(len(entry.tokens))
        if deliveries > 1:
            offsets = await self._recorder.missing(entry.job, entry.first, len(entry.tokens))
            if offsets:
                self.metrics.resent += len(offsets)
                await self._redis.hincrby(self.keys.job(entry.job), "resent", len(offsets))
        size = s.slice_size
        slices = [offsets[i : i + size] for i in range(0, len(offsets), size)]
        sends: list[asyncio.Task[None]] = []
        try:
            for part in slices:
                await self._window.acquire(len(part))
                reservation = None
                if app.limiter is not None:
                    try:
                        reservation = await app.limiter.acquire(len(part))
                    except BaseException:
                        await self._window.release(len(part))
                        raise
                    self.metrics.rate_limit_wait += reservation.wait
                send = self._send(app, message, entry, part)
                if app.limiter is not None and reservation is not None:
                    send = _then_settle(send, app.limiter, reservation)
                sends.append(asyncio.ensure_future(send))
        except BaseException:
            for task in sends:
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
            raise
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        await self._recorder.finish(s.group, entry_id, entry.job, chunk)
        self.metrics.chunks_done += 1

    async def _send(
        self,
        app: AppClient,
        message: Rendered,
        entry: ChunkEntry,
        offsets: Sequence[int],
    ) -> None:
        """Send one slice, record its outcomes, apply them to the store; frees its room in
        the window whatever happens."""
        n = len(offsets)
        tokens: list[Any] = [entry.tokens[o] for o in offsets]
        self.metrics.sent(n)
        recorded = False
        try:
            if app.application.provider is Provider.WEBPUSH:
                # Subscriptions' keys are in the store, not in the job.
                tokens = await asyncio.get_running_loop().run_in_executor(
                    self._store_thread, sendable, self._store.database, app.application, tokens
                )
            try:
                results: Sequence[Result] = await app.client.send_to_tokens(
                    message,  # type: ignore[arg-type]
                    tokens,
                )
            except PayloadError:
                # A malformed token refuses the whole batch before anything is sent: send one
                # by one instead, the bad ones get a `failed` result of their own.
                results = sorted(
                    [
                        r
                        async for r in app.client.stream(
                            [(t, message, None) for t in tokens],  # type: ignore[misc]
                            strict=False,
                        )
                    ],
                    key=lambda r: r.index,
                )
            consumer = self.settings.consumer
            records = [(entry.first + offsets[r.index], record_of(r, consumer)) for r in results]
            await self._record(entry.job, records)
            recorded = True
            self.metrics.recorded(results, n)
        finally:
            if not recorded:
                self.metrics.forget(n)
            await self._window.release(n)
        if self.settings.apply_results:
            await self._apply(app.application, entry.job, results)

    async def _record(self, job: str, records: list[tuple[int, OutcomeRecord]]) -> None:
        """Record outcomes, retrying while Redis is unreachable (the results are only here)."""
        import redis.exceptions as rex

        assert self._recorder is not None
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        delay = 0.2
        while True:
            try:
                _new, duplicates = await self._recorder.record(job, records)
                self.metrics.duplicate_records += duplicates
                return
            except (rex.ConnectionError, rex.TimeoutError, OSError) as e:
                if time.monotonic() + delay > deadline:
                    raise QueueUnavailableError(
                        f"cannot record {len(records)} outcomes of job {job}: Redis "
                        f"unreachable for {RECORD_RETRY_SECONDS:.0f} s ({e})"
                    ) from None
                log.warning("recording outcomes failed (%s); retrying in %.1f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply(self, application: Application, job: str, results: Sequence[Result]) -> None:
        key = (job, application.name)
        detector = self._detectors.get(key)
        if detector is None:
            detector = self._detectors[key] = BadTokenBurstDetector()
            if len(self._detectors) > 1000:
                self._detectors.pop(next(iter(self._detectors)))
        loop = asyncio.get_running_loop()

        def work() -> None:
            self._store.apply_results(
                application.name, results, detector=detector, cause=f"job:{job}"
            )

        try:
            await loop.run_in_executor(self._store_thread, work)
        except StoreError as e:
            log.error(
                "job %s: %d results not applied to the store (tokens to disable stay enabled; "
                "their outcomes are recorded in Redis): %s",
                job,
                len(results),
                e,
            )

    async def _give_up(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        entry: ChunkEntry,
        chunk: int,
        reason: str,
        action: str,
    ) -> None:
        """Dead-letter a well-formed entry that cannot be sent; its notifications without an
        outcome are recorded ``failed`` (never sent) so the job completes."""
        assert self._recorder is not None
        await self._dead_letter(entry_id, fields, reason, entry.job)
        await self._record_unsent(entry, f"not sent: {reason}", action)
        await self._redis.hincrby(self.keys.job(entry.job), "dead_lettered", 1)
        await self._recorder.finish(self.settings.group, entry_id, entry.job, chunk)

    async def _record_unsent(
        self, entry: ChunkEntry, error: str, action: str, reason: str | None = None
    ) -> None:
        """Record ``failed`` (never sent) for the chunk's notifications without an outcome."""
        assert self._recorder is not None
        offsets = await self._recorder.missing(entry.job, entry.first, len(entry.tokens))
        consumer = self.settings.consumer
        records = [
            (entry.first + o, failed_record(entry.tokens[o], error, consumer, action, reason))
            for o in offsets
        ]
        for i in range(0, len(records), self.settings.slice_size):
            await self._record(entry.job, records[i : i + self.settings.slice_size])

    async def _dead_letter(
        self, entry_id: bytes, fields: dict[bytes, bytes], reason: str, job: str | None
    ) -> None:
        self.metrics.dead_lettered += 1
        log.error("entry %s dead-lettered: %s", entry_id.decode(), reason)
        await self._redis.xadd(
            self.keys.dead,
            {
                "entry": entry_id,
                "reason": reason[:2000],
                "job": job or "",
                "consumer": self.settings.consumer,
                "at": repr(time.time()),
                "fields": excerpt(fields),
            },
            maxlen=DEAD_LETTER_MAXLEN,
            approximate=True,
        )

    # -- metrics --------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while not await self._wait_stop(self.settings.metrics_interval):
            try:
                await self._publish()
            except Exception as e:
                log.warning("could not publish metrics: %s", e)
        while self._active:  # keep publishing while draining
            await asyncio.sleep(self.settings.metrics_interval)
            with contextlib.suppress(Exception):
                await self._publish()

    def _count_clients(self) -> None:
        if self._clients is not None:
            mints, grants, engine = self._clients.counters()
            self.metrics.jwt_mints, self.metrics.fcm_token_grants = mints, grants
            self.metrics.engine = engine

    async def _publish(self, *, final: bool = False) -> None:
        self._count_clients()
        snapshot: dict[str, Any] = self.metrics.snapshot()
        snapshot["pid"] = os.getpid()
        snapshot["stopped"] = int(final)
        snapshot["published_at"] = round(time.time(), 3)
        key = self.keys.worker(self.settings.consumer)
        ttl = 60.0 if final else max(30.0, 5 * self.settings.metrics_interval)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping=snapshot)
        pipe.pexpire(key, int(ttl * 1000))
        await pipe.execute()


async def _then_settle(
    send: Coroutine[Any, Any, None], quota: SharedQuota, reservation: Reservation
) -> None:
    """Run ``send``; then its messages count in the project's quota window from now (they
    surely reached FCM by their answers), also when the send failed part way."""
    try:
        await send
    finally:
        with contextlib.suppress(Exception):
            await quota.settle(reservation)


__all__ = ["Worker", "WorkerSettings"]
