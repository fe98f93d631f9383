"""FCM HTTP v1 messages (protocol.md §4.2): built and validated once, encoded once.

A message without a target is a template for many tokens (``send_to_tokens``, or
``Notification(token, message)``); a message with ``topic`` or ``condition`` (or one
``token``) is sent on its own with ``client.send(message)``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any, Literal, Union

import msgspec

from . import _core
from ._errors import PayloadError
from ._message import Message

#: FCM's payload limit (keys plus values).
MAX_PAYLOAD = 4096
#: Room kept for the token spliced into each request (FCM tokens are ~160 characters).
TOKEN_ALLOWANCE = 256
SEND_PATH = "/messages:send"
_TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]+$")
_RESERVED_EXACT = frozenset({"from", "message_type"})
_RESERVED_PREFIXES = ("google.", "gcm.notification.")

_encoder = msgspec.json.Encoder()


class FCMNotification(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """The basic notification shown on every platform."""

    title: str | None = None
    body: str | None = None
    image: str | None = None


class AndroidNotification(msgspec.Struct, omit_defaults=True):
    title: str | None = None
    body: str | None = None
    icon: str | None = None
    color: str | None = None
    sound: str | None = None
    tag: str | None = None
    click_action: str | None = None
    channel_id: str | None = None
    image: str | None = None


class FcmOptions(msgspec.Struct, omit_defaults=True):
    analytics_label: str | None = None


class AndroidConfig(msgspec.Struct, omit_defaults=True):
    collapse_key: str | None = None
    priority: Literal["NORMAL", "HIGH"] | None = None
    #: A JSON duration such as ``"3.5s"``; seconds or a timedelta are converted.
    ttl: Union[str, float, int, _dt.timedelta, None] = None
    restricted_package_name: str | None = None
    data: dict[str, str] | None = None
    notification: AndroidNotification | None = None
    fcm_options: FcmOptions | None = None
    direct_boot_ok: bool | None = None


class ApnsFcmOptions(msgspec.Struct, omit_defaults=True):
    analytics_label: str | None = None
    image: str | None = None


class ApnsConfig(msgspec.Struct, omit_defaults=True):
    """APNs settings for iOS devices reached through FCM. ``payload`` may be a pushwire
    :class:`Message` (its encoded payload is reused) or a dict with ``aps``."""

    headers: dict[str, str] | None = None
    payload: Union[dict[str, Any], Message, None] = None
    fcm_options: ApnsFcmOptions | None = None
    live_activity_token: str | None = None


class WebpushFcmOptions(msgspec.Struct, omit_defaults=True):
    link: str | None = None
    analytics_label: str | None = None


class WebpushConfig(msgspec.Struct, omit_defaults=True):
    headers: dict[str, str] | None = None
    data: dict[str, str] | None = None
    notification: dict[str, Any] | None = None
    fcm_options: WebpushFcmOptions | None = None


def _fail(message: str, field: str) -> PayloadError:
    return PayloadError(f"{field}: {message}", field=field)


def _check_data(data: Mapping[str, Any] | None, field: str) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise _fail("must be a mapping of strings to strings", field)
    for key, value in data.items():
        if not isinstance(key, str):
            raise _fail(f"key {key!r} is not a string", field)
        if key in _RESERVED_EXACT or key.startswith(_RESERVED_PREFIXES):
            raise _fail(
                f"key {key!r} is reserved by FCM (from, message_type, google.*, "
                "gcm.notification.*)",
                f"{field}.{key}",
            )
        if not isinstance(value, str):
            raise _fail(
                f"value is {type(value).__name__}; FCM data values must be strings "
                "(encode numbers and JSON yourself)",
                f"{field}.{key}",
            )


def _ttl(value: Union[str, float, int, _dt.timedelta]) -> str:
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool):
        raise _fail("must be a duration such as '3600s'", "android.ttl")
    if isinstance(value, (int, float)):
        if not 0 <= value <= 2_419_200:
            raise _fail("must be between 0 and 2,419,200 seconds (4 weeks)", "android.ttl")
        text = f"{value:.9f}".rstrip("0").rstrip(".")
        return f"{text}s"
    if isinstance(value, str) and _TTL.match(value):
        return value
    raise _fail(f"{value!r} is not a duration such as '3.5s'", "android.ttl")


def _android(android: AndroidConfig) -> dict[str, Any]:
    _check_data(android.data, "android.data")
    out: dict[str, Any] = _builtins(android, "android")
    if android.ttl is not None:
        out["ttl"] = _ttl(android.ttl)
    return out


def _check_headers(headers: Mapping[str, Any] | None, field: str) -> None:
    if headers is None:
        return
    if not isinstance(headers, Mapping):
        raise _fail("must be a mapping of header names to values", field)
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise _fail("header names and values must be strings", f"{field}.{name}")
        if any(c in value for c in "\r\n\0"):
            raise _fail("header values must not hold CR, LF or NUL", f"{field}.{name}")


def _of_type(value: Any, kind: type, field: str) -> None:
    if not isinstance(value, kind):
        raise _fail(f"must be a pushwire.{kind.__name__}, got {type(value).__name__}", field)


def _builtins(value: Any, field: str) -> Any:
    try:
        return msgspec.to_builtins(value)
    except (TypeError, ValueError, msgspec.EncodeError) as e:
        raise _fail(f"cannot be encoded as JSON: {e}", field) from None


def _apns(apns: ApnsConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if apns.headers is not None:
        _check_headers(apns.headers, "apns.headers")
        collapse_id = next(
            (v for k, v in apns.headers.items() if k.lower() == "apns-collapse-id"), None
        )
        if collapse_id is not None and len(collapse_id.encode("utf-8", "replace")) > 64:
            # FCM passes it on to APNs, which refuses the message (BadCollapseId).
            raise _fail(
                f"is {len(collapse_id.encode('utf-8', 'replace'))} bytes; APNs allows 64",
                "apns.headers.apns-collapse-id",
            )
        out["headers"] = dict(apns.headers)
    if isinstance(apns.payload, Message):
        out["payload"] = msgspec.Raw(apns.payload.payload)
    elif apns.payload is not None:
        if not isinstance(apns.payload, dict) or "aps" not in apns.payload:
            raise _fail("must be an APNs payload with an 'aps' dictionary", "apns.payload")
        out["payload"] = apns.payload
    if apns.fcm_options is not None:
        out["fcm_options"] = msgspec.to_builtins(apns.fcm_options)
    if apns.live_activity_token is not None:
        out["live_activity_token"] = apns.live_activity_token
    return out


class FCMMessage:
    """An FCM v1 message. Give at most one target: none (a template for many tokens),
    ``token``, ``topic`` (without ``/topics/``) or ``condition``."""

    __slots__ = ("_template", "encoded", "target", "target_kind", "validate_only")

    def __init__(
        self,
        *,
        token: str | None = None,
        topic: str | None = None,
        condition: str | None = None,
        notification: FCMNotification | None = None,
        data: Mapping[str, str] | None = None,
        android: AndroidConfig | None = None,
        apns: ApnsConfig | None = None,
        webpush: WebpushConfig | None = None,
        analytics_label: str | None = None,
        validate_only: bool = False,
    ) -> None:
        targets = {
            k: v
            for k, v in (("token", token), ("topic", topic), ("condition", condition))
            if v is not None
        }
        if len(targets) > 1:
            raise _fail(f"give one target, not {' and '.join(targets)}", "message.target")
        body: dict[str, Any] = {}
        if notification is not None:
            _of_type(notification, FCMNotification, "notification")
            body["notification"] = _builtins(notification, "notification")
        if data is not None:
            _check_data(data, "data")
            body["data"] = dict(data)
        if android is not None:
            _of_type(android, AndroidConfig, "android")
            body["android"] = _android(android)
        if apns is not None:
            _of_type(apns, ApnsConfig, "apns")
            body["apns"] = _apns(apns)
        if webpush is not None:
            _of_type(webpush, WebpushConfig, "webpush")
            _check_data(webpush.data, "webpush.data")
            _check_headers(webpush.headers, "webpush.headers")
            body["webpush"] = _builtins(webpush, "webpush")
        if analytics_label is not None:
            body["fcm_options"] = {"analytics_label": analytics_label}
        try:
            encoded = _encoder.encode(body)
        except (TypeError, msgspec.EncodeError) as e:
            raise PayloadError(f"message cannot be encoded as JSON: {e}", field="message") from None
        if len(encoded) + TOKEN_ALLOWANCE > MAX_PAYLOAD:
            raise _fail(
                f"is {len(encoded)} bytes; FCM allows {MAX_PAYLOAD} including the target",
                "message",
            )
        self.encoded = encoded
        self.validate_only = validate_only
        self.target_kind: str | None = None
        self.target: str | None = None
        if targets:
            ((self.target_kind, self.target),) = targets.items()
        self._template = self._build_template()

    def _build_template(self) -> _core.Template:
        headers = [("content-type", "application/json; charset=UTF-8")]
        prefix = b'{"validate_only":true,"message":{' if self.validate_only else b'{"message":{'
        rest = self.encoded[1:-1]  # the message's fields without braces
        if self.target_kind in (None, "token"):
            after = b'"' + (b"," + rest if rest else b"") + b"}}"
            template = _core.Template.body_splice(
                SEND_PATH, headers, prefix + b'"token":"', after, "opaque"
            )
            return template
        if self.target_kind == "topic" and not _TOPIC.match(str(self.target)):
            raise _fail("topic names use letters, digits and -_.~% only", "message.topic")
        target = _encoder.encode({self.target_kind: self.target})[1:-1]
        body = prefix + target + (b"," + rest if rest else b"") + b"}}"
        return _core.Template.fixed(SEND_PATH, headers, body)

    def __repr__(self) -> str:
        target = f"{self.target_kind}={self.target!r}" if self.target_kind else "no target"
        return f"FCMMessage({target}, {len(self.encoded)}B)"


def as_item(message: FCMMessage) -> tuple[str, FCMMessage, None]:
    """The engine item of a message sent on its own (``client.send(message)``)."""
    if message.target is None:
        raise _fail(
            "has no target: give token=, topic= or condition=, or use send_to_tokens()",
            "message.target",
        )
    return (message.target, message, None)
