"""The scheduler: plans due slots, claims them one at a time, runs them, completes campaigns.

::

    scheduler = store.campaigns.scheduler(clients={"ios": apns, "android": fcm})
    reports = await scheduler.tick()          # what is due now
    await scheduler.run(stop=stop_event)      # tick every second until stopped

Any number of schedulers may run against one store: a slot is claimed by one conditional
``UPDATE ... RETURNING`` (``pending``, or ``running`` with an expired lease), so exactly one
of them runs it; the holder renews its lease as it goes, and a scheduler that dies leaves a
lease that expires, after which another one (or itself, restarted) resumes the slot where the
send records say it stopped (:mod:`.sending`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._client import AnyPushClient
from ..store.backend import Connection
from ..store.errors import StoreInputError
from .model import ACTIVE, State
from .planning import plan, segment_zones
from .records import CAMPAIGN_COLUMNS, add_event, campaign_from_row, find_campaign, transition
from .schedule import last_moment_ms, to_ms
from .sending import SlotReport, SlotSender

if TYPE_CHECKING:
    from ..store.store import Store

log = logging.getLogger("pushwire.campaigns")

DEFAULT_LEASE_SECONDS = 30.0
#: How long the zones of a local-time campaign (a DISTINCT over its segment) are reused.
ZONE_REFRESH_MS = 5 * 60_000

_CLAIM = (
    "UPDATE campaign_slots SET state = 'running', owner = ?, lease_until = ?, "
    "attempts = attempts + 1, started_at = COALESCE(started_at, ?) "
    "WHERE id IN (SELECT s.id FROM campaign_slots s JOIN campaigns c ON c.id = s.campaign_id "
    "WHERE c.state IN ('scheduled', 'running') AND ((s.state = 'pending' AND s.due_at <= ?) "
    "OR (s.state = 'running' AND s.lease_until < ?)) ORDER BY s.due_at, s.id LIMIT 1) "
    "AND (state = 'pending' OR (state = 'running' AND lease_until < ?)) "
    "RETURNING id, campaign_id, zone, occurrence, attempts"
)


def default_owner() -> str:
    host = os.uname().nodename.split(".")[0] or "scheduler"
    return f"scheduler:{host}-{os.getpid()}"


class Scheduler:
    """Runs the due slots of every active campaign of ``store`` through ``clients``
    (application name -> client, as :meth:`Store.send_to_segment` takes)."""

    def __init__(
        self,
        store: Store,
        *,
        clients: Mapping[str, AnyPushClient],
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        page_size: int = 2000,
        apply_batch: int = 2000,
    ) -> None:
        if not isinstance(lease_seconds, (int, float)) or lease_seconds <= 0:
            raise StoreInputError("lease_seconds must be positive", field="lease_seconds")
        if page_size < 1 or apply_batch < 1:
            raise StoreInputError("page_size and apply_batch must be positive", field="page_size")
        self.store = store
        self.clients = clients
        self.owner = owner or default_owner()
        self.lease_ms = int(lease_seconds * 1000)
        self.page_size = page_size
        self.apply_batch = apply_batch
        self._zones: dict[int, tuple[int, list[str]]] = {}

    def __repr__(self) -> str:
        return f"Scheduler({self.store!r}, owner={self.owner!r})"

    @property
    def _db(self) -> Any:
        return self.store.database

    def _now(self) -> int:
        return self.store._clock()

    def plan(self) -> int:
        """Insert the slots due now; how many were new."""
        now = self._now()
        rows = self._db.read(
            lambda c: c.query(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE state IN (?, ?) ORDER BY id",
                [s.value for s in ACTIVE],
            )
        )
        new = 0
        for row in rows:
            campaign = campaign_from_row(self._db, row)
            new += plan(self._db, campaign, now, self._zones_of(campaign, now))
        return new

    def _zones_of(self, campaign: Any, now: int) -> list[str] | None:
        """A zoned campaign's zones, read again every few minutes, not every tick."""
        if not campaign.zoned:
            return None
        cached = self._zones.get(campaign.id)
        if cached is None or now - cached[0] >= ZONE_REFRESH_MS or now < cached[0]:
            zones = self._db.read(lambda c: segment_zones(c, self._db, campaign))
            cached = self._zones[campaign.id] = (now, zones)
        return cached[1]

    def _claim(self) -> tuple[Any, tuple[int, str, str, int]] | None:
        now = self._now()
        db = self._db

        def work(c: Connection) -> tuple[Any, tuple[int, str, str, int]] | None:
            rows = c.query(_CLAIM, (self.owner, now + self.lease_ms, now, now, now, now))
            if not rows:
                return None
            slot_id, campaign_id, zone, occurrence, attempts = rows[0]
            campaign = find_campaign(c, db, int(campaign_id), lock=True)
            if campaign.state is State.SCHEDULED:
                transition(c, db, campaign, State.RUNNING, now=now, actor=self.owner)
            add_event(
                c,
                db,
                campaign.id,
                now=now,
                kind="slot_started" if attempts == 1 else "slot_resumed",
                actor=self.owner,
                details={"slot": slot_id, "zone": zone, "occurrence": occurrence},
            )
            return campaign, (int(slot_id), zone, occurrence, int(attempts))

        claimed: tuple[Any, tuple[int, str, str, int]] | None = db.write(work)
        return claimed

    def _finish(self, report: SlotReport) -> None:
        now = self._now()
        db = self._db
        state = {
            "done": "done",
            "dispatched": "dispatched",
            "paused": "pending",
            "cancelled": "cancelled",
        }.get(report.state)

        def work(c: Connection) -> None:
            if state is None:  # lost the lease: the new holder finishes the slot
                return
            c.execute(
                "UPDATE campaign_slots SET state = ?, owner = NULL, lease_until = NULL, "
                "finished_at = ?, counts = ? WHERE id = ? AND owner = ?",
                (
                    state,
                    now if state in ("done", "cancelled") else None,
                    db.json_param(report.counts()),
                    report.slot_id,
                    self.owner,
                ),
            )
            add_event(
                c,
                db,
                report.campaign_id,
                now=now,
                kind=f"slot_{report.state}",
                actor=self.owner,
                details={"slot": report.slot_id, "zone": report.zone, **report.counts()},
            )

        db.write(work)

    def _release(self, slot_id: int) -> None:
        self._db.write(
            lambda c: c.execute(
                "UPDATE campaign_slots SET state = 'pending', owner = NULL, lease_until = NULL "
                "WHERE id = ? AND owner = ?",
                (slot_id, self.owner),
            )
        )

    def complete_finished(self) -> list[int]:
        """Mark completed the active campaigns with nothing left to send; their ids."""
        now = self._now()
        db = self._db
        done: list[int] = []
        rows = db.read(
            lambda c: c.query(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE state IN (?, ?)",
                [s.value for s in ACTIVE],
            )
        )
        for row in rows:
            campaign = campaign_from_row(db, row)
            assert campaign.scheduled_at is not None
            last = last_moment_ms(campaign.schedule, to_ms(campaign.scheduled_at))
            if last is None or last > now:
                continue

            def work(c: Connection, campaign_id: int = campaign.id) -> bool:
                open_slots = c.query(
                    "SELECT 1 FROM campaign_slots WHERE campaign_id = ? "
                    "AND state IN ('pending', 'running', 'dispatched') LIMIT 1",
                    (campaign_id,),
                )
                current = find_campaign(c, db, campaign_id, lock=True)
                if open_slots or current.state not in ACTIVE:
                    return False
                transition(c, db, current, State.COMPLETED, now=now, actor=self.owner)
                return True

            if db.write(work):
                done.append(campaign.id)
        return done

    async def run_slot(self) -> SlotReport | None:
        """Claim and run one due slot; None when nothing is due."""
        claimed = self._claim()
        if claimed is None:
            return None
        campaign, slot = claimed
        sender = self._sender(campaign, slot)
        try:
            report = await sender.run()
        except BaseException:
            # Nothing is lost: the send records say what went out; the slot runs again.
            self._release(slot[0])
            raise
        self._finish(report)
        log.info(
            "campaign %s slot %s (%s %s): %s, %d sent, %d holdout, %d capped, %d in doubt",
            campaign.name,
            report.slot_id,
            report.zone,
            report.occurrence,
            report.state,
            report.sent,
            report.holdout,
            report.capped,
            report.in_doubt,
        )
        return report

    def _sender(self, campaign: Any, slot: tuple[int, str, str, int]) -> SlotSender:
        return SlotSender(
            self._db,
            self.store._events,
            self.store._clock,
            campaign,
            slot,
            owner=self.owner,
            lease_ms=self.lease_ms,
            clients=self.clients,
            page_size=self.page_size,
            apply_batch=self.apply_batch,
        )

    async def tick(self) -> list[SlotReport]:
        """Plan, then run every slot due now, then complete finished campaigns."""
        self.plan()
        reports = []
        while (report := await self.run_slot()) is not None:
            reports.append(report)
        self.complete_finished()
        return reports

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        interval: float = 1.0,
    ) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
