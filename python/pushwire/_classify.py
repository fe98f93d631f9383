"""What to do about each result: table-driven classification of APNs outcomes.

Every :class:`pushwire.Result` maps to one :class:`Action`:

==================== ==========================================================================
``DELIVERED``        APNs accepted it. Nothing to do.
``DROP_TOKEN``       The token is dead (410, ``BadDeviceToken``...). Delete it, but see below.
``RETRY``            Transient (429, 5xx, ``Shutdown``, timeouts). Resend after ``retry_after``.
``RETRY_AFTER_AUTH`` Auth lifecycle (expired JWT, key/connection binding). Fix auth, resend.
``FIX_PAYLOAD``      This request is malformed. Resending it as is fails again: drop or fix it.
``FIX_CONFIG``       Setup is wrong (topic, certificate, key). Page an operator, keep tokens.
==================== ==========================================================================

The mapping is one table, :data:`APNS_TABLE`, transcribed from Apple's reason list (and the
broadcast-push reasons), with status-only fallbacks so an unknown reason never raises and is
kept verbatim. Classification is pure: no I/O, no clock, just dict lookups, with the common
(status, reason) classifications shared rather than rebuilt per result.

Deleting tokens is the one destructive decision, so two safeguards apply:

* **410 timestamps.** APNs says *since when* a token is invalid (``timestamp``, in
  MILLISECONDS since the epoch). A token re-registered after that moment is alive again:
  :func:`should_drop_token` and :func:`tokens_to_drop` compare against your stored
  registration time.
* **Bursts.** ``BadDeviceToken`` also means "sandbox token sent to production (or vice
  versa)". When many tokens in a batch fail that way it is a configuration bug, not thousands
  of dead tokens: :func:`summarize` then withholds them from ``tokens_to_drop`` and warns.
  The same holds for ``DeviceTokenNotForTopic`` (wrong ``apns-topic`` or suffix).

::

    summary = pushwire.summarize(results)
    for warning in summary.warnings:
        log.warning(warning)
    delete_tokens(t.token for t in summary.tokens_to_drop)
    resend([notifications[i] for i in summary.retryable])  # Result.index values
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol, Union

from ._outcome import Outcome

__all__ = [
    "APNS_TABLE",
    "DEFAULT_BACKOFF_SECONDS",
    "TOO_MANY_REQUESTS_DELAY_SECONDS",
    "Action",
    "BadTokenBurstDetector",
    "Classification",
    "Reason",
    "RegisteredAt",
    "FCM_TABLE",
    "QUOTA_EXCEEDED_DELAY_SECONDS",
    "ResultLike",
    "Summary",
    "TokenToDrop",
    "classify",
    "parse_reason",
    "should_drop_token",
    "summarize",
    "tokens_to_drop",
]


class Reason(str, enum.Enum):
    """Every ``reason`` string APNs is known to send; the value is the exact wire string.

    Reasons not listed here are still valid results: :func:`parse_reason` returns them as
    plain strings.
    """

    # 400: the request is malformed, or the token is bad.
    BAD_COLLAPSE_ID = "BadCollapseId"
    BAD_DEVICE_TOKEN = "BadDeviceToken"
    BAD_EXPIRATION_DATE = "BadExpirationDate"
    BAD_MESSAGE_ID = "BadMessageId"
    BAD_PRIORITY = "BadPriority"
    BAD_TOPIC = "BadTopic"
    DEVICE_TOKEN_NOT_FOR_TOPIC = "DeviceTokenNotForTopic"
    DUPLICATE_HEADERS = "DuplicateHeaders"
    IDLE_TIMEOUT = "IdleTimeout"
    INVALID_PUSH_TYPE = "InvalidPushType"
    MISSING_DEVICE_TOKEN = "MissingDeviceToken"
    MISSING_TOPIC = "MissingTopic"
    PAYLOAD_EMPTY = "PayloadEmpty"
    TOPIC_DISALLOWED = "TopicDisallowed"
    # 403: certificate or provider token (JWT) problems.
    BAD_CERTIFICATE = "BadCertificate"
    BAD_CERTIFICATE_ENVIRONMENT = "BadCertificateEnvironment"
    EXPIRED_PROVIDER_TOKEN = "ExpiredProviderToken"
    FORBIDDEN = "Forbidden"
    INVALID_PROVIDER_TOKEN = "InvalidProviderToken"
    MISSING_PROVIDER_TOKEN = "MissingProviderToken"
    UNRELATED_KEY_ID_IN_TOKEN = "UnrelatedKeyIdInToken"
    BAD_ENVIRONMENT_KEY_ID_IN_TOKEN = "BadEnvironmentKeyIdInToken"
    #: Alternate spelling some clients accept; unconfirmed that APNs ever sends it.
    BAD_ENVIRONMENT_KEY_IN_TOKEN = "BadEnvironmentKeyInToken"
    # 404, 405
    BAD_PATH = "BadPath"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    # 410: the token is no longer valid (see the 410 timestamp).
    EXPIRED_TOKEN = "ExpiredToken"
    UNREGISTERED = "Unregistered"
    # 413
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    # 429
    TOO_MANY_PROVIDER_TOKEN_UPDATES = "TooManyProviderTokenUpdates"
    TOO_MANY_REQUESTS = "TooManyRequests"
    # 5xx
    INTERNAL_SERVER_ERROR = "InternalServerError"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    SHUTDOWN = "Shutdown"
    # Broadcast push and channel management (Live Activities, iOS 18+).
    FEATURE_NOT_ENABLED = "FeatureNotEnabled"
    MISSING_CHANNEL_ID = "MissingChannelId"
    BAD_CHANNEL_ID = "BadChannelId"
    CHANNEL_NOT_REGISTERED = "ChannelNotRegistered"
    BAD_REQUEST_PARAMS = "BadRequestParams"
    BAD_REQUEST_PAYLOAD = "BadRequestPayload"
    MISSING_PUSH_TYPE = "MissingPushType"
    CANNOT_CREATE_CHANNEL_CONFIG = "CannotCreateChannelConfig"
    TOPIC_MISMATCH = "TopicMismatch"
    #: Apple's broadcast documentation spells this one with a space.
    SERVICE_UNAVAILABLE_BROADCAST = "Service Unavailable"
    #: Undocumented; one client reports it when ``message-storage-policy`` is missing.
    MISSING_CHANNEL_QUEUE_SIZE = "MissingChannelQueueSize"
    # FCM HTTP v1 (protocol.md §4.3): the ``errorCode`` of the error details, or the canonical
    # ``status`` when FCM gives no errorCode (an expired OAuth token: UNAUTHENTICATED).
    FCM_UNSPECIFIED_ERROR = "UNSPECIFIED_ERROR"
    FCM_INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FCM_UNREGISTERED = "UNREGISTERED"
    FCM_SENDER_ID_MISMATCH = "SENDER_ID_MISMATCH"
    FCM_QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    FCM_UNAVAILABLE = "UNAVAILABLE"
    FCM_INTERNAL = "INTERNAL"
    FCM_THIRD_PARTY_AUTH_ERROR = "THIRD_PARTY_AUTH_ERROR"
    #: Deprecated predecessor of THIRD_PARTY_AUTH_ERROR.
    FCM_APNS_AUTH_ERROR = "APNS_AUTH_ERROR"
    FCM_UNAUTHENTICATED = "UNAUTHENTICATED"


_REASONS_BY_VALUE: dict[str, Reason] = {reason.value: reason for reason in Reason}


def parse_reason(reason: str | None) -> Reason | str | None:
    """The :class:`Reason` for an APNs reason string, or the string itself if unknown.

    Never raises for a string or ``None``: APNs adds reasons over time (``ExpiredToken``,
    ``UnrelatedKeyIdInToken``...) and an unknown one must survive intact for logs.
    """
    if reason is None:
        return None
    return _REASONS_BY_VALUE.get(reason, reason)


class Action(str, enum.Enum):
    """What the caller should do about one result."""

    DELIVERED = "delivered"
    DROP_TOKEN = "drop_token"
    RETRY = "retry"
    RETRY_AFTER_AUTH = "retry_after_auth"
    FIX_PAYLOAD = "fix_payload"
    FIX_CONFIG = "fix_config"


_RETRY_ACTIONS = frozenset({Action.RETRY, Action.RETRY_AFTER_AUTH})


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one result.

    ``retry_after`` is a suggested delay in seconds, set only for ``RETRY`` and
    ``RETRY_AFTER_AUTH``: the provider's ``retry-after`` header when it sent one, otherwise
    :data:`TOO_MANY_REQUESTS_DELAY_SECONDS` for 429 and :data:`DEFAULT_BACKOFF_SECONDS` (the
    first step of an exponential backoff) for everything else.

    ``drop_token_if_registered_before`` is the APNs 410 timestamp in MILLISECONDS since the
    epoch: delete the token only if it was last registered before that instant.
    """

    action: Action
    reason: Reason | str | None
    retry_after: float | None
    description: str
    drop_token_if_registered_before: int | None = None

    @property
    def retryable(self) -> bool:
        """True for ``RETRY`` and ``RETRY_AFTER_AUTH``."""
        return self.action in _RETRY_ACTIONS


@dataclass(frozen=True, slots=True)
class TokenToDrop:
    """A token to delete, with why and (for 410) since when, in MILLISECONDS since the epoch."""

    token: str
    reason: Reason | str | None
    timestamp_ms: int | None


class ResultLike(Protocol):
    """The fields of :class:`pushwire.Result` that classification reads."""

    @property
    def index(self) -> int: ...
    @property
    def token(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def timestamp_ms(self) -> int | None: ...
    @property
    def retry_after(self) -> float | None: ...
    @property
    def maybe_delivered(self) -> bool: ...


# -- retry delays -----------------------------------------------------------------------------

#: Suggested first delay for transient failures (500, 503, ``Shutdown``, ``IdleTimeout``,
#: timeouts, lost connections): reconnect and resend, doubling the delay on each failure.
#: Apple's own guidance is that 5xx "may be retried after 15 minutes" with backoff; that suits
#: a store-and-forward queue, not an interactive send, so we suggest a short first step and
#: leave the cap (up to 900 s) to the caller's backoff policy.
DEFAULT_BACKOFF_SECONDS = 1.0

#: FCM: QUOTA_EXCEEDED backs off at least a minute (project / topic rate), protocol.md §4.3.
QUOTA_EXCEEDED_DELAY_SECONDS = 60.0

#: Suggested delay after 429 ``TooManyRequests`` (too many pushes to one device), when the
#: provider sent no ``retry-after`` header.
TOO_MANY_REQUESTS_DELAY_SECONDS = 60.0


# -- the table --------------------------------------------------------------------------------

_T, _C, _R, _A, _X = (
    Action.DROP_TOKEN,
    Action.FIX_CONFIG,
    Action.FIX_PAYLOAD,
    Action.RETRY_AFTER_AUTH,
    Action.RETRY,
)

#: (HTTP status, reason) -> (action, what it means and what to do).
#: Class codes from Apple's table: T -> DROP_TOKEN, C -> FIX_CONFIG, R -> FIX_PAYLOAD,
#: A -> RETRY_AFTER_AUTH, X -> RETRY. Rows marked "R/C" in the reference go to FIX_CONFIG when
#: the token-disposition table lists them as configuration errors, or when pushwire itself
#: builds that part of the request (so only the setup can be wrong).
APNS_TABLE: dict[tuple[int, str], tuple[Action, str]] = {
    (400, Reason.BAD_COLLAPSE_ID): (
        _R,
        "The apns-collapse-id is longer than 64 bytes: shorten it; resending as is fails again.",
    ),
    (400, Reason.BAD_DEVICE_TOKEN): (
        _T,
        "The token is malformed or belongs to the other environment (sandbox vs production): "
        "delete it, unless many tokens fail this way, which means a wrong environment setting.",
    ),
    (400, Reason.BAD_EXPIRATION_DATE): (
        _R,
        "The apns-expiration value is invalid (on no-storage broadcast channels it must be 0): "
        "fix it before resending.",
    ),
    (400, Reason.BAD_MESSAGE_ID): (
        _R,
        "The apns-id is not a lowercase 8-4-4-4-12 UUID: fix it before resending.",
    ),
    (400, Reason.BAD_PRIORITY): (
        _R,
        "The apns-priority is invalid for this push type (background pushes allow only 5): "
        "fix it before resending.",
    ),
    (400, Reason.BAD_TOPIC): (
        _C,
        "The apns-topic is invalid: check the bundle ID and push-type suffix; tokens are fine.",
    ),
    (400, Reason.DEVICE_TOKEN_NOT_FOR_TOPIC): (
        _T,
        "The token belongs to a different app or topic: delete it, unless many tokens fail "
        "this way, which means a wrong apns-topic or push-type suffix.",
    ),
    (400, Reason.DUPLICATE_HEADERS): (
        _R,
        "A request header was repeated: fix the request before resending.",
    ),
    (400, Reason.IDLE_TIMEOUT): (
        _X,
        "APNs closed the idle connection: reconnect and resend.",
    ),
    (400, Reason.INVALID_PUSH_TYPE): (
        _C,
        "The apns-push-type is invalid or not allowed for this topic or credential: "
        "fix the message's push type or the credentials.",
    ),
    (400, Reason.MISSING_DEVICE_TOKEN): (
        _R,
        "The request path carries no device token: fix the request (empty token?).",
    ),
    (400, Reason.MISSING_TOPIC): (
        _C,
        "The certificate covers several topics, so apns-topic is required: set the topic.",
    ),
    (400, Reason.PAYLOAD_EMPTY): (
        _R,
        "The notification body is empty: send a JSON payload.",
    ),
    (400, Reason.TOPIC_DISALLOWED): (
        _C,
        "Pushing to this topic is not allowed (broadcasts take no topic suffix): "
        "fix the topic or the app's capabilities.",
    ),
    (403, Reason.BAD_CERTIFICATE): (
        _C,
        "The client certificate is invalid: replace it; do not retry or delete tokens.",
    ),
    (403, Reason.BAD_CERTIFICATE_ENVIRONMENT): (
        _C,
        "The client certificate is for the other environment: use the matching certificate "
        "or environment.",
    ),
    (403, Reason.EXPIRED_PROVIDER_TOKEN): (
        _A,
        "The provider JWT is more than an hour old: mint a new one and resend.",
    ),
    (403, Reason.FORBIDDEN): (
        _C,
        "APNs does not allow this action for these credentials: fix the setup; do not retry.",
    ),
    (403, Reason.INVALID_PROVIDER_TOKEN): (
        _C,
        "The provider JWT is invalid (signature, key ID or team ID): check the .p8 key, "
        "key_id and team_id.",
    ),
    (403, Reason.MISSING_PROVIDER_TOKEN): (
        _C,
        "No client certificate and no provider JWT were presented: configure credentials.",
    ),
    (403, Reason.UNRELATED_KEY_ID_IN_TOKEN): (
        _A,
        "The JWT's key is unrelated to the key this connection was first used with: "
        "send it over a new connection for that key.",
    ),
    (403, Reason.BAD_ENVIRONMENT_KEY_ID_IN_TOKEN): (
        _C,
        "The signing key is scoped to the other environment: use a key for this environment "
        "or switch environment.",
    ),
    (403, Reason.BAD_ENVIRONMENT_KEY_IN_TOKEN): (
        _C,
        "The signing key is scoped to the other environment: use a key for this environment "
        "or switch environment.",
    ),
    (404, Reason.BAD_PATH): (
        _R,
        "The request path is invalid: fix the request before resending.",
    ),
    (405, Reason.METHOD_NOT_ALLOWED): (
        _R,
        "The request method was not POST: fix the request before resending.",
    ),
    (410, Reason.EXPIRED_TOKEN): (
        _T,
        "The device token has expired: delete it unless re-registered after the timestamp.",
    ),
    (410, Reason.UNREGISTERED): (
        _T,
        "The token is no longer active for this topic: delete it unless re-registered after "
        "the timestamp (it does not prove the app was uninstalled).",
    ),
    (413, Reason.PAYLOAD_TOO_LARGE): (
        _R,
        "The payload exceeds the size limit (4096 bytes, 5120 for VoIP and broadcasts): "
        "shrink it; do not retry as is.",
    ),
    (429, Reason.TOO_MANY_PROVIDER_TOKEN_UPDATES): (
        _A,
        "The JWT changed more often than every 20 minutes on this connection: reuse the "
        "cached JWT and resend.",
    ),
    (429, Reason.TOO_MANY_REQUESTS): (
        _X,
        "Too many pushes to this one device in a row: resend later, backing off per token.",
    ),
    (500, Reason.INTERNAL_SERVER_ERROR): (
        _X,
        "APNs had an internal error: resend with backoff.",
    ),
    (503, Reason.SERVICE_UNAVAILABLE): (
        _X,
        "APNs is unavailable: resend with backoff.",
    ),
    (503, Reason.SHUTDOWN): (
        _X,
        "That APNs server is shutting down: reconnect (fresh DNS lookup) and resend.",
    ),
    # Broadcast push (Live Activities channels). Apple gives these no class; ours are noted.
    (400, Reason.FEATURE_NOT_ENABLED): (
        _C,
        "Broadcast push is not enabled for this App ID: enable it on developer.apple.com.",
    ),
    (400, Reason.MISSING_CHANNEL_ID): (
        _R,
        "The broadcast request has no apns-channel-id header: add it.",
    ),
    (400, Reason.BAD_CHANNEL_ID): (
        _R,
        "The apns-channel-id is badly encoded or too long: send the ID exactly as APNs "
        "returned it.",
    ),
    (400, Reason.CHANNEL_NOT_REGISTERED): (
        # Not DROP_TOKEN: a channel is per environment and never recreated, so a missing
        # one is far more often a wrong environment or a stale ID in the app's own records.
        _C,
        "The broadcast channel does not exist in this environment: check the environment, "
        "and forget the channel ID if it was deleted.",
    ),
    (400, Reason.BAD_REQUEST_PARAMS): (
        _R,
        "The broadcast request body has an unknown attribute: fix the request.",
    ),
    (400, Reason.BAD_REQUEST_PAYLOAD): (
        _R,
        "The broadcast request body is not valid JSON: fix the request.",
    ),
    (400, Reason.MISSING_PUSH_TYPE): (
        _R,
        "The broadcast request has no push type: set apns-push-type to liveactivity.",
    ),
    (400, Reason.CANNOT_CREATE_CHANNEL_CONFIG): (
        _C,
        "The channel limit (10,000 per environment) is reached: delete unused channels.",
    ),
    (400, Reason.MISSING_CHANNEL_QUEUE_SIZE): (
        _R,
        "The channel-creation body lacks message-storage-policy: add it (0 or 1).",
    ),
    (403, Reason.TOPIC_MISMATCH): (
        _C,
        "The bundle ID in the path is not covered by the JWT or certificate: fix the bundle "
        "ID or credentials.",
    ),
    (503, Reason.SERVICE_UNAVAILABLE_BROADCAST): (
        _X,
        "The broadcast service is unavailable: resend with backoff.",
    ),
}


#: FCM v1: (HTTP status, errorCode) -> (action, meaning). INVALID_ARGUMENT is a payload bug,
#: except when FCM says the registration token is invalid (see ``_invalid_fcm_token``).
FCM_TABLE: dict[tuple[int, str], tuple[Action, str]] = {
    (400, Reason.FCM_INVALID_ARGUMENT): (
        _R,
        "FCM refused the message as invalid (a field, its size, a reserved data key, the TTL): "
        "fix the message; the error body names the field.",
    ),
    (404, Reason.FCM_UNREGISTERED): (
        _T,
        "The app instance is unregistered (uninstalled, token expired or rotated): delete the "
        "token.",
    ),
    (403, Reason.FCM_SENDER_ID_MISMATCH): (
        _T,
        "The token belongs to another Firebase project: delete it for this project (or check "
        "the service account's project).",
    ),
    (429, Reason.FCM_QUOTA_EXCEEDED): (
        _X,
        "The project, device or topic sending rate was exceeded: back off at least a minute "
        "and send more slowly.",
    ),
    (503, Reason.FCM_UNAVAILABLE): (
        _X,
        "FCM is overloaded: resend after Retry-After with exponential backoff and jitter.",
    ),
    (500, Reason.FCM_INTERNAL): (_X, "FCM had an internal error: resend with backoff."),
    (401, Reason.FCM_THIRD_PARTY_AUTH_ERROR): (
        _C,
        "The APNs certificate/key or web push credentials in the Firebase project are invalid "
        "or missing: fix them in the Firebase console.",
    ),
    (401, Reason.FCM_APNS_AUTH_ERROR): (
        _C,
        "The APNs credentials in the Firebase project are invalid: fix them in the console.",
    ),
    (401, Reason.FCM_UNAUTHENTICATED): (
        _A,
        "The OAuth2 access token was refused (expired or revoked): get a new one and resend.",
    ),
    (400, Reason.FCM_UNSPECIFIED_ERROR): (_C, "FCM gave no detail: check the request and setup."),
    (500, Reason.FCM_UNSPECIFIED_ERROR): (_X, "FCM gave no detail: resend with backoff."),
}

#: Web Push (RFC 8030 push services; Apple's answers JSON reasons). 404/410 without a reason
#: reach here as ``SubscriptionGone`` (set by the Web Push client). Apple's ``Unregistered``,
#: ``PayloadTooLarge`` and ``TooManyRequests`` rows are the APNs ones.
WEBPUSH_TABLE: dict[tuple[int, str], tuple[Action, str]] = {
    (404, "SubscriptionGone"): (
        Action.DROP_TOKEN,
        "The push subscription no longer exists (404): delete it.",
    ),
    (410, "SubscriptionGone"): (
        Action.DROP_TOKEN,
        "The push subscription expired or the user unsubscribed (410): delete it.",
    ),
    (404, "BadDeviceToken"): (
        Action.DROP_TOKEN,
        "The push service does not know this subscription (404): delete it.",
    ),
    (403, "BadJwtToken"): (
        Action.FIX_CONFIG,
        "The push service refused the VAPID JWT (key, audience, expiry, or a mailto: subject "
        "at localhost for Apple): fix the VAPID key or subject.",
    ),
    (403, "ExpiredJwtToken"): (
        Action.RETRY_AFTER_AUTH,
        "The VAPID JWT expired: mint a new one and resend.",
    ),
    (400, "BadWebPushTopic"): (
        Action.FIX_PAYLOAD,
        "The Topic header is invalid (at most 32 base64url characters): fix it.",
    ),
    (400, "DecryptionFailed"): (
        Action.FIX_PAYLOAD,
        "The push service could not decrypt the message: check the subscription's keys.",
    ),
}

_INVALID_TOKEN_CLASSIFICATION = Classification(
    Action.DROP_TOKEN,
    Reason.FCM_INVALID_ARGUMENT,
    None,
    "FCM says the registration token is not valid: delete the token.",
)


def _invalid_fcm_token(result: ResultLike) -> bool:
    """INVALID_ARGUMENT whose message blames the registration token (not the payload)."""
    body = getattr(result, "body", None)
    if not isinstance(body, bytes):
        return False
    text = body.lower()
    return b"registration token" in text and b"not a valid" in text


# -- classify ---------------------------------------------------------------------------------

_DELIVERED_CLASSIFICATION = Classification(
    Action.DELIVERED,
    None,
    None,
    "APNs accepted the notification (which is not proof that it was displayed).",
)
_TIMEOUT_CLASSIFICATION = Classification(
    Action.RETRY,
    None,
    DEFAULT_BACKOFF_SECONDS,
    "No answer before the request timeout; APNs may have delivered it, so resending may "
    "duplicate the notification (an apns-collapse-id makes duplicates replace each other).",
)
_FAILED_SAFE_CLASSIFICATION = Classification(
    Action.RETRY,
    None,
    DEFAULT_BACKOFF_SECONDS,
    "The connection failed before APNs could process the request: resending is safe.",
)
_FAILED_MAYBE_DELIVERED_CLASSIFICATION = Classification(
    Action.RETRY,
    None,
    DEFAULT_BACKOFF_SECONDS,
    "The connection was lost after the request was sent; APNs may have delivered it, so "
    "resending may duplicate the notification.",
)

# Classifications of (status, reason) pairs, built on first use. Bounded, because reason
# strings come from the network and an endless variety of them must not grow memory.
_CACHE: dict[tuple[int, str | None], Classification] = {}
_CACHE_LIMIT = 1024
_MAX_REASON_IN_DESCRIPTION = 80


def classify(result: ResultLike) -> Classification:
    """Classify one result. Never raises, whatever the field values.

    Unknown reasons are kept (as strings) and classified by HTTP status; a non-string reason
    or a non-integer status is ignored as if absent.
    """
    outcome = result.outcome
    if outcome == "delivered" and result.reason is None:
        return _DELIVERED_CLASSIFICATION
    if outcome == "timeout" or outcome == "failed":
        return _no_response_classification(result)
    return _response_classification(result)


def _no_response_classification(result: ResultLike) -> Classification:
    # Only `maybe_delivered is False` is safe; anything else may have reached APNs.
    if result.outcome == "timeout":
        base = _TIMEOUT_CLASSIFICATION
    elif result.maybe_delivered is False:
        base = _FAILED_SAFE_CLASSIFICATION
    else:
        base = _FAILED_MAYBE_DELIVERED_CLASSIFICATION
    reason = _reason_string(result.reason)
    retry_after = _retry_after_seconds(result.retry_after)
    if reason is None and retry_after is None:
        return base
    return Classification(
        base.action,
        parse_reason(reason),
        base.retry_after if retry_after is None else retry_after,
        base.description,
    )


def _response_classification(result: ResultLike) -> Classification:
    status = result.status
    if result.reason == "INVALID_ARGUMENT" and _invalid_fcm_token(result):
        return _INVALID_TOKEN_CLASSIFICATION
    base = _classification_for(
        status if isinstance(status, int) else 0, _reason_string(result.reason)
    )
    if base.action is Action.DROP_TOKEN:
        timestamp_ms = result.timestamp_ms
        if isinstance(timestamp_ms, int) and not isinstance(timestamp_ms, bool):
            return Classification(base.action, base.reason, None, base.description, timestamp_ms)
        return base
    if base.retry_after is not None:
        header = _retry_after_seconds(result.retry_after)
        if header is not None and header != base.retry_after:
            return Classification(base.action, base.reason, header, base.description)
    return base


def _reason_string(reason: object) -> str | None:
    return reason if isinstance(reason, str) else None


def _retry_after_seconds(value: object) -> float | None:
    """A usable ``retry-after`` value in seconds, or None for absent or nonsensical ones."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _classification_for(status: int, reason: str | None) -> Classification:
    key = (status, reason)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _build_classification(status, reason)
        if len(_CACHE) < _CACHE_LIMIT:
            _CACHE[key] = cached
    return cached


def _build_classification(status: int, reason: str | None) -> Classification:
    row = None
    if reason is not None:
        row = (
            APNS_TABLE.get((status, reason))
            or FCM_TABLE.get((status, reason))
            or WEBPUSH_TABLE.get((status, reason))
        )
    action, description = row if row is not None else _status_fallback(status, reason)
    return Classification(
        action, parse_reason(reason), _default_retry_after(action, status, reason), description
    )


def _default_retry_after(action: Action, status: int, reason: str | None) -> float | None:
    if reason == Reason.FCM_QUOTA_EXCEEDED and action in _RETRY_ACTIONS:
        return QUOTA_EXCEEDED_DELAY_SECONDS
    if action is Action.RETRY and status == 429:
        return TOO_MANY_REQUESTS_DELAY_SECONDS
    if action in _RETRY_ACTIONS:
        return DEFAULT_BACKOFF_SECONDS
    return None


def _status_fallback(status: int, reason: str | None) -> tuple[Action, str]:
    """Classify by HTTP status alone, for reasons the table does not know."""
    what = _describe_response(status, reason)
    if 200 <= status < 300:
        return Action.DELIVERED, f"{what}: APNs accepted the notification."
    if status in (400, 404, 405, 413):
        return Action.FIX_PAYLOAD, f"{what}: the request is malformed; fix it before resending."
    if status == 403:
        return Action.FIX_CONFIG, f"{what}: credentials or permissions are wrong; fix the setup."
    if status == 410:
        return (
            Action.DROP_TOKEN,
            f"{what}: the token is no longer valid; delete it unless re-registered after the "
            "timestamp.",
        )
    if status == 429:
        return Action.RETRY, f"{what}: rate limited; resend later."
    if 500 <= status < 600:
        return Action.RETRY, f"{what}: APNs-side error; resend with backoff."
    return (
        Action.FIX_CONFIG,
        f"{what}: not an APNs status; check the server URL, proxy or environment.",
    )


def _describe_response(status: int, reason: str | None) -> str:
    if reason is None:
        return f"HTTP {_status_text(status)} without a reason"
    return f"HTTP {_status_text(status)} with unrecognised reason {_quoted(reason)}"


def _quoted(reason: str) -> str:
    # Bounded and escaped: the reason comes from the network and may be long or unprintable.
    shown = repr(reason)
    if len(shown) > _MAX_REASON_IN_DESCRIPTION:
        shown = shown[: _MAX_REASON_IN_DESCRIPTION - 3] + "..."
    return shown


def _reason_label(reason: object, status: object) -> str:
    if not isinstance(reason, str):
        return f"HTTP {_status_text(status)}"
    if reason in _REASONS_BY_VALUE:
        return reason
    return _quoted(reason)


def _status_text(status: object) -> str:
    # A huge int has no cheap str() (and Python caps it), so only plausible values are shown.
    if isinstance(status, int) and -(10**9) < status < 10**9:
        return str(status)
    return "(invalid status)"


# -- the 410 rule -----------------------------------------------------------------------------

#: A registration time: a datetime (naive ones are taken as UTC) or MILLISECONDS since the
#: epoch (int or float), like the APNs 410 timestamp. Not seconds.
RegisteredAt = Union[datetime, float]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MILLISECOND = timedelta(milliseconds=1)
# Epoch milliseconds outside this range are almost surely seconds (about 1.7e9 today) or
# microseconds (about 1.7e15): guessing wrong would delete live tokens, so refuse them.
_PLAUSIBLE_EPOCH_MS = (1e11, 1e14)  # 1973-03-03 .. 5138-11-16


def should_drop_token(result: ResultLike, last_registered_at: RegisteredAt | None) -> bool:
    """True if this result says to delete its token, given when the token was last registered.

    The token is dropped only when the result classifies as ``DROP_TOKEN`` and either it
    carries no 410 timestamp, or the token was last registered strictly before that
    timestamp (a later re-registration means the token is alive again).

    ``last_registered_at``:

    * a timezone-aware ``datetime``;
    * a naive ``datetime``, which is taken as **UTC** (not local time);
    * a number of **MILLISECONDS** since the Unix epoch, like the APNs ``timestamp``.
      Seconds are refused with ``ValueError`` rather than silently misread;
    * ``None`` when unknown: then the token is dropped.

    This looks at one result only; for a batch use :func:`tokens_to_drop`, which also
    withholds tokens when a burst of ``BadDeviceToken`` points at a configuration bug.
    """
    classification = classify(result)
    if classification.action is not Action.DROP_TOKEN:
        return False
    return _registered_before(last_registered_at, classification.drop_token_if_registered_before)


def _registered_before(last_registered_at: RegisteredAt | None, timestamp_ms: int | None) -> bool:
    if timestamp_ms is None or last_registered_at is None:
        return True
    return _epoch_milliseconds(last_registered_at) < timestamp_ms


def _epoch_milliseconds(moment: RegisteredAt) -> float:
    """``moment`` in milliseconds since the epoch; naive datetimes are UTC."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            moment = moment.replace(tzinfo=timezone.utc)
        # Floor division keeps this exact: floor(x) < n iff x < n for an integer n.
        return (moment - _EPOCH) // _ONE_MILLISECOND
    if isinstance(moment, bool) or not isinstance(moment, (int, float)):
        raise TypeError(
            "a registration time must be a datetime or epoch milliseconds, "
            f"not {type(moment).__name__}"
        )
    low, high = _PLAUSIBLE_EPOCH_MS
    if not low <= moment < high:  # also catches NaN
        raise ValueError(
            f"registration time {moment!r} is not plausible epoch MILLISECONDS "
            "(seconds? multiply by 1000, or pass a datetime)"
        )
    return moment


# -- burst detection --------------------------------------------------------------------------

# What one result contributes to the detector's window.
_UNANSWERED, _ANSWERED, _BAD_DEVICE_TOKEN, _NOT_FOR_TOPIC = range(4)


class BadTokenBurstDetector:
    """Spots bursts of ``BadDeviceToken`` that mean a wrong environment, not dead tokens.

    Feed it results with :meth:`observe`. Over the last ``window`` results, a mismatch is
    suspected when at least ``min_count`` are ``BadDeviceToken`` and they make up at least
    ``threshold_ratio`` of the answered ones (deliveries plus rejections; timeouts and
    connection failures don't count). ``DeviceTokenNotForTopic`` is tracked the same way and
    points at a wrong ``apns-topic`` instead.

    ``environment_mismatch_suspected`` reflects the current window; ``*_seen`` stays True once
    the condition held, until :meth:`reset`.
    """

    __slots__ = (
        "_counts",
        "_environment_mismatch_seen",
        "_min_count",
        "_recent",
        "_threshold_ratio",
        "_topic_mismatch_seen",
        "_window",
    )

    def __init__(
        self, threshold_ratio: float = 0.5, min_count: int = 20, window: int = 1000
    ) -> None:
        if not 0 < threshold_ratio <= 1:
            raise ValueError(f"threshold_ratio must be in (0, 1], got {threshold_ratio!r}")
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count!r}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window!r}")
        self._threshold_ratio = threshold_ratio
        self._min_count = min_count
        self._window = window
        self._recent: deque[int] = deque(maxlen=window)
        self._counts = [0, 0, 0, 0]
        self._environment_mismatch_seen = False
        self._topic_mismatch_seen = False

    def __repr__(self) -> str:
        return (
            f"BadTokenBurstDetector(threshold_ratio={self._threshold_ratio!r}, "
            f"min_count={self._min_count!r}, window={self._window!r})"
        )

    def observe(self, result: ResultLike) -> None:
        """Add one result to the window."""
        self._record(_burst_kind(result))

    def reset(self) -> None:
        """Forget everything observed (after fixing the configuration, say)."""
        self._recent.clear()
        self._counts = [0, 0, 0, 0]
        self._environment_mismatch_seen = False
        self._topic_mismatch_seen = False

    @property
    def environment_mismatch_suspected(self) -> bool:
        """The current window holds a burst of ``BadDeviceToken``."""
        return self._is_burst(self._counts[_BAD_DEVICE_TOKEN])

    @property
    def topic_mismatch_suspected(self) -> bool:
        """The current window holds a burst of ``DeviceTokenNotForTopic``."""
        return self._is_burst(self._counts[_NOT_FOR_TOPIC])

    @property
    def environment_mismatch_seen(self) -> bool:
        """A ``BadDeviceToken`` burst was suspected at some point since creation or reset."""
        return self._environment_mismatch_seen

    @property
    def topic_mismatch_seen(self) -> bool:
        """A ``DeviceTokenNotForTopic`` burst was suspected at some point."""
        return self._topic_mismatch_seen

    @property
    def bad_device_tokens_in_window(self) -> int:
        return self._counts[_BAD_DEVICE_TOKEN]

    @property
    def answered_in_window(self) -> int:
        counts = self._counts
        return counts[_ANSWERED] + counts[_BAD_DEVICE_TOKEN] + counts[_NOT_FOR_TOPIC]

    def _record(self, kind: int) -> None:
        self._step_each((kind,))

    def _record_all(self, kinds: Sequence[int]) -> None:
        """Add many results (as burst kinds) in order; what :func:`summarize` uses.

        Same answer as stepping through them one by one, but blocks of ``window`` results
        that cannot hold a burst are skipped over in C: a healthy 100k batch costs little.
        """
        window = self._window
        for start in range(0, len(kinds), window):
            block = kinds[start : start + window]
            block_counts = [block.count(kind) for kind in range(4)]
            if self._burst_possible_in(block_counts):
                self._step_each(block)
                continue
            self._recent.extend(block)
            if len(block) == window:
                self._counts = block_counts  # the block now fills the whole window
            else:
                self._counts = [self._recent.count(kind) for kind in range(4)]

    def _burst_possible_in(self, block_counts: list[int]) -> bool:
        """A cheap necessary condition for a new burst in some window ending inside a block.

        Every such window lies within ``recent + block`` and holds at least
        ``smallest_window`` results, so it has at most the span's suspicious results and at
        least ``smallest_window`` minus the span's unanswered ones answered.
        """
        span_counts = [old + new for old, new in zip(self._counts, block_counts, strict=True)]
        smallest_window = min(self._window, len(self._recent) + 1)
        fewest_answered = max(smallest_window - span_counts[_UNANSWERED], 0)
        for kind, seen in (
            (_BAD_DEVICE_TOKEN, self._environment_mismatch_seen),
            (_NOT_FOR_TOPIC, self._topic_mismatch_seen),
        ):
            most = span_counts[kind]
            if (
                not seen
                and most >= self._min_count
                and most >= self._threshold_ratio * fewest_answered
            ):
                return True
        return False

    def _step_each(self, kinds: Iterable[int]) -> None:
        recent, counts, window = self._recent, self._counts, self._window
        min_count, ratio = self._min_count, self._threshold_ratio
        environment_seen, topic_seen = self._environment_mismatch_seen, self._topic_mismatch_seen
        for kind in kinds:
            if len(recent) == window:
                counts[recent[0]] -= 1  # about to fall out of the deque
            recent.append(kind)
            counts[kind] += 1
            # Checked on every result: an eviction alone can push the ratio over the threshold.
            bad, not_for_topic = counts[_BAD_DEVICE_TOKEN], counts[_NOT_FOR_TOPIC]
            if bad >= min_count or not_for_topic >= min_count:
                answered = counts[_ANSWERED] + bad + not_for_topic
                environment_seen = environment_seen or (
                    bad >= min_count and bad >= ratio * answered
                )
                topic_seen = topic_seen or (
                    not_for_topic >= min_count and not_for_topic >= ratio * answered
                )
        self._environment_mismatch_seen = environment_seen
        self._topic_mismatch_seen = topic_seen

    def _is_burst(self, suspicious: int) -> bool:
        return (
            suspicious >= self._min_count
            and suspicious >= self._threshold_ratio * self.answered_in_window
        )


def _burst_kind(result: ResultLike) -> int:
    outcome = result.outcome
    if outcome == "delivered":
        return _ANSWERED
    if outcome != "rejected":
        return _UNANSWERED
    reason = result.reason
    if reason == "BadDeviceToken":
        return _BAD_DEVICE_TOKEN
    if reason == "DeviceTokenNotForTopic":
        return _NOT_FOR_TOPIC
    return _ANSWERED


# -- batches ----------------------------------------------------------------------------------


@dataclass
class Summary:
    """Counts and decisions for a batch of results.

    ``by_outcome`` and ``by_action`` each add up to ``total``; ``by_reason`` counts only the
    results that carry a reason. ``tokens_to_drop`` is in input order and leaves out tokens
    withheld by the burst rule; it does not know registration times (see
    :func:`tokens_to_drop`). ``retryable`` holds the ``Result.index`` of every ``RETRY`` and
    ``RETRY_AFTER_AUTH`` result.
    """

    total: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)
    tokens_to_drop: list[TokenToDrop] = field(default_factory=list)
    retryable: list[int] = field(default_factory=list)
    environment_mismatch_suspected: bool = False
    topic_mismatch_suspected: bool = False
    warnings: list[str] = field(default_factory=list)


# Actions whose results are worth a warning, grouped by reason, with what to say about them.
_PROBLEM_WARNINGS: dict[Action, str] = {
    Action.FIX_CONFIG: (
        "Configuration problem for {count} ({reasons}): fix the setup; tokens were kept and "
        "resending fails until then."
    ),
    Action.RETRY_AFTER_AUTH: (
        "Provider-auth errors for {count} ({reasons}): fix the JWT or connection, then resend "
        "them (they are in retryable)."
    ),
    Action.FIX_PAYLOAD: (
        "Malformed requests for {count} ({reasons}): fix or drop them; resending them as is "
        "fails again."
    ),
}


def summarize(
    results: Iterable[ResultLike], *, detector: BadTokenBurstDetector | None = None
) -> Summary:
    """Count a batch of results and decide which tokens to drop and which results to retry.

    When a burst of ``BadDeviceToken`` is seen (see :class:`BadTokenBurstDetector`; pass your
    own ``detector`` to change its thresholds or to carry state across batches), those tokens
    are left out of ``tokens_to_drop`` and ``environment_mismatch_suspected`` is set with a
    warning: thousands of "bad" tokens at once mean a wrong environment, not dead tokens.
    ``DeviceTokenNotForTopic`` bursts are handled the same way (``topic_mismatch_suspected``).
    """
    detector = BadTokenBurstDetector() if detector is None else detector
    outcomes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    actions: dict[Action, int] = {}
    drop_candidates: list[tuple[TokenToDrop, int]] = []
    retryable: list[int] = []
    problems: dict[Action, dict[str, int]] = {action: {} for action in _PROBLEM_WARNINGS}
    may_duplicate = 0
    kinds = bytearray()  # burst kinds, one byte each, fed to the detector after the loop
    delivered = 0
    for result in results:
        classification = classify(result)
        if classification is _DELIVERED_CLASSIFICATION:
            delivered += 1  # the common case: counted without touching the dicts
            kinds.append(_ANSWERED)
            continue
        kind = _burst_kind(result)
        kinds.append(kind)
        outcome = result.outcome
        if not isinstance(outcome, str):
            outcome = _outcome_key(outcome)  # may be unhashable
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        reason = result.reason
        if isinstance(reason, str):
            reasons[reason] = reasons.get(reason, 0) + 1
        action = classification.action
        actions[action] = actions.get(action, 0) + 1
        if action is Action.DELIVERED:
            continue
        if action is Action.DROP_TOKEN:
            drop_candidates.append((_token_to_drop(result, classification), kind))
            continue
        if action in _RETRY_ACTIONS:
            retryable.append(result.index)
            may_duplicate += _may_duplicate(result)
        if action in problems:
            label = _reason_label(reason, result.status)
            group = problems[action]
            group[label] = group.get(label, 0) + 1

    total = len(kinds)
    if delivered:
        outcomes[Outcome.DELIVERED] = outcomes.get(Outcome.DELIVERED, 0) + delivered
        actions[Action.DELIVERED] = actions.get(Action.DELIVERED, 0) + delivered
    detector._record_all(kinds)
    environment_suspected = detector.environment_mismatch_seen
    topic_suspected = detector.topic_mismatch_seen
    withheld = {_BAD_DEVICE_TOKEN: 0, _NOT_FOR_TOPIC: 0}
    tokens: list[TokenToDrop] = []
    for token, kind in drop_candidates:
        if (kind == _BAD_DEVICE_TOKEN and environment_suspected) or (
            kind == _NOT_FOR_TOPIC and topic_suspected
        ):
            withheld[kind] += 1
        else:
            tokens.append(token)

    warnings: list[str] = []
    if environment_suspected:
        warnings.append(_environment_warning(withheld[_BAD_DEVICE_TOKEN], total))
    if topic_suspected:
        warnings.append(_topic_warning(withheld[_NOT_FOR_TOPIC], total))
    for action, template in _PROBLEM_WARNINGS.items():
        if problems[action]:
            warnings.append(_problem_warning(template, problems[action]))
    if may_duplicate:
        warnings.append(
            f"No answer but possibly delivered for {_notifications(may_duplicate)}: "
            "resending them (they are in retryable) may show duplicates."
        )
    return Summary(
        total=total,
        by_outcome=_outcome_counts(outcomes),
        by_reason=reasons,
        by_action={action.value: actions[action] for action in Action if action in actions},
        tokens_to_drop=tokens,
        retryable=retryable,
        environment_mismatch_suspected=environment_suspected,
        topic_mismatch_suspected=topic_suspected,
        warnings=warnings,
    )


def tokens_to_drop(
    results: Iterable[ResultLike],
    registered_at: Mapping[str, RegisteredAt] | None = None,
) -> list[TokenToDrop]:
    """The tokens to delete from a batch, in input order.

    Applies the burst rule of :func:`summarize` and, when ``registered_at`` maps tokens to
    their last registration time, the 410 rule of :func:`should_drop_token`: a token
    re-registered at or after its 410 timestamp is kept. Times are datetimes (naive = UTC) or
    epoch MILLISECONDS; tokens missing from the mapping are dropped.
    """
    candidates = summarize(results).tokens_to_drop
    if registered_at is None:
        return candidates
    return [
        candidate
        for candidate in candidates
        if _registered_before(registered_at.get(candidate.token), candidate.timestamp_ms)
    ]


def _token_to_drop(result: ResultLike, classification: Classification) -> TokenToDrop:
    return TokenToDrop(
        result.token, classification.reason, classification.drop_token_if_registered_before
    )


def _may_duplicate(result: ResultLike) -> bool:
    outcome = result.outcome
    return outcome == "timeout" or (outcome == "failed" and result.maybe_delivered is not False)


def _outcome_counts(outcomes: dict[str, int]) -> dict[str, int]:
    # Known outcomes first, in their documented order (raw strings and members share keys).
    ordered = {outcome.value: outcomes[outcome] for outcome in Outcome if outcome in outcomes}
    ordered.update((key, n) for key, n in outcomes.items() if key not in ordered)
    return ordered


def _outcome_key(outcome: object) -> str:
    if isinstance(outcome, Outcome):
        return outcome.value
    return outcome if isinstance(outcome, str) else repr(outcome)


def _environment_warning(withheld: int, total: int) -> str:
    return (
        f"Burst of BadDeviceToken ({withheld} of {total} results), the signature of a sandbox "
        "token sent to production (or vice versa): check environment=... on the client "
        "('production' or 'sandbox') against the app build that registered the tokens. "
        "These tokens were NOT put in tokens_to_drop."
    )


def _topic_warning(withheld: int, total: int) -> str:
    return (
        f"Burst of DeviceTokenNotForTopic ({withheld} of {total} results), the signature of a "
        "wrong apns-topic (bundle ID or push-type suffix such as .voip or "
        ".push-type.liveactivity), not dead tokens. These tokens were NOT put in "
        "tokens_to_drop."
    )


def _problem_warning(template: str, by_label: dict[str, int]) -> str:
    ranked = sorted(by_label.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{label}: {count}" for label, count in ranked[:5])
    if len(ranked) > 5:
        shown += ", ..."
    return template.format(count=_notifications(sum(by_label.values())), reasons=shown)


def _notifications(count: int) -> str:
    return f"{count} notification" if count == 1 else f"{count} notifications"
