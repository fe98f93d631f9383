"""Checks on everything written to the store, before any SQL runs: a bad row raises a
:class:`StoreInputError` naming the field, and nothing is written."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from .. import _core
from .._errors import PayloadError
from .errors import InvalidSubscriptionError, InvalidTokenError, StoreInputError
from .model import AttributeValue, Provider

#: The engine's limit (rust/core request.rs): no provider issues longer tokens.
MAX_TOKEN_LENGTH = 1024
MAX_USER_ID_LENGTH = 256
MAX_NAME_LENGTH = 128
#: Custom data is for small per-device facts (app version, locale), not documents.
MAX_DATA_BYTES = 16 * 1024
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUES = 100
MAX_ATTRIBUTE_VALUE_LENGTH = 1024
APNS_ENVIRONMENTS = ("production", "sandbox")

_HEX = re.compile(r"[0-9a-fA-F]+")
# What the engine sends for FCM: printable ASCII without space, quote, backslash or slash.
_OPAQUE = re.compile(r"[!#-.0-\[\]-~]+")
# Attribute keys end up in JSON paths and SQL parameters: keep them plain.
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
#: Web Push subscription keys (RFC 8291): an uncompressed P-256 point and a 16-byte secret.
P256DH_BYTES = 65
AUTH_BYTES = 16


def normalize_token(provider: Provider, token: object, index: int | None = None) -> str:
    """The token as stored: APNs tokens are hex and stored lowercase (one spelling per
    device), FCM tokens are opaque and kept as given."""
    if not isinstance(token, str):
        raise InvalidTokenError(
            f"token must be a string, not {type(token).__name__}", field="token", index=index
        )
    if not token:
        raise InvalidTokenError("token is empty", field="token", index=index)
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(
            f"token is {len(token)} characters long (limit {MAX_TOKEN_LENGTH})",
            field="token",
            index=index,
        )
    shown = repr(token if len(token) <= 80 else token[:80] + "...")
    if provider is Provider.WEBPUSH:
        return check_endpoint_url(token, index)
    if provider is Provider.APNS:
        if not _HEX.fullmatch(token) or len(token) % 2:
            raise InvalidTokenError(
                f"APNs token {shown} is malformed: APNs device tokens are hexadecimal bytes "
                "(an even number of 0-9, a-f)",
                field="token",
                index=index,
            )
        return token.lower()
    if not _OPAQUE.fullmatch(token):
        raise InvalidTokenError(
            f"FCM token {shown} is malformed: registration tokens are printable ASCII without "
            "spaces, quotes, '/' or '\\'",
            field="token",
            index=index,
        )
    return token


def check_endpoint_url(endpoint: object, index: int | None = None) -> str:
    """A Web Push subscription's endpoint URL, checked as the engine will send to it:
    ``https://host[:port]/path`` in visible ASCII. Kept exactly as given (paths are
    case-sensitive)."""
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidSubscriptionError(
            "subscription endpoint must be a non-empty https:// URL", field="endpoint", index=index
        )
    if len(endpoint) > MAX_TOKEN_LENGTH:
        raise InvalidSubscriptionError(
            f"subscription endpoint is {len(endpoint)} characters long (limit {MAX_TOKEN_LENGTH})",
            field="endpoint",
            index=index,
        )
    try:
        _core.webpush_split_endpoint(endpoint)
    except PayloadError as e:
        raise InvalidSubscriptionError(
            f"subscription endpoint {e}", field="endpoint", index=index
        ) from None
    return endpoint


def _decode_key(name: str, value: object, size: int, index: int | None) -> bytes:
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise InvalidSubscriptionError(
            f"subscription keys.{name} must be base64url text (A-Z a-z 0-9 - _), as the "
            "browser's PushSubscription.toJSON() gives it",
            field=name,
            index=index,
        )
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise InvalidSubscriptionError(
            f"subscription keys.{name} decodes to {len(raw)} bytes; it must be {size}",
            field=name,
            index=index,
        )
    return raw


def check_subscription_keys(
    p256dh: object, auth: object, index: int | None = None
) -> tuple[str, str]:
    """A subscription's keys as stored (base64url without padding): ``p256dh`` the
    browser's P-256 public key (65 bytes, uncompressed, on the curve), ``auth`` its 16-byte
    secret."""
    point = _decode_key("p256dh", p256dh, P256DH_BYTES, index)
    try:
        if point[0] != 4:
            raise ValueError
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidSubscriptionError(
            "subscription keys.p256dh is not an uncompressed P-256 public key "
            "(0x04, then a point on the curve)",
            field="p256dh",
            index=index,
        ) from None
    _decode_key("auth", auth, AUTH_BYTES, index)
    assert isinstance(p256dh, str) and isinstance(auth, str)
    return p256dh.rstrip("="), auth.rstrip("=")


def subscription_fields(
    subscription: object, index: int | None = None
) -> tuple[str, object, object]:
    """(endpoint, p256dh, auth) of a WebPushSubscription or the browser's
    ``PushSubscription.toJSON()`` (a mapping or its JSON text); the values are checked later."""
    from ..webpush import WebPushSubscription

    if isinstance(subscription, WebPushSubscription):
        return subscription.endpoint, subscription.p256dh, subscription.auth
    if isinstance(subscription, str):
        try:
            subscription = json.loads(subscription)
        except ValueError:
            raise InvalidSubscriptionError(
                "subscription is not valid JSON", field="subscription", index=index
            ) from None
    if not isinstance(subscription, Mapping):
        raise InvalidSubscriptionError(
            "subscription must be PushSubscription JSON: "
            '{"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}',
            field="subscription",
            index=index,
        )
    keys = subscription.get("keys")
    if not isinstance(keys, Mapping):
        raise InvalidSubscriptionError(
            'subscription has no "keys": {"p256dh": ..., "auth": ...}', field="keys", index=index
        )
    endpoint = check_endpoint_url(subscription.get("endpoint"), index)
    return endpoint, keys.get("p256dh"), keys.get("auth")


def check_user_id(user_id: object, index: int | None = None) -> str | None:
    if user_id is None:
        return None
    if not isinstance(user_id, str) or not user_id:
        raise StoreInputError("user_id must be a non-empty string", field="user_id", index=index)
    if len(user_id) > MAX_USER_ID_LENGTH or _CONTROL.search(user_id):
        raise StoreInputError(
            f"user_id must be at most {MAX_USER_ID_LENGTH} characters without control characters",
            field="user_id",
            index=index,
        )
    return user_id


def check_data(data: object, index: int | None = None) -> dict[str, Any] | None:
    """Custom data: a JSON object of at most 16 KiB."""
    if data is None:
        return None
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise StoreInputError("data must be a mapping with string keys", field="data", index=index)
    try:
        encoded = json.dumps(dict(data), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreInputError(
            f"data cannot be stored as JSON: {e}", field="data", index=index
        ) from None
    if len(encoded.encode()) > MAX_DATA_BYTES:
        raise StoreInputError(
            f"data is {len(encoded.encode())} bytes as JSON (limit {MAX_DATA_BYTES})",
            field="data",
            index=index,
        )
    result: dict[str, Any] = json.loads(encoded)  # a plain copy, exactly what is stored
    return result


def check_attributes(
    attributes: object, index: int | None = None
) -> dict[str, AttributeValue] | None:
    """Segmentation attributes: ``{key: "value" | ["v1", "v2"]}``, strings only, so that a
    filter matches the same way in SQLite and PostgreSQL."""
    if attributes is None:
        return None
    if not isinstance(attributes, Mapping):
        raise StoreInputError(
            "attributes must be a mapping of names to strings or lists of strings",
            field="attributes",
            index=index,
        )
    if len(attributes) > MAX_ATTRIBUTES:
        raise StoreInputError(
            f"at most {MAX_ATTRIBUTES} attributes per endpoint", field="attributes", index=index
        )
    checked: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        checked[check_attribute_key(key, index)] = _attribute_value(key, value, index)
    return checked


def check_attribute_key(key: object, index: int | None = None) -> str:
    if not isinstance(key, str) or not _ATTRIBUTE_KEY.fullmatch(key):
        raise StoreInputError(
            f"attribute name {key!r} must be 1-64 characters of A-Z a-z 0-9 _ . : -",
            field="attributes",
            index=index,
        )
    return key


def _attribute_value(key: str, value: object, index: int | None) -> AttributeValue:
    field = f"attributes.{key}"
    if isinstance(value, str):
        _check_attribute_string(value, field, index)
        return value
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ATTRIBUTE_VALUES:
            raise StoreInputError(
                f"{field} has more than {MAX_ATTRIBUTE_VALUES} values", field=field, index=index
            )
        for item in value:
            if not isinstance(item, str):
                raise StoreInputError(
                    f"{field} must hold strings only, not {type(item).__name__}",
                    field=field,
                    index=index,
                )
            _check_attribute_string(item, field, index)
        return list(value)
    raise StoreInputError(
        f"{field} must be a string or a list of strings, not {type(value).__name__}",
        field=field,
        index=index,
    )


def _check_attribute_string(value: str, field: str, index: int | None) -> None:
    if len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
        raise StoreInputError(
            f"{field} values are limited to {MAX_ATTRIBUTE_VALUE_LENGTH} characters",
            field=field,
            index=index,
        )


def check_name(name: object, field: str = "application") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise StoreInputError(
            f"{field} name {name!r} must be 1-{MAX_NAME_LENGTH} characters of A-Z a-z 0-9 _ . : -",
            field=field,
        )
    return name


def check_provider(provider: object) -> Provider:
    try:
        return Provider(provider)
    except ValueError:
        raise StoreInputError(
            f"provider must be 'apns', 'fcm' or 'webpush', not {provider!r}", field="provider"
        ) from None


def check_application_settings(
    provider: Provider,
    environment: str | None,
    topic: str | None,
    project_id: str | None,
) -> tuple[str | None, str | None, str | None]:
    """(environment, topic, project_id) as stored: each provider needs its own fields."""
    if provider is Provider.APNS:
        environment = environment or "production"
        if environment not in APNS_ENVIRONMENTS:
            raise StoreInputError(
                f"environment must be 'production' or 'sandbox', not {environment!r}",
                field="environment",
            )
        if not isinstance(topic, str) or not topic or _CONTROL.search(topic):
            raise StoreInputError(
                "an APNs application needs its topic (the app's bundle id)", field="topic"
            )
        if project_id is not None:
            raise StoreInputError("project_id is for FCM applications", field="project_id")
        return environment, topic, None
    if provider is Provider.WEBPUSH:
        for name, value in (
            ("environment", environment),
            ("topic", topic),
            ("project_id", project_id),
        ):
            if value is not None:
                raise StoreInputError(
                    f"{name} is not a Web Push setting (the VAPID key and subject are in "
                    "credentials_ref: vapid:KEY.pem?subject=mailto:...)",
                    field=name,
                )
        return None, None, None
    if environment is not None or topic is not None:
        raise StoreInputError(
            "environment and topic are for APNs applications (FCM has one environment)",
            field="environment" if environment is not None else "topic",
        )
    if project_id is not None and (
        not isinstance(project_id, str) or not project_id or "/" in project_id
    ):
        raise StoreInputError("project_id is empty or malformed", field="project_id")
    return None, None, project_id
