"""The ``/v1`` routes: thin handlers that authorise, call the library and shape answers."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Request, Router, delete, get, patch, post, put
from litestar.params import Parameter

from ..store import SegmentFilter, SendReport
from ..store.edits import KEEP
from ..store.message import PushMessage
from .auth import ADMIN, APP, SEND, Principal
from .campaign_api import ROUTES as CAMPAIGN_ROUTES
from .errors import ApiProblem
from .schemas import (
    ApplicationIn,
    ApplicationList,
    ApplicationOut,
    AppTally,
    CreatedKeyOut,
    DeviceList,
    DeviceOut,
    EventOut,
    EventPage,
    Identity,
    JobList,
    JobOut,
    KeyIn,
    KeyList,
    KeyOut,
    KPIList,
    KPIOut,
    RegisterDevice,
    SendAnswer,
    SendReportOut,
    SendRequest,
    UpdateDevice,
)
from .services import Services, authorized, refuse_nul, services_of
from .webpush_api import ROUTES as WEBPUSH_ROUTES

Req = Request[Any, Any, Any]

#: Largest id a client may page from (a database BIGINT).
MAX_ID = 2**63 - 1


async def _caller(request: Req) -> tuple[Services, Principal]:
    services = services_of(request)
    return services, await services.principal(request)


# -- devices ------------------------------------------------------------------------------------


@post("/devices", status_code=200, opt={"action": APP}, tags=["devices"])
async def register_device(request: Req, data: RegisterDevice) -> DeviceOut:
    """Register or refresh a device token (app, sender or admin key; an app key for its own
    application only)."""
    services, principal = await _caller(request)
    principal.require_application(data.application)
    refuse_nul(data)
    # Written with the registrations that arrive with it, in one transaction. (Most
    # registrations are answered by fast_registration.py, which does the same without the
    # framework's layers, and leaves every refusal to this route.)
    endpoint = await services.registrations.register(data.registration())
    return DeviceOut.of(endpoint)


@get("/devices/{application:str}/{token:str}", opt={"action": SEND}, tags=["devices"])
async def get_device(request: Req, application: str, token: str) -> DeviceOut:
    services, _ = await _caller(request)
    return DeviceOut.of(await services.db(services.store.get, application, token))


@patch("/devices/{application:str}/{token:str}", opt={"action": APP}, tags=["devices"])
async def update_device(
    request: Req, application: str, token: str, data: UpdateDevice
) -> DeviceOut:
    """Set a device's user, data or attributes (an app key: its own application's)."""
    services, principal = await _caller(request)
    principal.require_application(application)
    refuse_nul(data)
    if data.detach_user and data.user_id is not None:
        raise ApiProblem(
            422, "Invalid value", "give user_id or detach_user, not both", field="detach_user"
        )
    user: Any = None if data.detach_user else (data.user_id if data.user_id is not None else KEEP)
    endpoint = await services.db(
        services.store.update,
        application,
        token,
        user_id=user,
        data=data.data,
        attributes=data.attributes,
        merge_attributes=data.merge_attributes,
        cause="api",
    )
    return DeviceOut.of(endpoint)


@delete(
    "/devices/{application:str}/{token:str}", status_code=204, opt={"action": APP}, tags=["devices"]
)
async def unregister_device(request: Req, application: str, token: str) -> None:
    """Unregister a device (the app was uninstalled or the user logged out); a
    ``deleted`` event keeps its trace."""
    services, principal = await _caller(request)
    principal.require_application(application)
    await services.db(services.store.get, application, token)  # 404 when unknown
    await services.db(services.store.delete, application, token, cause="api")


@get("/users/{user_id:str}/devices", opt={"action": SEND}, tags=["devices"])
async def user_devices(request: Req, user_id: str, enabled_only: bool = False) -> DeviceList:
    services, _ = await _caller(request)
    endpoints = await services.db(
        services.store.endpoints_of_user, user_id, enabled_only=enabled_only
    )
    return DeviceList([DeviceOut.of(e) for e in endpoints])


@get("/devices", opt={"action": SEND}, tags=["devices"])
async def search_devices(
    request: Req,
    segment: str = "all",
    enabled: bool | None = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> DeviceList:
    """Devices a segment selects (``app=ios user=u1 plan=pro``), in id order, ``limit`` of
    them."""
    services, _ = await _caller(request)
    segment_filter = SegmentFilter.parse(segment)

    def first() -> list[Any]:
        return list(
            itertools.islice(
                services.store.endpoints(segment_filter, enabled=enabled, page_size=limit), limit
            )
        )

    return DeviceList([DeviceOut.of(e) for e in await services.db(first)])


# -- sends --------------------------------------------------------------------------------------


def _report(report: SendReport) -> SendReportOut:
    return SendReportOut(
        run_id=report.run_id,
        total=report.total,
        delivered=report.delivered,
        tokens_disabled=report.tokens_disabled,
        by_outcome=dict(report.by_outcome),
        by_reason=dict(report.by_reason),
        alerts=list(report.alerts),
        applications={
            name: AppTally(t.sent, t.delivered, t.invalid_tokens, t.tokens_disabled, t.retryable)
            for name, t in report.applications.items()
        },
    )


def _job_answer(job_id: str) -> SendAnswer:
    return SendAnswer(kind="job", job_id=job_id, status_url=f"/v1/jobs/{job_id}")


@post("/sends", status_code=200, opt={"action": SEND}, tags=["sends"])
async def send(request: Req, data: SendRequest) -> SendAnswer:
    """Send a message to tokens, a user or a segment. Small sends (at most the server's
    ``sync_send_limit`` endpoints) are answered with their report; larger ones, or
    ``mode=job``, become a job whose id the answer carries (``GET /v1/jobs/{id}``)."""
    services, principal = await _caller(request)
    refuse_nul(data)
    targets = [t for t in ("tokens", "user_id", "segment") if getattr(data, t) is not None]
    if len(targets) != 1:
        raise ApiProblem(
            422,
            "Invalid value",
            "give exactly one target: tokens (with application), user_id or segment",
            field="tokens" if not targets else targets[1],
        )
    if (data.tokens is not None) != (data.application is not None):
        raise ApiProblem(
            422,
            "Invalid value",
            "application goes with tokens (and only with them)",
            field="application",
        )
    message = PushMessage.from_dict(data.message)
    store = services.store
    actor = f"api:{principal.key.key_id}"
    limit = services.settings.sync_send_limit
    pool = services.pool
    if data.tokens is not None:
        assert data.application is not None
        if not data.tokens:
            raise ApiProblem(422, "Invalid value", "tokens is empty", field="tokens")
        app = await services.db(store.application, data.application)
        if len(data.tokens) > limit or data.mode == "job":
            job = await services.jobs.submit_tokens(app, data.tokens, message, actor)
            return _job_answer(job)
        report = await store.send_to_tokens(
            app.name, data.tokens, message, clients=await pool.clients_for([app]), actor=actor
        )
        return SendAnswer(kind="report", report=_report(report))
    if data.user_id is not None:
        endpoints = await services.db(store.endpoints_of_user, data.user_id, enabled_only=True)
        names = {e.application for e in endpoints}
        apps = [a for a in await services.db(store.applications) if a.name in names]
        report = await store.send_to_user(
            data.user_id, message, clients=await pool.clients_for(apps), actor=actor
        )
        return SendAnswer(kind="report", report=_report(report))
    raw = data.segment
    segment = SegmentFilter.parse(raw) if isinstance(raw, str) else SegmentFilter.from_dict(raw)
    if data.mode == "auto":
        few = await services.db(
            lambda: list(
                itertools.islice(
                    store.endpoints(segment, enabled=True, page_size=limit + 1), limit + 1
                )
            )
        )
        if len(few) <= limit:
            apps = await services.db(store.segment_applications, segment)
            report = await store.send_to_segment(
                segment, message, clients=await pool.clients_for(apps), actor=actor
            )
            return SendAnswer(kind="report", report=_report(report))
    return _job_answer(await services.jobs.submit_segment(segment, message, actor))


@get("/jobs/{job_id:str}", opt={"action": SEND}, tags=["sends"])
async def job_status(request: Req, job_id: str) -> JobOut:
    services, _ = await _caller(request)
    return JobOut.of(await services.jobs.status(job_id))


@get("/jobs", opt={"action": SEND}, tags=["sends"])
async def list_jobs(request: Req, limit: Annotated[int, Parameter(ge=1, le=200)] = 20) -> JobList:
    services, _ = await _caller(request)
    return JobList([JobOut.of(v) for v in await services.jobs.recent(limit)])


# -- KPIs and events ---------------------------------------------------------------------------


@get("/kpis", opt={"action": SEND}, tags=["reports"])
async def kpis(
    request: Req,
    application: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> KPIList:
    """Per application and UTC day: sends, deliveries, invalid and disabled tokens; and of
    the campaign notifications among them (the ones that carry an engagement id), how many
    were delivered and opened: ``open_rate`` is Pinpoint's ``push-open-rate`` (None when
    no campaign notification was delivered that day)."""
    services, _ = await _caller(request)
    rows = await services.db(services.store.kpis, application=application, since=since, until=until)
    campaign_rows = await services.db(
        services.store.campaigns.kpis, application=application, since=since, until=until
    )
    engaged: dict[tuple[str, str], list[int]] = {}
    for c in campaign_rows:
        tally = engaged.setdefault((c.application, c.day), [0, 0])
        tally[0] += c.successful_deliveries
        tally[1] += c.opened
    out = []
    for k in rows:
        delivered, opened = engaged.get((k.application, k.day), (0, 0))
        out.append(
            KPIOut(
                k.application,
                k.day,
                k.runs,
                k.sent,
                k.delivered,
                k.invalid_tokens,
                k.tokens_disabled,
                round(k.delivery_rate, 6),
                delivered,
                opened,
                round(opened / delivered, 6) if delivered else None,
            )
        )
    return KPIList(out)


@get("/events", opt={"action": SEND}, tags=["reports"])
async def events(
    request: Req,
    application: str | None = None,
    token: str | None = None,
    user_id: str | None = None,
    kind: list[str] | None = None,
    since: datetime | None = None,
    after: Annotated[int | None, Parameter(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> EventPage:
    """The store's change log (created, updated, disabled, re_enabled, deleted,
    config_alert), oldest first, a page at a time."""
    services, _ = await _caller(request)
    found = await services.db(
        services.store.events,
        application=application,
        token=token,
        user_id=user_id,
        kinds=kind,
        since=since,
        after_id=after,
        limit=limit,
    )
    next_after = found[-1].id if len(found) == limit else None
    return EventPage([EventOut.of(e) for e in found], next_after)


# -- applications and keys (admin) -------------------------------------------------------------


def _application(a: Any) -> ApplicationOut:
    return ApplicationOut(
        a.name,
        a.provider.value,
        a.environment,
        a.topic,
        a.project_id,
        a.credentials_ref,
        a.created_at.isoformat(),
        a.updated_at.isoformat(),
    )


@get("/applications", opt={"action": SEND}, tags=["admin"])
async def list_applications(request: Req) -> ApplicationList:
    services, _ = await _caller(request)
    return ApplicationList(
        [_application(a) for a in await services.db(services.store.applications)]
    )


@put("/applications/{name:str}", opt={"action": ADMIN}, tags=["admin"])
async def put_application(request: Req, name: str, data: ApplicationIn) -> ApplicationOut:
    """Create an application or change its settings; new credentials take effect at the
    next send, without a restart."""
    services, _ = await _caller(request)
    refuse_nul(data)
    app = await services.db(
        services.store.put_application,
        name,
        provider=data.provider,
        environment=data.environment,
        topic=data.topic,
        project_id=data.project_id,
        credentials_ref=data.credentials_ref,
    )
    return _application(app)


@get("/keys", opt={"action": ADMIN}, tags=["admin"])
async def list_keys(request: Req, include_revoked: bool = False) -> KeyList:
    services, _ = await _caller(request)
    keys = await services.db(services.keys.list, include_revoked=include_revoked)
    return KeyList([KeyOut.of(k) for k in keys])


@post("/keys", status_code=201, opt={"action": ADMIN}, tags=["admin"])
async def create_key(request: Req, data: KeyIn) -> CreatedKeyOut:
    services, _ = await _caller(request)
    refuse_nul(data)
    created = await services.db(
        services.keys.create,
        data.name,
        data.scope,
        application=data.application,
        rate_limit=data.rate_limit,
    )
    return CreatedKeyOut(KeyOut.of(created.key), created.secret)


@delete("/keys/{key_id:str}", status_code=200, opt={"action": ADMIN}, tags=["admin"])
async def revoke_key(request: Req, key_id: str) -> KeyOut:
    """Revoke a key: refused from the next request on."""
    services, _ = await _caller(request)
    return KeyOut.of(await services.db(services.keys.revoke, key_id))


@get("/me", tags=["admin"])
async def me(request: Req) -> Identity:
    """The key this request is made with (any scope)."""
    _, principal = await _caller(request)
    k = principal.key
    return Identity(k.key_id, k.name, k.scope.value, k.application)


v1 = Router(
    path="/v1",
    guards=[authorized],
    route_handlers=[
        register_device,
        get_device,
        update_device,
        unregister_device,
        user_devices,
        search_devices,
        send,
        job_status,
        list_jobs,
        kpis,
        events,
        list_applications,
        put_application,
        list_keys,
        create_key,
        revoke_key,
        me,
        *CAMPAIGN_ROUTES,
        *WEBPUSH_ROUTES,
    ],
)
