"""Request and response bodies of the API: msgspec structs, strict (an unknown field is
refused, and named), which also make the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec

from ..store.model import Endpoint, EndpointEvent, Registration
from .keys import ApiKey
from .runner import JobView

Attributes = dict[str, Union[str, list[str]]]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class RegisterDevice(Strict):
    """Register a device token, or refresh it (idempotent; a disabled token is enabled
    again). Absent fields leave an existing endpoint's values unchanged."""

    application: str
    token: str
    user_id: str | None = None
    data: dict[str, Any] | None = None
    attributes: Attributes | None = None

    def registration(self) -> Registration:
        return Registration(
            self.application,
            self.token,
            user_id=self.user_id,
            data=self.data,
            attributes=self.attributes,
        )


class UpdateDevice(Strict):
    """Change a device's user, data (replaced) or attributes (merged unless
    ``merge_attributes`` is false). ``detach_user`` removes its user."""

    user_id: str | None = None
    detach_user: bool = False
    data: dict[str, Any] | None = None
    attributes: Attributes | None = None
    merge_attributes: bool = True


class DeviceOut(msgspec.Struct):
    application: str
    provider: str
    token: str
    user_id: str | None
    enabled: bool
    data: dict[str, Any]
    attributes: dict[str, Any]
    created_at: str
    updated_at: str
    last_registered_at: str
    disabled_at: str | None
    disabled_reason: str | None

    @classmethod
    def of(cls, e: Endpoint) -> DeviceOut:
        return cls(
            application=e.application,
            provider=e.provider.value,
            token=e.token,
            user_id=e.user_id,
            enabled=e.enabled,
            data=dict(e.data),
            attributes={k: v if isinstance(v, str) else list(v) for k, v in e.attributes.items()},
            created_at=e.created_at.isoformat(),
            updated_at=e.updated_at.isoformat(),
            last_registered_at=e.last_registered_at.isoformat(),
            disabled_at=e.disabled_at.isoformat() if e.disabled_at else None,
            disabled_reason=e.disabled_reason,
        )


class DeviceList(msgspec.Struct):
    devices: list[DeviceOut]


class SendRequest(Strict):
    """One message to exactly one target: ``tokens`` (with ``application``), ``user_id``
    (every enabled device of the user) or ``segment`` (filter text such as
    ``app=ios plan=pro``, or its JSON object). ``message`` is a PushMessage
    (title, body, data, image_url, sound, badge, silent, action, url, apns, fcm).
    ``mode``: ``auto`` answers small sends with their report and turns large ones into a
    job; ``job`` always makes a job."""

    message: dict[str, Any]
    application: str | None = None
    tokens: list[str] | None = None
    user_id: str | None = None
    segment: Union[str, dict[str, Any], None] = None
    mode: Literal["auto", "job"] = "auto"


class AppTally(msgspec.Struct):
    sent: int
    delivered: int
    invalid_tokens: int
    tokens_disabled: int
    retryable: int


class SendReportOut(msgspec.Struct):
    run_id: int
    total: int
    delivered: int
    tokens_disabled: int
    by_outcome: dict[str, int]
    by_reason: dict[str, int]
    alerts: list[str]
    applications: dict[str, AppTally]


class SendAnswer(msgspec.Struct, omit_defaults=True):
    """``report`` for a send answered now; ``job_id`` (and ``status_url``) for a job."""

    kind: Literal["report", "job"]
    report: SendReportOut | None = None
    job_id: str | None = None
    status_url: str | None = None


class JobOut(msgspec.Struct):
    job_id: str
    backend: str
    state: str
    total: int
    recorded: int
    by_outcome: dict[str, int]
    run_id: int | None
    tokens_disabled: int | None
    error: str | None
    created_at: float
    finished_at: float | None

    @classmethod
    def of(cls, v: JobView) -> JobOut:
        return cls(
            v.job_id,
            v.backend,
            v.state,
            v.total,
            v.recorded,
            v.by_outcome,
            v.run_id,
            v.tokens_disabled,
            v.error,
            v.created_at,
            v.finished_at,
        )


class JobList(msgspec.Struct):
    jobs: list[JobOut]


class KPIOut(msgspec.Struct):
    application: str
    day: str
    runs: int
    sent: int
    delivered: int
    invalid_tokens: int
    tokens_disabled: int
    delivery_rate: float
    #: Campaign notifications delivered, and of them opened (engagement events).
    campaign_delivered: int
    opened: int
    #: opened / campaign_delivered (Pinpoint's push-open-rate); None without any.
    open_rate: float | None


class KPIList(msgspec.Struct):
    kpis: list[KPIOut]


class EventOut(msgspec.Struct):
    id: int
    at: str
    kind: str
    application: str | None
    token: str | None
    user_id: str | None
    cause: str
    details: dict[str, Any]

    @classmethod
    def of(cls, e: EndpointEvent) -> EventOut:
        return cls(
            e.id,
            e.at.isoformat(),
            e.kind.value,
            e.application,
            e.token,
            e.user_id,
            e.cause,
            dict(e.details),
        )


class EventPage(msgspec.Struct):
    """Oldest first; pass ``next_after`` as ``after`` for the next page (None: no more)."""

    events: list[EventOut]
    next_after: int | None


class ApplicationIn(Strict):
    """APNs: ``topic`` and ``environment``; FCM: ``project_id``. ``credentials_ref`` says
    where the credentials are (a file path or environment variable), never the secret."""

    provider: Literal["apns", "fcm", "webpush"]
    environment: Literal["production", "sandbox"] | None = None
    topic: str | None = None
    project_id: str | None = None
    credentials_ref: str | None = None


class ApplicationOut(msgspec.Struct):
    name: str
    provider: str
    environment: str | None
    topic: str | None
    project_id: str | None
    credentials_ref: str | None
    created_at: str
    updated_at: str


class ApplicationList(msgspec.Struct):
    applications: list[ApplicationOut]


class KeyIn(Strict):
    name: str
    scope: Literal["app", "sender", "admin"]
    application: str | None = None
    #: Requests per second (default: the server's).
    rate_limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None


class KeyOut(msgspec.Struct):
    key_id: str
    name: str
    scope: str
    application: str | None
    rate_limit: int | None
    created_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            k.key_id,
            k.name,
            k.scope.value,
            k.application,
            k.rate_limit,
            k.created_at.isoformat(),
            k.revoked_at.isoformat() if k.revoked_at else None,
        )


class CreatedKeyOut(msgspec.Struct):
    """``secret`` is shown this once: it is not stored."""

    key: KeyOut
    secret: str


class KeyList(msgspec.Struct):
    keys: list[KeyOut]


class LoginIn(Strict):
    key: str


class Identity(msgspec.Struct):
    key_id: str
    name: str
    scope: str
    application: str | None
