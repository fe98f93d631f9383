""":class:`Campaigns`: the library API over one store (``store.campaigns``), for the CLI,
``pushwire serve`` and your own services.

Every method that writes is one transaction, checks all its input first, and records a
lifecycle event with its ``actor``. Methods are synchronous (they block on the database)
except the scheduler's, which are coroutines.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from .._client import AnyPushClient
from ..store.backend import Connection
from ..store.errors import InvalidFilterError, UnknownApplicationError
from ..store.message import PushMessage
from ..store.segments import SegmentFilter, selected_applications
from ..store.sending import default_actor
from .assign import Splitter
from .engagement import EngagementEvent, ingest
from .errors import CampaignInputError, InvalidScheduleError, UnknownSegmentAttributeError
from .kpis import CampaignKPI, TreatmentResult, campaign_kpis, compare_treatments
from .model import (
    HOLDOUT,
    Campaign,
    CampaignEvent,
    FrequencyCap,
    QuietHours,
    Schedule,
    Slot,
    State,
    Treatment,
    check_holdout,
    check_name,
    check_rate,
    check_treatments,
    spec_dict,
)
from .records import (
    CAMPAIGN_COLUMNS,
    add_event,
    campaign_from_row,
    events_of,
    find_campaign,
    slots_of,
    transition,
)
from .schedule import check_fires, last_moment_ms
from .scheduler import DEFAULT_LEASE_SECONDS, Scheduler

if TYPE_CHECKING:
    from ..store.store import Store


def _coerce(value: Any, kind: type, field: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind.from_dict(value)  # type: ignore[attr-defined]
    raise CampaignInputError(f"{field} must be a {kind.__name__} or a mapping", field=field)


class Campaigns:
    """Campaigns of one :class:`~pushwire.store.Store`::

    campaigns = store.campaigns
    c = campaigns.create(
        "spring-sale",
        segment="plan=pro",
        treatments=[Treatment(PushMessage(title="A", body="..."), 50),
                    Treatment(PushMessage(title="B", body="..."), 50)],
        holdout_percent=10,
        schedule=Schedule("daily", start="2026-12-07T09:00", end="2026-12-14T09:00",
                          timezone="Europe/Paris", local_time=True),
        quiet_hours=QuietHours("22:00", "08:00"),
        rate_per_second=500, frequency_cap=FrequencyCap(2, "day"),
    )
    campaigns.schedule(c.id, actor="alice")
    await campaigns.scheduler(clients={"ios": apns}).tick()
    campaigns.record_engagement([{"name": "opened", "engagement": eid,
                                  "application": "ios", "token": tok}])
    campaigns.kpis(c.id)
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.database

    def _now(self) -> int:
        return self.store._clock()

    # -- definition -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        segment: SegmentFilter | str | Mapping[str, Any] = "",
        message: PushMessage | Mapping[str, Any] | None = None,
        treatments: Sequence[Treatment | Mapping[str, Any]] | None = None,
        holdout_percent: float = 0.0,
        schedule: Schedule | Mapping[str, Any] | None = None,
        quiet_hours: QuietHours | Mapping[str, Any] | None = None,
        rate_per_second: float | None = None,
        frequency_cap: FrequencyCap | Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Campaign:
        """A new campaign in state ``draft`` (:meth:`schedule` starts it). Give ``message``
        or ``treatments`` (percents adding up to 100). Everything is checked first: an
        unknown segment attribute or application, a schedule that never fires, an unknown
        time zone, treatments not adding up to 100 raise a
        :class:`~.errors.CampaignInputError` subclass naming the field."""
        name = check_name(name)
        segment = self._segment(segment)
        if (message is None) == (treatments is None):
            raise CampaignInputError(
                "give either message or treatments",
                field="message" if message is None else "treatments",
            )
        if message is not None:
            if isinstance(message, Mapping):
                message = PushMessage.from_dict(message)
            treatments = [Treatment(message, 100.0)]
        assert treatments is not None
        checked_treatments = check_treatments(
            [
                t if isinstance(t, Treatment) else Treatment.from_dict(t, i)
                for i, t in enumerate(treatments)
            ]
        )
        holdout = check_holdout(holdout_percent)
        schedule = _coerce(schedule, Schedule, "schedule") or Schedule()
        assert isinstance(schedule, Schedule)
        quiet = _coerce(quiet_hours, QuietHours, "quiet_hours")
        cap = _coerce(frequency_cap, FrequencyCap, "frequency_cap")
        rate = check_rate(rate_per_second)
        now = self._now()
        check_fires(schedule, now)
        spec = spec_dict(segment, checked_treatments, holdout, schedule, quiet, rate, cap)
        db = self._db
        who = actor or default_actor()

        def work(c: Connection) -> Campaign:
            self._check_segment(c, segment)
            if c.query("SELECT 1 FROM campaigns WHERE name = ?", (name,)):
                raise CampaignInputError(f"a campaign named {name!r} exists already", field="name")
            rows = c.query(
                "INSERT INTO campaigns (name, state, spec, created_at, updated_at) "
                "VALUES (?, 'draft', ?, ?, ?) RETURNING id",
                (name, db.json_param(spec), now, now),
            )
            campaign_id = int(rows[0][0])
            add_event(c, db, campaign_id, now=now, kind="created", actor=who, to_state=State.DRAFT)
            return find_campaign(c, db, campaign_id)

        return db.write(work)

    @staticmethod
    def _segment(segment: object) -> SegmentFilter:
        if isinstance(segment, SegmentFilter):
            return segment
        if isinstance(segment, str):
            return SegmentFilter.parse(segment)
        if isinstance(segment, Mapping):
            return SegmentFilter.from_dict(segment)
        raise InvalidFilterError(
            "segment must be a SegmentFilter, its text or its JSON", field="segment"
        )

    def _check_segment(self, c: Connection, segment: SegmentFilter) -> None:
        """Named applications must exist; each attribute must be one some endpoint has."""
        try:
            apps = selected_applications(c, segment)
        except UnknownApplicationError as e:
            raise UnknownApplicationError(str(e), field="segment.applications") from None
        if not segment.attributes:
            return
        in_apps, app_ids = self._db.in_condition("application_id", [a.id for a in apps] or [0])
        for key in segment.attributes:
            if self._db.dialect == "sqlite":
                has = "json_type(attributes, '$.\"' || ? || '\"') IS NOT NULL"
            else:
                has = "jsonb_exists(attributes, ?)"
            if not c.query(
                f"SELECT 1 FROM endpoints WHERE {in_apps} AND {has} LIMIT 1", (*app_ids, key)
            ):
                raise UnknownSegmentAttributeError(
                    f"segment attribute {key!r}: no endpoint of "
                    f"{', '.join(a.name for a in apps) or 'any application'} has it (known "
                    "attributes come from registrations; check the spelling)",
                    field=f"segment.attributes.{key}",
                )

    # -- lifecycle --------------------------------------------------------------------------

    def _transition(
        self, key: int | str, to: State, actor: str | None, *, kind: str | None = None
    ) -> Campaign:
        db = self._db
        now = self._now()
        who = actor or default_actor()

        def work(c: Connection) -> Campaign:
            campaign = find_campaign(c, db, key, lock=True)
            if to is State.SCHEDULED and campaign.state is State.DRAFT:
                last = last_moment_ms(campaign.schedule, now)
                if last is not None and last < now:
                    raise InvalidScheduleError(
                        f"campaign {campaign.name!r}: its schedule ended before now "
                        f"(schedule.end / schedule.start is in the past)",
                        field="schedule",
                    )
            transition(c, db, campaign, to, now=now, actor=who, kind=kind)
            if to is State.CANCELLED:
                c.execute(
                    "UPDATE campaign_slots SET state = 'cancelled', finished_at = ? "
                    "WHERE campaign_id = ? AND state = 'pending'",
                    (now, campaign.id),
                )
            return find_campaign(c, db, campaign.id)

        return db.write(work)

    def schedule(self, key: int | str, *, actor: str | None = None) -> Campaign:
        """draft → scheduled: the scheduler sends its slots from now on."""
        return self._transition(key, State.SCHEDULED, actor)

    def pause(self, key: int | str, *, actor: str | None = None) -> Campaign:
        """No slot starts while paused; a slot being sent stops after its current page and
        resumes where it stopped."""
        return self._transition(key, State.PAUSED, actor)

    def resume(self, key: int | str, *, actor: str | None = None) -> Campaign:
        return self._transition(key, State.SCHEDULED, actor, kind="resumed")

    def cancel(self, key: int | str, *, actor: str | None = None) -> Campaign:
        """Final: pending slots are cancelled; a slot being sent stops after its page."""
        return self._transition(key, State.CANCELLED, actor)

    # -- reading ----------------------------------------------------------------------------

    def get(self, key: int | str) -> Campaign:
        """By id or name; :class:`~.errors.UnknownCampaignError` if there is none."""
        return self._db.read(lambda c: find_campaign(c, self._db, key))

    def list(self, *, state: State | str | None = None) -> builtins.list[Campaign]:
        if state is not None:
            try:
                state = State(state)
            except ValueError:
                raise CampaignInputError(
                    f"state must be one of {[s.value for s in State]}", field="state"
                ) from None
        where, params = ("WHERE state = ? ", [state.value]) if state else ("", [])
        rows = self._db.read(
            lambda c: c.query(
                f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns {where}ORDER BY id", params
            )
        )
        return [campaign_from_row(self._db, r) for r in rows]

    def events(self, key: int | str) -> builtins.list[CampaignEvent]:
        """Lifecycle events (created, scheduled, running, paused, slot_started...), oldest first."""
        return events_of(self._db, self.get(key).id)

    def slots(self, key: int | str) -> builtins.list[Slot]:
        return slots_of(self._db, self.get(key).id)

    def treatment_of(self, key: int | str, endpoint_id: int) -> str:
        """The treatment name (or ``holdout``) an endpoint gets: stable for the campaign."""
        campaign = self.get(key)
        splitter = Splitter(
            campaign.id, campaign.holdout_percent, [t.percent for t in campaign.treatments]
        )
        number = splitter.treatment(endpoint_id)
        return "holdout" if number == HOLDOUT else campaign.treatments[number].name

    # -- running ----------------------------------------------------------------------------

    def scheduler(
        self,
        *,
        clients: Mapping[str, AnyPushClient],
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        page_size: int = 2000,
        apply_batch: int = 2000,
    ) -> Scheduler:
        """A :class:`~.scheduler.Scheduler` sending through ``clients`` in this process."""
        return Scheduler(
            self.store,
            clients=clients,
            owner=owner,
            lease_seconds=lease_seconds,
            page_size=page_size,
            apply_batch=apply_batch,
        )

    # -- engagement and KPIs ----------------------------------------------------------------

    def record_engagement(self, events: Iterable[EngagementEvent | Mapping[str, Any]]) -> int:
        """Record engagement events (any number, one transaction); how many."""
        return ingest(self._db, events, now=self._now())

    def kpis(
        self,
        key: int | str | None = None,
        *,
        application: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> builtins.list[CampaignKPI]:
        """KPIs per campaign (all, or ``key``), treatment, application and UTC day."""
        campaign_id = self.get(key).id if key is not None else None
        return campaign_kpis(
            self._db, campaign_id=campaign_id, application=application, since=since, until=until
        )

    def compare(self, key: int | str) -> builtins.list[TreatmentResult]:
        """Open rate of each treatment (and the holdout size) with the counts behind it."""
        campaign = self.get(key)
        percents = {t.name: t.percent for t in campaign.treatments}
        return compare_treatments(self.kpis(campaign.id), percents)


__all__ = ["Campaigns"]
