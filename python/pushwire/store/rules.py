"""How registrations and provider verdicts change an endpoint: pure functions, no SQL.

The rules are built so that the final state does not depend on the order in which
registrations and results are applied (several processes may apply them concurrently):

* ``last_registered_at`` only moves forward; a registration older than the latest one changes
  nothing (the latest registration owns user, data and attributes).
* A drop verdict carries the moment the token is known invalid: the APNs 410 timestamp, or
  the send time for verdicts without one. It disables the endpoint only if the token was last
  registered *before* that moment (:func:`pushwire.should_drop_token`); the endpoint's
  ``invalid_since`` keeps the latest such moment, applied or not.
* A registration enables a disabled endpoint when it is at or after ``invalid_since``. A
  registration made now (no explicit time) is after everything already recorded.

So an endpoint ends enabled exactly when its latest registration is at or after its latest
drop verdict, whatever the interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .._classify import ResultLike, should_drop_token
from .clock import to_datetime
from .model import AttributeValue, EventKind


@dataclass(frozen=True, slots=True)
class EndpointState:
    """The columns of one endpoint row that the rules read and write."""

    id: int
    token: str
    user_id: str | None
    enabled: bool
    data: dict[str, Any]
    attributes: dict[str, AttributeValue]
    created_at: int
    updated_at: int
    last_registered_at: int
    disabled_at: int | None
    disabled_reason: str | None
    invalid_since: int | None
    last_410_at: int | None
    #: Web Push subscriptions' keys; None for APNs and FCM tokens.
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CheckedRegistration:
    """A registration whose fields passed validation (``None`` = leave unchanged)."""

    application_id: int
    application: str
    token: str
    user_id: str | None
    data: dict[str, Any] | None
    attributes: dict[str, AttributeValue] | None
    registered_at: int
    #: Registered just now (no explicit time): after everything already recorded.
    live: bool = False
    #: Web Push: the subscription's keys (checked); None leaves them unchanged.
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Change:
    """An event to record about one endpoint."""

    kind: EventKind
    details: dict[str, Any]


def new_endpoint(registration: CheckedRegistration, now: int, endpoint_id: int) -> EndpointState:
    return EndpointState(
        id=endpoint_id,
        token=registration.token,
        user_id=registration.user_id,
        enabled=True,
        data=registration.data or {},
        attributes=registration.attributes or {},
        created_at=now,
        updated_at=now,
        last_registered_at=registration.registered_at,
        disabled_at=None,
        disabled_reason=None,
        invalid_since=None,
        last_410_at=None,
        p256dh=registration.p256dh,
        auth=registration.auth,
    )


def register(
    state: EndpointState, registration: CheckedRegistration, now: int
) -> tuple[EndpointState, Change | None]:
    """Apply a registration of an existing endpoint: the new state (``state`` itself when
    nothing changes) and the event to record, if any.

    Only refreshing ``last_registered_at`` records no event: it is a heartbeat, not a change.
    A different ``user_id`` moves the endpoint to that user (one device, one owner).
    """
    at = registration.registered_at
    if registration.live:
        # The app calls now, so this comes after every verdict and disable already recorded,
        # even one stamped a millisecond ahead of our clock (the same millisecond as an
        # explicit disable, or a provider clock slightly ahead).
        at = max(at, state.last_registered_at, state.invalid_since or 0)
    if at < state.last_registered_at:
        return state, None  # an older registration arrived late: the newer one stands
    details: dict[str, Any] = {}
    user_id, data, attributes = state.user_id, state.data, state.attributes
    if registration.user_id is not None and registration.user_id != user_id:
        details["user_id"] = {"from": user_id, "to": registration.user_id}
        user_id = registration.user_id
    if registration.data is not None and registration.data != data:
        details["data"] = True
        data = registration.data
    if registration.attributes is not None and registration.attributes != attributes:
        details["attributes"] = True
        attributes = registration.attributes
    p256dh, auth = state.p256dh, state.auth
    if registration.p256dh is not None and (registration.p256dh, registration.auth) != (
        p256dh,
        auth,
    ):
        details["keys"] = True  # the browser subscribed again with new keys (not recorded)
        p256dh, auth = registration.p256dh, registration.auth
    re_enabled = not state.enabled and (state.invalid_since is None or at >= state.invalid_since)
    changed = bool(details) or re_enabled
    new = replace(
        state,
        user_id=user_id,
        data=data,
        attributes=attributes,
        p256dh=p256dh,
        auth=auth,
        last_registered_at=at,
        updated_at=now if changed else state.updated_at,
    )
    if re_enabled:
        details["was_disabled_for"] = state.disabled_reason
        new = replace(new, enabled=True, disabled_at=None, disabled_reason=None)
        return new, Change(EventKind.RE_ENABLED, details)
    if details:
        return new, Change(EventKind.UPDATED, details)
    return new, None


@dataclass(frozen=True, slots=True)
class DropVerdict:
    """A provider result that says to drop a token, with the moment it speaks about."""

    result: ResultLike
    reason: str
    #: The 410 timestamp, or when the notification was sent (no timestamp).
    invalid_since: int


def drop(
    state: EndpointState, verdict: DropVerdict, now: int
) -> tuple[EndpointState, Change | None, bool]:
    """Apply a drop verdict: (new state, event, applied). Not applied when the token was
    registered again since (the 410 rule, also applied to the send time of verdicts without a
    timestamp); its moment is remembered either way (``invalid_since``, and ``last_410_at``
    for a 410)."""
    result = verdict.result
    last_410_at = state.last_410_at
    if result.status == 410 and result.timestamp_ms is not None:
        last_410_at = max(last_410_at or 0, result.timestamp_ms)
    # Remembered even when the verdict does not apply: it keeps the outcome independent of
    # the order verdicts and registrations arrive in.
    invalid_since = max(state.invalid_since or 0, verdict.invalid_since)
    registered = to_datetime(state.last_registered_at)
    applies = should_drop_token(result, registered) and (
        state.last_registered_at < verdict.invalid_since
    )
    if not applies:
        if last_410_at == state.last_410_at and invalid_since == state.invalid_since:
            return state, None, False
        return replace(state, last_410_at=last_410_at, invalid_since=invalid_since), None, False
    if not state.enabled:
        # Already disabled: only the moment (and, when it is newer, the reason) moves on.
        newer = verdict.invalid_since >= (state.invalid_since or 0)
        new = replace(
            state,
            invalid_since=invalid_since,
            last_410_at=last_410_at,
            disabled_reason=verdict.reason if newer else state.disabled_reason,
        )
        return new, None, True
    new = replace(
        state,
        enabled=False,
        disabled_at=now,
        disabled_reason=verdict.reason,
        invalid_since=invalid_since,
        last_410_at=last_410_at,
        updated_at=now,
    )
    details: dict[str, Any] = {"reason": verdict.reason, "status": result.status}
    if result.timestamp_ms is not None:
        details["timestamp_ms"] = result.timestamp_ms
    return new, Change(EventKind.DISABLED, details), True


def disable(state: EndpointState, reason: str, now: int) -> tuple[EndpointState, Change | None]:
    """An explicit disable: until the app registers again (after now)."""
    # After the latest registration, even one dated in the future (clock skew).
    invalid_since = max(now, state.last_registered_at + 1, state.invalid_since or 0)
    if not state.enabled:
        return replace(state, invalid_since=invalid_since), None
    new = replace(
        state,
        enabled=False,
        disabled_at=now,
        disabled_reason=reason,
        invalid_since=invalid_since,
        updated_at=now,
    )
    return new, Change(EventKind.DISABLED, {"reason": reason})
