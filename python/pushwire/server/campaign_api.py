"""The ``/v1`` routes of engagement events and campaigns: thin handlers over
``store.campaigns`` (its ingest and its checks; no business rules here).

Who may do what: any key may post engagement events (an app key for its own application's
devices only, named by application and token); sender and admin keys read campaigns and
their KPIs; admin keys create them and move them through their lifecycle, as the actor
``api:<key id> (<key name>)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import Parameter

from ..campaigns import EngagementEvent
from ..campaigns.errors import CampaignInputError, UnknownCampaignError
from ..store.errors import StoreInputError
from .auth import ADMIN, APP, SEND, Principal
from .campaign_schemas import (
    MAX_BATCH_BODY,
    MAX_ID,
    CampaignDetail,
    CampaignEventList,
    CampaignEventOut,
    CampaignIn,
    CampaignKPIOut,
    CampaignKPIs,
    CampaignOut,
    CampaignPage,
    EngagementBatch,
    EngagementIn,
    EventsRecorded,
    Progress,
    SlotOut,
    SlotPage,
    TreatmentOut,
)
from .errors import ApiProblem
from .keys import Scope
from .services import Services, refuse_nul, services_of

Req = Request[Any, Any, Any]


async def _caller(request: Req) -> tuple[Services, Principal]:
    services = services_of(request)
    return services, await services.principal(request)


def campaign_key(key: str) -> int | str:
    """A campaign id (ASCII digits within a BIGINT) or name from the URL; other digit-like
    text (``²``, 30 digits) names no campaign."""
    if key.isascii() and key.isdigit():
        if int(key) > MAX_ID:
            raise UnknownCampaignError(f"no campaign {key[:40]!r}", field="campaign")
        return int(key)
    if key.isdigit():
        raise UnknownCampaignError(f"no campaign {key[:40]!r}", field="campaign")
    return key


def actor_of(principal: Principal) -> str:
    """Who a lifecycle event names: the key's id and name (never its secret)."""
    return f"api:{principal.key.key_id} ({principal.key.name})"


# -- engagement events --------------------------------------------------------------------------


def _check_scope(principal: Principal, event: EngagementIn, where: str) -> None:
    """An app key is public: it names devices of its own application, by token."""
    if principal.key.scope is not Scope.APP:
        return
    if event.endpoint_id is not None:
        raise ApiProblem(
            403,
            "Forbidden",
            "an app key names the device by application and token, not endpoint_id",
            field=f"{where}endpoint_id",
        )
    if event.application is None:
        raise ApiProblem(
            422, "Invalid value", "give application and token", field=f"{where}application"
        )
    if event.application != principal.key.application:
        raise ApiProblem(
            403,
            "Forbidden",
            f"this app key belongs to another application than {event.application!r}",
            field=f"{where}application",
        )


async def _record(request: Req, events: Sequence[EngagementIn], *, batch: bool) -> EventsRecorded:
    services, principal = await _caller(request)

    def where(i: int) -> str:
        return f"events[{i}]." if batch else ""

    for i, event in enumerate(events):
        _check_scope(principal, event, where(i))
        refuse_nul(event, where(i).rstrip("."))
    rows = [
        EngagementEvent(
            name=e.name,
            engagement=e.engagement,
            application=e.application,
            token=e.token,
            endpoint_id=e.endpoint_id,
            at=e.at,
            details=e.details or {},
        )
        for e in events
    ]
    try:
        recorded = await services.db(services.store.campaigns.record_engagement, rows)
    except (CampaignInputError, StoreInputError) as e:
        if not batch or e.index is None:
            raise
        field = f"events[{e.index}].{e.field}" if e.field else f"events[{e.index}]"
        raise ApiProblem(422, "Invalid value", str(e), field=field) from None
    return EventsRecorded(recorded)


@post("/events", status_code=200, opt={"action": APP}, tags=["engagement"])
async def record_event(request: Req, data: EngagementIn) -> EventsRecorded:
    """Record one engagement event (``received``, ``opened``, ``dismissed`` or a custom
    name) with the ``pushwire_engagement`` id the notification carried."""
    return await _record(request, [data], batch=False)


@post(
    "/events/batch",
    status_code=200,
    opt={"action": APP},
    tags=["engagement"],
    request_max_body_size=MAX_BATCH_BODY,
)
async def record_events(request: Req, data: EngagementBatch) -> EventsRecorded:
    """Record up to 10,000 engagement events in one transaction: all or none (a bad one is
    named by its index, ``events[3].token``)."""
    return await _record(request, data.events, batch=True)


# -- campaigns ----------------------------------------------------------------------------------


@post("/campaigns", status_code=201, opt={"action": ADMIN}, tags=["campaigns"])
async def create_campaign(request: Req, data: CampaignIn) -> CampaignOut:
    """Create a campaign (checked whole before anything is written: an unknown segment
    attribute, a cron that never fires, an unknown time zone, treatments not adding up to
    100 are 422 problems naming the field). A draft unless ``schedule_now``."""
    services, principal = await _caller(request)
    refuse_nul(data)
    campaigns = services.store.campaigns
    actor = actor_of(principal)

    def treatments() -> list[dict[str, Any]] | None:
        if data.treatments is None:
            return None
        return [
            {"message": t.message, "percent": t.percent, "name": t.name} for t in data.treatments
        ]

    def plain(value: Any) -> dict[str, Any] | None:
        return None if value is None else {f: getattr(value, f) for f in value.__struct_fields__}

    campaign = await services.db(
        campaigns.create,
        data.name,
        segment=data.segment,
        message=data.message,
        treatments=treatments(),
        holdout_percent=data.holdout_percent,
        schedule=plain(data.schedule),
        quiet_hours=plain(data.quiet_hours),
        rate_per_second=data.rate_per_second,
        frequency_cap=plain(data.frequency_cap),
        actor=actor,
    )
    if data.schedule_now:
        campaign = await services.db(campaigns.schedule, campaign.id, actor=actor)
    return CampaignOut.of(campaign)


@get("/campaigns", opt={"action": SEND}, tags=["campaigns"])
async def list_campaigns(
    request: Req,
    in_state: Annotated[str | None, Parameter(query="state")] = None,
    after: Annotated[int | None, Parameter(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> CampaignPage:
    """Campaigns (in ``state``, if given), oldest first, a page at a time."""
    services, _ = await _caller(request)
    found = await services.db(services.store.campaigns.list, state=in_state)
    page = [c for c in found if after is None or c.id > after][:limit]
    more = len(page) == limit and page[-1].id != found[-1].id
    return CampaignPage([CampaignOut.of(c) for c in page], page[-1].id if more else None)


def _progress(slots: Sequence[Any], kpis: Sequence[Any]) -> Progress:
    states = Counter(s.state for s in slots)
    delivered = sum(k.successful_deliveries for k in kpis)
    opened = sum(k.opened for k in kpis)
    return Progress(
        slots=len(slots),
        slots_by_state=dict(sorted(states.items())),
        sent=sum(k.sent for k in kpis),
        delivered=delivered,
        opened=opened,
        holdout=sum(k.holdout for k in kpis),
        capped=sum(k.capped for k in kpis),
        tokens_disabled=sum(k.tokens_disabled for k in kpis),
        open_rate=round(opened / delivered, 6) if delivered else 0.0,
    )


@get("/campaigns/{key:str}", opt={"action": SEND}, tags=["campaigns"])
async def show_campaign(request: Req, key: str) -> CampaignDetail:
    """A campaign (by id or name) and its progress: slots by state; sent, delivered and
    opened over all its slots."""
    services, _ = await _caller(request)
    campaigns = services.store.campaigns
    campaign = await services.db(campaigns.get, campaign_key(key))
    slots = await services.db(campaigns.slots, campaign.id)
    kpis = await services.db(campaigns.kpis, campaign.id)
    return CampaignDetail(CampaignOut.of(campaign), _progress(slots, kpis))


@get("/campaigns/{key:str}/slots", opt={"action": SEND}, tags=["campaigns"])
async def campaign_slots(
    request: Req,
    key: str,
    offset: Annotated[int, Parameter(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> SlotPage:
    """A campaign's slots (one occurrence in one zone) with their counts, in due order."""
    services, _ = await _caller(request)
    slots = await services.db(services.store.campaigns.slots, campaign_key(key))
    page = slots[offset : offset + limit]
    following = offset + limit if offset + limit < len(slots) else None
    return SlotPage([SlotOut.of(s) for s in page], following)


@get("/campaigns/{key:str}/events", opt={"action": SEND}, tags=["campaigns"])
async def campaign_events(request: Req, key: str) -> CampaignEventList:
    """Lifecycle events (created, scheduled, paused, slot_started...) and their actors."""
    services, _ = await _caller(request)
    found = await services.db(services.store.campaigns.events, campaign_key(key))
    return CampaignEventList([CampaignEventOut.of(e) for e in found])


@get("/campaigns/{key:str}/kpis", opt={"action": SEND}, tags=["campaigns"])
async def campaign_kpis(
    request: Req,
    key: str,
    application: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> CampaignKPIs:
    """KPIs per treatment, application and UTC day (Pinpoint's names:
    ``successful-deliveries``, ``push-open-rate``...) and the treatment comparison."""
    services, _ = await _caller(request)
    campaigns = services.store.campaigns
    rows = await services.db(
        campaigns.kpis, campaign_key(key), application=application, since=since, until=until
    )
    compared = await services.db(campaigns.compare, campaign_key(key))
    return CampaignKPIs(
        [CampaignKPIOut.of(r) for r in rows], [TreatmentOut.of(t) for t in compared]
    )


async def _lifecycle(request: Req, key: str, action: str) -> CampaignOut:
    services, principal = await _caller(request)
    move = getattr(services.store.campaigns, action)
    return CampaignOut.of(await services.db(move, campaign_key(key), actor=actor_of(principal)))


@post("/campaigns/{key:str}/schedule", status_code=200, opt={"action": ADMIN}, tags=["campaigns"])
async def schedule_campaign(request: Req, key: str) -> CampaignOut:
    """draft → scheduled: the scheduler sends its slots from now on."""
    return await _lifecycle(request, key, "schedule")


@post("/campaigns/{key:str}/pause", status_code=200, opt={"action": ADMIN}, tags=["campaigns"])
async def pause_campaign(request: Req, key: str) -> CampaignOut:
    """No slot starts while paused; a slot being sent stops after its current page."""
    return await _lifecycle(request, key, "pause")


@post("/campaigns/{key:str}/resume", status_code=200, opt={"action": ADMIN}, tags=["campaigns"])
async def resume_campaign(request: Req, key: str) -> CampaignOut:
    return await _lifecycle(request, key, "resume")


@post("/campaigns/{key:str}/cancel", status_code=200, opt={"action": ADMIN}, tags=["campaigns"])
async def cancel_campaign(request: Req, key: str) -> CampaignOut:
    """Final: pending slots are cancelled."""
    return await _lifecycle(request, key, "cancel")


ROUTES = [
    record_event,
    record_events,
    create_campaign,
    list_campaigns,
    show_campaign,
    campaign_slots,
    campaign_events,
    campaign_kpis,
    schedule_campaign,
    pause_campaign,
    resume_campaign,
    cancel_campaign,
]
