"""Running campaigns on the worker fleet: slots become jobs on a Redis stream of their own.

::

    scheduler = FleetScheduler(store, redis_url="redis://...", owner="sched-1")
    await scheduler.run(stop=stop_event)
    # workers for the campaign lane:  pushwire worker --stream pushwire:campaigns --db ...

* **One scheduler at a time** plans and dispatches: it holds a leader lease in Redis
  (``SET key owner NX PX``, renewed while it works; a dead leader's lease expires and another
  scheduler takes over). The database claim of each slot stays the rule that makes a slot run
  once, even if two schedulers believed they led.
* **A lower-priority lane**: campaign jobs go to ``pushwire:campaigns``, not to the stream of
  direct sends (``pushwire:jobs``), so a million-endpoint campaign never delays a
  transactional push; give the lane the workers you can spare.
* **Exactly once per (slot, endpoint)**: each page's send records are committed with state
  ``queued`` and their job id (unique per slot claim and page) BEFORE the job is enqueued. A
  scheduler killed between the two leaves records whose job does not exist in Redis: the one
  that resumes the slot enqueues exactly those, and skips jobs that exist. The workers then
  deliver each job at least once with a collapse id (see :mod:`pushwire.jobs`).
* **Outcomes come back**: once a slot's jobs are complete, their outcome records update the
  send records (``delivered``, ``rejected``...), which the KPIs read.

* **Cancel recalls**: a cancelled campaign's queued jobs are cancelled (see
  :meth:`pushwire.jobs.Queue.cancel`); chunks no worker has taken are recorded ``cancelled``,
  never sent.

The send-rate cap paces the enqueueing (workers take jobs as they come).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..jobs.errors import JobExistsError, UnknownJobError
from ..jobs.keys import DEFAULT_PREFIX, check_name
from ..jobs.model import CANCELLED_REASON
from ..jobs.queue import Queue
from ..store.backend import Connection
from ..store.segments import has_enabled_endpoints, selected_applications
from .scheduler import DEFAULT_LEASE_SECONDS, Scheduler
from .sending import RateLimiter, SlotReport, SlotSender, treatment_message

if TYPE_CHECKING:
    from ..store.store import Store

log = logging.getLogger("pushwire.campaigns")

#: The campaign lane: a stream of its own, below direct sends.
DEFAULT_CAMPAIGN_STREAM = "pushwire:campaigns"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLease:
    """``key`` names the leader; it expires unless renewed."""

    def __init__(self, redis: Any, key: str, owner: str, lease_ms: int) -> None:
        self._redis = redis
        self.key = key
        self.owner = owner
        self._lease_ms = lease_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Take the lease or renew ours; whether we lead."""
        if await self._renew(keys=[self.key], args=[self.owner, self._lease_ms]):
            return True
        return bool(await self._redis.set(self.key, self.owner, nx=True, px=self._lease_ms))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])


class _FleetSlot(SlotSender):
    """Dispatches one claimed slot as jobs instead of sending it."""

    queue: Queue
    lease: LeaderLease

    async def run(self) -> SlotReport:
        db = self._db
        campaign = self.campaign
        apps = db.read(
            lambda c: [
                a
                for a in selected_applications(c, campaign.segment)
                if has_enabled_endpoints(c, db, a, campaign.segment)
            ]
        )
        messages = [
            treatment_message(campaign, self.slot_id, n) for n in range(len(campaign.treatments))
        ]
        for message in messages:  # checked for every provider before anything is queued
            for app in apps:
                message.render(app)
        if self.attempts > 1:
            await self._enqueue_missing(messages)
        limiter = RateLimiter(campaign.rate_per_second) if campaign.rate_per_second else None
        for app in apps:
            for page in self._pages(app):
                if not self._renew() or not await self.lease.hold():
                    self._stop = self._stop or "lost"
                    break
                queued = self._record_page(app, page, state="queued")
                if not queued:
                    continue
                by_treatment: dict[int, list[str]] = {}
                for _, token, number in queued:
                    by_treatment.setdefault(number, []).append(token)
                first = page[0][0]
                for number, tokens in sorted(by_treatment.items()):
                    if limiter is not None:
                        await limiter.take(len(tokens))
                    await self._enqueue(
                        self.job_id(first, number), app.name, tokens, messages[number]
                    )
                    self.outcome.sent += len(tokens)
                    self.outcome.by_treatment[number] = self.outcome.by_treatment.get(
                        number, 0
                    ) + len(tokens)
            if self._stop is not None:
                break
        stop = self._stop
        if stop == "cancelled" and self.outcome.sent:
            # Jobs went out before the cancel: the slot is collected like any dispatched one
            # (recall_cancelled stops what no worker has taken yet).
            stop = None
        self.outcome.state = stop or "dispatched"
        return self.outcome

    async def _enqueue(self, job: str, app: str, tokens: list[str], message: Any) -> None:
        try:
            await self.queue.enqueue(app, tokens, message, job_id=job)
        except JobExistsError:
            status = await self.queue.status(job)
            if status.state != "enqueuing" or status.total:
                return  # enqueued before: the workers have it
            # Killed between creating the job and writing its one chunk: write it again.
            await self.queue._redis.delete(self.queue.keys.job(job))
            await self.queue.enqueue(app, tokens, message, job_id=job)

    async def _enqueue_missing(self, messages: list[Any]) -> None:
        """Jobs whose records were committed but that never reached Redis (the previous
        holder died in between): enqueue exactly those."""
        rows = self._db.read(
            lambda c: c.query(
                "SELECT s.job, a.name, s.treatment, e.token FROM campaign_sends s "
                "JOIN endpoints e ON e.id = s.endpoint_id "
                "JOIN applications a ON a.id = s.application_id "
                "WHERE s.slot_id = ? AND s.state = 'queued' ORDER BY s.job, s.endpoint_id",
                (self.slot_id,),
            )
        )
        jobs: dict[str, tuple[str, int, list[str]]] = {}
        for job, app, number, token in rows:
            jobs.setdefault(job, (app, int(number), []))[2].append(token)
        resent = 0
        for job, (app, number, tokens) in jobs.items():
            try:
                status = await self.queue.status(job)
            except UnknownJobError:
                status = None
            if status is not None and (status.state != "enqueuing" or status.total):
                continue
            await self._enqueue(job, app, tokens, messages[number])
            resent += len(tokens)
        if resent:
            log.warning(
                "slot %s resumed: %d recorded notifications had not reached the queue; "
                "enqueued now",
                self.slot_id,
                resent,
            )


class FleetScheduler(Scheduler):
    """A :class:`~.scheduler.Scheduler` that turns slots into jobs on ``stream`` for the
    workers, under a leader lease in Redis (``{key_prefix}:campaigns:leader:{stream}``)."""

    def __init__(
        self,
        store: Store,
        *,
        redis_url: str,
        stream: str = DEFAULT_CAMPAIGN_STREAM,
        key_prefix: str = DEFAULT_PREFIX,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        page_size: int = 1000,
    ) -> None:
        super().__init__(
            store, clients={}, owner=owner, lease_seconds=lease_seconds, page_size=page_size
        )
        check_name(key_prefix, "key_prefix")
        self.queue = Queue(redis_url, stream=stream, chunk_size=max(page_size, 1))
        self.lease = LeaderLease(
            self.queue._redis,
            f"{key_prefix}:campaigns:leader:{stream}",
            self.owner,
            self.lease_ms,
        )

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.lease.release()
        await self.queue.aclose()

    def _sender(self, campaign: Any, slot: tuple[int, str, str, int]) -> SlotSender:
        sender = _FleetSlot(
            self._db,
            self.store._events,
            self.store._clock,
            campaign,
            slot,
            owner=self.owner,
            lease_ms=self.lease_ms,
            clients={},
            page_size=self.page_size,
            apply_batch=self.apply_batch,
        )
        sender.queue = self.queue
        sender.lease = self.lease
        return sender

    async def tick(self) -> list[SlotReport]:
        """As leader: plan, dispatch the due slots, collect the outcomes of dispatched ones,
        complete finished campaigns. Not the leader: nothing."""
        if not await self.lease.hold():
            return []
        self.plan()
        reports = []
        while (report := await self.run_slot()) is not None:
            reports.append(report)
        await self.recall_cancelled()
        await self.collect()
        self.complete_finished()
        return reports

    async def recall_cancelled(self) -> int:
        """Cancel the queued jobs of cancelled campaigns' dispatched slots: chunks no worker
        has taken are then recorded ``JobCancelled`` instead of sent. How many jobs."""
        jobs = [
            r[0]
            for r in self._db.read(
                lambda c: c.query(
                    "SELECT DISTINCT s.job FROM campaign_sends s "
                    "JOIN campaign_slots sl ON sl.id = s.slot_id "
                    "JOIN campaigns c ON c.id = sl.campaign_id "
                    "WHERE sl.state IN ('dispatched', 'cancelled') AND c.state = 'cancelled' "
                    "AND s.state = 'queued'"
                )
            )
        ]
        recalled = 0
        for job in jobs:
            try:
                status = await self.queue.status(job)
            except UnknownJobError:
                continue  # expired, or never written: collect() settles its records
            if status.cancelled_at is None and not status.complete:
                await self.queue.cancel(job)
                recalled += 1
        if recalled:
            log.info("recalled %d queued jobs of cancelled campaigns", recalled)
        return recalled

    async def collect(self) -> int:
        """Record the outcomes of dispatched slots whose jobs are complete; how many slots
        finished."""
        db = self._db
        # A slot paused mid-dispatch and then cancelled is 'cancelled' with jobs out: its
        # records are collected too.
        slots = db.read(
            lambda c: c.query(
                "SELECT id, campaign_id, zone, counts FROM campaign_slots sl "
                "WHERE state = 'dispatched' OR (state = 'cancelled' AND EXISTS ("
                "SELECT 1 FROM campaign_sends s WHERE s.slot_id = sl.id AND s.state = 'queued'"
                ")) ORDER BY id"
            )
        )
        finished = 0
        for slot_id, campaign_id, zone, counts in slots:
            if await self._collect_slot(
                int(slot_id), int(campaign_id), zone, db.json_value(counts)
            ):
                finished += 1
        return finished

    async def _collect_slot(
        self, slot_id: int, campaign_id: int, zone: str, counts: Mapping[str, int]
    ) -> bool:
        db = self._db
        jobs = [
            r[0]
            for r in db.read(
                lambda c: c.query(
                    "SELECT DISTINCT job FROM campaign_sends WHERE slot_id = ? "
                    "AND state = 'queued'",
                    (slot_id,),
                )
            )
        ]
        for job in jobs:
            try:
                status = await self.queue.status(job)
            except UnknownJobError:
                status = None
            if status is not None and not status.complete:
                return False
        delivered = disabled = recalled = 0
        for job in jobs:
            ids = dict(
                db.read(
                    lambda c, job=job: c.query(
                        "SELECT e.token, s.endpoint_id FROM campaign_sends s "
                        "JOIN endpoints e ON e.id = s.endpoint_id WHERE s.slot_id = ? "
                        "AND s.job = ?",
                        (slot_id, job),
                    )
                )
            )
            rows: list[tuple[Any, ...]] = []
            try:
                async for _, record in self.queue.outcomes(job):
                    eid = ids.pop(record.token, None)
                    if eid is None:
                        continue
                    dropped = record.action == "drop_token"
                    # Recalled before a worker took it (the campaign was cancelled): not sent.
                    state = "cancelled" if record.reason == CANCELLED_REASON else record.outcome
                    rows.append((state, dropped, slot_id, eid))
                    recalled += state == "cancelled"
                    delivered += record.outcome == "delivered"
                    disabled += dropped
            except UnknownJobError:
                pass
            # Records without an outcome (the job expired): they may have gone out.
            rows += [("in_doubt", False, slot_id, eid) for eid in ids.values()]
            db.write(
                lambda c, rows=rows: c.executemany(
                    "UPDATE campaign_sends SET state = ?, disabled = ? "
                    "WHERE slot_id = ? AND endpoint_id = ?",
                    rows,
                )
            )
        now = self._now()
        final = {**counts, "delivered": delivered, "tokens_disabled": disabled}
        if recalled:
            final["recalled"] = recalled

        def work(c: Connection) -> None:
            from .records import add_event

            c.execute(
                "UPDATE campaign_slots SET finished_at = ?, counts = ?, "
                "state = CASE WHEN state = 'dispatched' THEN 'done' ELSE state END "
                "WHERE id = ? AND state IN ('dispatched', 'cancelled')",
                (now, db.json_param(final), slot_id),
            )
            add_event(
                c,
                db,
                campaign_id,
                now=now,
                kind="slot_done",
                actor=self.owner,
                details={"slot": slot_id, "zone": zone, **final},
            )

        db.write(work)
        return True
