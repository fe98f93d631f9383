"""What the store holds: applications, endpoints, registrations and change events.

The model is the one of AWS SNS platform endpoints and Pinpoint endpoints: an *application*
is one app on one provider (its topic or project, and a reference to its credentials); an
*endpoint* is one device token of that application, optionally owned by a user, with custom
data and segmentation attributes, which is disabled (never silently deleted) when a provider
says the token is dead and enabled again when the app registers the same token again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from ..webpush import WebPushSubscription
from .errors import StoreInputError

__all__ = [
    "AttributeValue",
    "Application",
    "Endpoint",
    "EndpointEvent",
    "EventKind",
    "Provider",
    "Registration",
]

#: A segmentation attribute: one string or a list of strings (as Pinpoint's attributes).
AttributeValue = Union[str, Sequence[str]]


class Provider(str, enum.Enum):
    APNS = "apns"
    FCM = "fcm"
    #: Browsers (RFC 8030): an endpoint's token is the subscription's endpoint URL and its
    #: ``p256dh`` and ``auth`` keys are kept beside it.
    WEBPUSH = "webpush"


@dataclass(frozen=True, slots=True)
class Application:
    """One app on one provider. ``credentials_ref`` says where the credentials are (a file,
    environment variables: see :mod:`pushwire.store.credentials`), never the secret itself."""

    name: str
    provider: Provider
    #: APNs: ``production`` or ``sandbox``; FCM: None.
    environment: str | None
    #: APNs: the bundle id (``apns-topic``); FCM: None.
    topic: str | None
    #: FCM: the Firebase project id; APNs: None.
    project_id: str | None
    credentials_ref: str | None
    created_at: datetime
    updated_at: datetime
    id: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One device token of one application (unique per application and token)."""

    id: int
    application: str
    provider: Provider
    token: str
    user_id: str | None
    enabled: bool
    #: Custom data for the app's own use (any JSON object); not used for segments.
    data: Mapping[str, Any]
    #: Segmentation attributes: string -> string or list of strings.
    attributes: Mapping[str, AttributeValue]
    created_at: datetime
    updated_at: datetime
    #: The last time the app registered this token (the 410 rule compares against it).
    last_registered_at: datetime
    disabled_at: datetime | None
    #: Why it was disabled: the provider's reason (``Unregistered``, ``BadDeviceToken``,
    #: ``UNREGISTERED``...) or the caller's (``manual``).
    disabled_reason: str | None
    #: The latest moment a provider said the token was invalid: a 410 timestamp, the send
    #: time of a verdict without one, the time of an explicit disable. The endpoint is
    #: disabled while this is after ``last_registered_at``: a registration at or after it
    #: enables the endpoint again.
    invalid_since: datetime | None
    #: The latest APNs 410 timestamp seen for this token, applied or not.
    last_410_at: datetime | None
    #: Web Push only: the subscription's keys (base64url); None for APNs and FCM. ``auth``
    #: is a secret shared with the browser: it stays out of the repr.
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)

    @property
    def subscription(self) -> WebPushSubscription:
        """The Web Push subscription of a ``webpush`` endpoint (what the client sends to)."""
        if self.p256dh is None or self.auth is None:
            raise StoreInputError(
                f"endpoint {self.id} is a {self.provider.value} token, not a Web Push subscription",
                field="provider",
            )
        return WebPushSubscription(self.token, self.p256dh, self.auth)


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration for :meth:`Store.register_many` (an import row).

    ``None`` leaves a field unchanged on an existing endpoint; ``registered_at`` defaults to
    now.
    """

    application: str
    token: str
    user_id: str | None = None
    data: Mapping[str, Any] | None = None
    attributes: Mapping[str, AttributeValue] | None = None
    registered_at: datetime | None = None
    #: Web Push applications: the subscription's keys (``token`` is its endpoint URL).
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)


class EventKind(str, enum.Enum):
    """What happened to an endpoint (or, for ``CONFIG_ALERT``, to an application)."""

    CREATED = "created"
    #: User, data or attributes changed.
    UPDATED = "updated"
    DISABLED = "disabled"
    RE_ENABLED = "re_enabled"
    DELETED = "deleted"
    #: A send showed a configuration problem (sandbox/production mix-up, wrong topic,
    #: refused credentials): tokens were kept, someone must fix the setup.
    CONFIG_ALERT = "config_alert"


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    """One recorded change, with when and why (``cause``: ``register``, ``import``,
    ``send_result``, ``manual``, ``api``...)."""

    id: int
    at: datetime
    kind: EventKind
    application: str | None
    token: str | None
    endpoint_id: int | None
    user_id: str | None
    cause: str
    details: Mapping[str, Any]
