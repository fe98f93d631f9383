"""Running one claimed slot in this process: select its endpoints a page at a time, assign
treatments, apply the frequency cap, write a send record per endpoint, send, record outcomes.

Exactly once per (slot, endpoint): the send record (``PRIMARY KEY (slot_id, endpoint_id)``)
is committed BEFORE the notification is handed to the client, and only the records this
transaction inserted are sent. A scheduler killed mid-slot leaves records in state
``sending``: the one that resumes the slot marks them ``in_doubt`` (they may or may not have
reached the provider), reports how many, and never sends them again; every other endpoint of
the slot is sent exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .._client import AnyPushClient
from .._results import Outcome, Result
from ..store.apply import ResultApplier
from ..store.backend import Connection, Database
from ..store.clock import Clock, to_datetime, utc_day
from ..store.errors import StoreError
from ..store.events import EventLog
from ..store.message import PushMessage
from ..store.model import Application
from ..store.segments import endpoint_conditions, has_enabled_endpoints, selected_applications
from ..store.sending import Rendered, check_clients
from ..store.stats import ApplicationTally, SendReport, finish_run, start_run
from ..store.subscriptions import Sendable, sendable
from .assign import Splitter
from .model import ENGAGEMENT_KEY, HOLDOUT, TIMEZONE_ATTRIBUTE, Campaign, State, valid_zone
from .planning import timezone_expression

log = logging.getLogger("pushwire.campaigns")

_SEND_COLUMNS = [
    ("slot_id", "bigint"),
    ("endpoint_id", "bigint"),
    ("campaign_id", "bigint"),
    ("application_id", "bigint"),
    ("treatment", "bigint"),
    ("state", "text"),
    ("disabled", "boolean"),
    ("at", "bigint"),
    ("day", "text"),
    ("job", "text"),
]
#: Outcome -> its name (``Enum.value`` costs a descriptor call per result).
_OUTCOMES = {outcome: outcome.value for outcome in Outcome}
#: Send-record states that count as a push for the frequency cap.
PUSHED_STATES = ("sending", "in_doubt", "delivered", "rejected", "timeout", "failed")


def engagement_id(campaign_id: int, slot_id: int, treatment: int) -> str:
    """What the app echoes back with its events: ``pw1.<campaign>.<slot>.<treatment>``."""
    return f"pw1.{campaign_id}.{slot_id}.{treatment}"


def treatment_message(campaign: Campaign, slot_id: int, number: int) -> PushMessage:
    """Treatment ``number``'s message carrying the engagement id (APNs custom key, FCM data)."""
    message = campaign.treatments[number].message
    data = {**message.data, ENGAGEMENT_KEY: engagement_id(campaign.id, slot_id, number)}
    return PushMessage(
        title=message.title,
        body=message.body,
        data=data,
        image_url=message.image_url,
        sound=message.sound,
        badge=message.badge,
        silent=message.silent,
        action=message.action,
        url=message.url,
        apns=message.apns,
        fcm=message.fcm,
    )


@dataclass
class SlotReport:
    """What running (or resuming) one slot did."""

    slot_id: int
    campaign_id: int
    zone: str
    occurrence: str
    #: ``done``, ``paused`` (the campaign was paused: the slot resumes later), ``cancelled``
    #: or ``lost`` (another scheduler took the lease over).
    state: str = "done"
    run_id: int | None = None
    sent: int = 0
    holdout: int = 0
    capped: int = 0
    #: Records left ``sending`` by a scheduler that died: they may have been delivered and
    #: are not sent again.
    in_doubt: int = 0
    by_treatment: dict[int, int] = field(default_factory=dict)
    report: SendReport | None = None

    def counts(self) -> dict[str, int]:
        out = {"sent": self.sent, "holdout": self.holdout, "capped": self.capped}
        out["in_doubt"] = self.in_doubt
        if self.report is not None:
            out["delivered"] = self.report.delivered
            out["tokens_disabled"] = self.report.tokens_disabled
        return out


def _page_query(c: Connection, *, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return c.query(sql, params)


class RateLimiter:
    """At most ``rate`` notifications per second, measured on the monotonic clock."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._start = time.monotonic()
        self._granted = 0

    async def take(self, n: int) -> None:
        self._granted += n
        ready = self._start + (self._granted - n) / self.rate
        delay = ready - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class SlotSender:
    """Runs one slot (already claimed by ``owner``) through ``clients``."""

    def __init__(
        self,
        database: Database,
        events: EventLog,
        clock: Clock,
        campaign: Campaign,
        slot: tuple[int, str, str, int],
        *,
        owner: str,
        lease_ms: int,
        clients: Mapping[str, AnyPushClient],
        page_size: int,
        apply_batch: int,
    ) -> None:
        self._db = database
        self._events = events
        self._clock = clock
        self.campaign = campaign
        self.slot_id, self.zone, self.occurrence, self.attempts = slot
        self._owner = owner
        self._lease_ms = lease_ms
        self._clients = clients
        self._page_size = page_size
        self._apply_batch = apply_batch
        self._splitter = Splitter(
            campaign.id, campaign.holdout_percent, [t.percent for t in campaign.treatments]
        )
        self._stop: str | None = None
        self.outcome = SlotReport(self.slot_id, campaign.id, self.zone, self.occurrence)

    def job_id(self, first_endpoint: int, treatment: int) -> str:
        """The Redis job of one page's treatment, unique per claim of the slot (``attempts``)
        and page (keyset pages never start at the same endpoint twice in one claim)."""
        c = self.campaign.id
        return f"c{c}s{self.slot_id}p{first_endpoint}a{self.attempts}t{treatment}"

    # -- database steps ---------------------------------------------------------------------

    def _resume(self) -> None:
        """Mark what a dead scheduler left in flight."""

        def work(c: Connection) -> int:
            rows = c.query(
                "UPDATE campaign_sends SET state = 'in_doubt' WHERE slot_id = ? "
                "AND state = 'sending' RETURNING endpoint_id",
                (self.slot_id,),
            )
            return len(rows)

        in_doubt: int = self._db.write(work)
        self.outcome.in_doubt = in_doubt
        if in_doubt:
            log.warning(
                "slot %s resumed: %d notifications were in flight when its scheduler stopped "
                "(may have been delivered; not sent again)",
                self.slot_id,
                in_doubt,
            )

    def _renew(self) -> bool:
        """Extend the lease; False when another scheduler holds the slot now, or the
        campaign was paused or cancelled (``self._stop`` says which)."""
        now = self._clock()

        def work(c: Connection) -> tuple[list[Any], list[Any]]:
            mine = c.query(
                "UPDATE campaign_slots SET lease_until = ? WHERE id = ? AND owner = ? "
                "AND state = 'running' RETURNING id",
                (now + self._lease_ms, self.slot_id, self._owner),
            )
            state = c.query("SELECT state FROM campaigns WHERE id = ?", (self.campaign.id,))
            return mine, state

        mine, state = self._db.write(work)
        if not mine:
            self._stop = "lost"
        elif state[0][0] == State.PAUSED.value:
            self._stop = "paused"
        elif state[0][0] == State.CANCELLED.value:
            self._stop = "cancelled"
        return self._stop is None

    def _record_page(
        self, app: Application, rows: list[tuple[int, str]], *, state: str = "sending"
    ) -> list[tuple[int, str, int]]:
        """Write the page's send records; the (endpoint id, token, treatment) to send now.
        ``state`` ``queued`` (the worker fleet) records the job each goes out in."""
        first = rows[0][0] if rows else 0
        now = self._clock()
        day = utc_day(now)
        if self._splitter.trivial:
            assigned = [(eid, token, 0) for eid, token in rows]
        else:
            treatment = self._splitter.treatment
            assigned = [(eid, token, treatment(eid)) for eid, token in rows]
        cap = self.campaign.frequency_cap
        db = self._db

        def work(c: Connection) -> tuple[list[tuple[int, str, int]], int, int]:
            # Records of this slot already written (a resumed slot): those never go again.
            # The slot's holder is the only writer of its records, so this read is exact.
            lowest, highest = rows[0][0], rows[-1][0]
            existing = {
                r[0]
                for r in c.query(
                    "SELECT endpoint_id FROM campaign_sends WHERE slot_id = ? "
                    "AND endpoint_id >= ? AND endpoint_id <= ?",
                    (self.slot_id, lowest, highest),
                )
            }
            fresh = [a for a in assigned if a[0] not in existing]
            capped: set[int] = set()
            if cap is not None:
                ids = [eid for eid, _, t in fresh if t != HOLDOUT]
                if ids and db.for_update:
                    # Another campaign's slot may be counting the same endpoints right now
                    # (PostgreSQL, READ COMMITTED): lock them, in id order so two pages never
                    # deadlock, and the later one counts the earlier one's records. SQLite's
                    # BEGIN IMMEDIATE already serialises writers.
                    in_eids, eid_params = db.in_condition("id", ids)
                    c.query(
                        f"SELECT id FROM endpoints WHERE {in_eids} ORDER BY id{db.for_update}",
                        eid_params,
                    )
                if ids:
                    in_ids, id_params = db.in_condition("endpoint_id", ids)
                    in_states, state_params = db.in_condition("state", list(PUSHED_STATES))
                    counts = c.query(
                        f"SELECT endpoint_id, COUNT(*) FROM campaign_sends WHERE {in_ids} "
                        f"AND {in_states} AND at > ? GROUP BY endpoint_id",
                        (*id_params, *state_params, now - cap.window_ms),
                    )
                    capped = {eid for eid, count in counts if count >= cap.limit}
            records = []
            send_now = []
            holdout = skipped = 0
            slot_id, campaign_id, app_id = self.slot_id, self.campaign.id, app.id
            for eid, token, t in fresh:
                if t == HOLDOUT:
                    kind = "holdout"
                    holdout += 1
                elif eid in capped:
                    kind = "capped"
                    skipped += 1
                else:
                    kind = state
                    send_now.append((eid, token, t))
                job = self.job_id(first, t) if kind == "queued" else None
                records.append((slot_id, eid, campaign_id, app_id, t, kind, False, now, day, job))
            db.insert_many(
                c,
                "campaign_sends",
                _SEND_COLUMNS,
                records,
                suffix="ON CONFLICT (slot_id, endpoint_id) DO NOTHING",
            )
            return send_now, holdout, skipped

        if not rows:
            return []
        # Pure with respect to self: PostgreSQL may run ``work`` again after a deadlock.
        send_now, holdout, skipped = db.write(work)
        self.outcome.holdout += holdout
        self.outcome.capped += skipped
        return send_now

    def _pages(self, app: Application) -> Iterator[list[tuple[int, str]]]:
        """(endpoint id, token) of the enabled endpoints of ``app`` in the segment and this
        slot's zone, in id order, a page at a time."""
        db = self._db
        campaign = self.campaign
        conditions, params = endpoint_conditions(db, campaign.segment)
        local = campaign.zoned
        default_zone = self.zone == campaign.schedule.timezone
        if local and not default_zone:
            zone_sql, zone_params = db.attribute_condition(TIMEZONE_ATTRIBUTE, [self.zone])
            conditions += f" AND {zone_sql}"
            params = [*params, *zone_params]
        tz_column = f", {timezone_expression(db)}" if local and default_zone else ""
        sql = (
            f"SELECT endpoints.id, endpoints.token{tz_column} FROM endpoints "
            f"WHERE endpoints.application_id = ? AND endpoints.enabled{conditions} "
            "AND endpoints.id > ? ORDER BY endpoints.id LIMIT ?"
        )
        known: dict[object, bool] = {}

        def ours(value: object) -> bool:
            # The campaign's zone also takes endpoints whose zone is missing or unknown.
            if value not in known:
                known[value] = (
                    value == self.zone or not isinstance(value, str) or valid_zone(value) is None
                )
            return known[value]

        after = 0
        while True:
            bound = (app.id, *params, after, self._page_size)
            rows = db.read(partial(_page_query, sql=sql, params=bound))
            if not rows:
                return
            after = rows[-1][0]
            if tz_column:
                yield [(r[0], r[1]) for r in rows if ours(r[2])]
            else:
                yield [(r[0], r[1]) for r in rows]
            if len(rows) < self._page_size:
                return

    # -- running ----------------------------------------------------------------------------

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
        check_clients(apps, self._clients)
        rendered: dict[tuple[str, int], Rendered] = {}
        for number in range(len(campaign.treatments)):
            message = treatment_message(campaign, self.slot_id, number)
            for app in apps:
                rendered[(app.name, number)] = message.render(app)
        if self.attempts > 1:
            self._resume()
        # One send run per claim (a resumed slot's run counts what this claim sent), so the
        # store's daily KPIs, which sum runs, count every push once.
        now = self._clock()
        run_id = start_run(
            db,
            now=now,
            actor=self._owner,
            target_kind="campaign",
            target={"campaign": campaign.id, "slot": self.slot_id, "zone": self.zone},
            message=campaign.treatments[0].message.to_dict(),
        )
        db.write(
            lambda c: c.execute(
                "UPDATE campaign_slots SET run_id = ? WHERE id = ?", (run_id, self.slot_id)
            )
        )
        report = SendReport(run_id=run_id, started_at=to_datetime(now))
        self.outcome.run_id = run_id
        self.outcome.report = report
        for app in apps:
            report.applications[app.name] = ApplicationTally(app.name)
        limiter = RateLimiter(campaign.rate_per_second) if campaign.rate_per_second else None
        try:
            for app in apps:
                if self._stop is not None:
                    break
                await self._send_application(app, rendered, report, limiter)
        except BaseException as e:
            with contextlib.suppress(StoreError):
                finish_run(db, report, now=self._clock(), status="failed", error=repr(e))
            raise
        self.outcome.state = self._stop or "done"
        finish_run(
            db,
            report,
            now=self._clock(),
            status="finished" if self._stop is None else self._stop,
        )
        return self.outcome

    async def _send_application(
        self,
        app: Application,
        rendered: Mapping[tuple[str, int], Rendered],
        report: SendReport,
        limiter: RateLimiter | None,
    ) -> None:
        client = self._clients[app.name]
        applier = ResultApplier(self._db, self._events, app, run_id=report.run_id)
        tally = report.applications[app.name]
        in_flight: dict[str, int] = {}
        batch: list[Result] = []
        received_at = 0

        def flush() -> None:
            nonlocal batch
            if not batch:
                return
            applied, published = applier.apply(batch, received_at=received_at, now=self._clock())
            tally.add(applied)
            self._events.publish(published)
            disabled = set(applied.disabled)
            rows = [
                (_OUTCOMES[r.outcome], r.token in disabled, self.slot_id, in_flight.pop(r.token))
                for r in batch
            ]
            self._db.write(
                lambda c: c.executemany(
                    "UPDATE campaign_sends SET state = ?, disabled = ? "
                    "WHERE slot_id = ? AND endpoint_id = ?",
                    rows,
                )
            )
            batch = []
            self._renew()

        def notifications(
            pages: Iterator[list[tuple[int, str, int]]],
        ) -> Iterator[tuple[Sendable, Rendered, None]]:
            messages = {n: m for (name, n), m in rendered.items() if name == app.name}
            counts = self.outcome.by_treatment
            for page in pages:
                self.outcome.sent += len(page)
                targets = sendable(self._db, app, [token for _, token, _ in page])
                for (eid, token, number), target in zip(page, targets, strict=True):
                    in_flight[token] = eid
                    counts[number] = counts.get(number, 0) + 1
                    yield (target, messages[number], None)

        def recorded_pages() -> Iterator[list[tuple[int, str, int]]]:
            for page in self._pages(app):
                if self._stop is not None or not self._renew():
                    return
                yield self._record_page(app, page)

        async def consume(source: Iterator[tuple[Sendable, Rendered, None]]) -> None:
            nonlocal received_at
            async for result in client.stream(source):
                if not batch:
                    received_at = self._clock()
                batch.append(result)
                if len(batch) >= self._apply_batch:
                    flush()

        async def paced(limiter: RateLimiter) -> None:
            # A tenth of a second's worth at a time, each recorded just before it goes (a
            # scheduler killed mid-slot leaves at most one step in doubt).
            step = max(1, int(limiter.rate / 10))
            for page in self._pages(app):
                for start in range(0, len(page), step):
                    if self._stop is not None or not self._renew():
                        return
                    part = self._record_page(app, page[start : start + step])
                    await limiter.take(len(part))
                    await consume(notifications(iter([part])))
                    flush()

        try:
            if limiter is None:
                await consume(notifications(recorded_pages()))
            else:
                await paced(limiter)
        except BaseException:
            with contextlib.suppress(StoreError):
                flush()
            raise
        flush()
