"""Turning `pushwire send` input rows into notifications.

The message comes from ``--payload FILE.json`` (a full APNs payload, or FCM message fields),
then the flags (``--title``, ``--badge``...), then the row's own fields, each layer overriding
the one before. Rows with the same per-row fields share one :class:`Message` /
:class:`FCMMessage`, validated and encoded once: one payload to a million tokens costs one
encoding. The cache is bounded, so fully personalised inputs don't grow memory.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import msgspec

from .._errors import PayloadError
from .._message import Message, Notification
from ..fcm import (
    AndroidConfig,
    AndroidNotification,
    ApnsConfig,
    ApnsFcmOptions,
    FCMMessage,
    FCMNotification,
    FcmOptions,
    WebpushConfig,
    WebpushFcmOptions,
)
from .config import load_mapping
from .errors import CLIError
from .input import Row

#: Row fields that change the payload; ``apns_id`` changes only the notification.
APNS_ROW_FIELDS = frozenset({"title", "body", "badge", "sound", "custom", "collapse_id"})
FCM_ROW_FIELDS = frozenset({"title", "body", "badge", "sound", "data", "collapse_id"})
_HINTS = {
    ("apns", "data"): "APNs rows put extra keys in 'custom'",
    ("fcm", "custom"): "FCM rows put extra keys in 'data'",
    ("fcm", "apns_id"): "apns_id is for APNs only",
}
_FCM_MESSAGE_KEYS = ("notification", "data", "android", "apns", "webpush", "fcm_options")
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]+")
#: FCM registration tokens: printable ASCII without spaces, quotes, '/' or '\\'.
_FCM_TOKEN = re.compile(r"[!#-.0-\[\]-~]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
#: The engine's limit on token length.
MAX_TOKEN_LENGTH = 1024
#: Distinct row payloads kept encoded at once.
CACHE_SIZE = 4096

AnyMessage = Union[Message, FCMMessage]
OnUnknownField = Callable[[str, str], None]


class RowError(Exception):
    """A row that cannot become a notification; the message says why."""


@dataclass(frozen=True)
class PayloadFlags:
    """The payload-related command-line flags."""

    title: str | None = None
    body: str | None = None
    badge: int | None = None
    sound: str | None = None
    push_type: str | None = None
    priority: int | None = None
    topic: str | None = None
    collapse_id: str | None = None
    expiration: int | None = None


def read_payload_file(path: Path | None) -> dict[str, Any]:
    """``--payload FILE.json``: one JSON object; errors name the file and the line."""
    if path is None:
        return {}
    try:
        return load_mapping(path)
    except OSError as e:
        raise CLIError(
            f"cannot read payload file {path}: {e.strerror or e}; check the --payload path"
        ) from None


def _check_text(value: object, field: str) -> None:
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be a string, not {type(value).__name__}", field=field)


def _check_badge(value: object) -> None:
    if type(value) is not int or value < 0:
        raise PayloadError(f"badge must be a whole number >= 0, not {value!r}", field="badge")


def _check_object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{field} must be a JSON object", field=field)
    return value


def apns_payload(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``title``/``body``/``badge``/``sound``/``custom`` applied (not mutated)."""
    payload = dict(base)
    aps = dict(_check_object(payload.get("aps", {}), "aps"))
    title, body = fields.get("title"), fields.get("body")
    if title is not None or body is not None:
        alert = aps.get("alert")
        alert = {"body": alert} if isinstance(alert, str) else dict(alert or {})
        if title is not None:
            _check_text(title, "title")
            alert["title"] = title
        if body is not None:
            _check_text(body, "body")
            alert["body"] = body
        aps["alert"] = alert
    if fields.get("badge") is not None:
        _check_badge(fields["badge"])
        aps["badge"] = fields["badge"]
    if fields.get("sound") is not None:
        _check_text(fields["sound"], "sound")
        aps["sound"] = fields["sound"]
    payload["aps"] = aps
    custom = fields.get("custom")
    if custom is not None:
        if "aps" in _check_object(custom, "custom"):
            raise PayloadError("custom must not hold 'aps': use the other fields", field="custom")
        payload.update(custom)
    return payload


def fcm_fields(base: dict[str, Any], fields: dict[str, Any], flags: PayloadFlags) -> dict[str, Any]:
    """FCM message fields: ``base`` (the payload file), the flags, then the row's fields."""
    unknown = sorted(set(base) - set(_FCM_MESSAGE_KEYS))
    if unknown:
        raise PayloadError(
            f"unknown FCM message field {unknown[0]!r} (expected {', '.join(_FCM_MESSAGE_KEYS)})",
            field=unknown[0],
        )
    out = {k: dict(_check_object(v, k)) if k != "data" else v for k, v in base.items()}
    title, body = fields.get("title"), fields.get("body")
    if title is not None or body is not None:
        notification = out.setdefault("notification", {})
        if title is not None:
            _check_text(title, "title")
            notification["title"] = title
        if body is not None:
            _check_text(body, "body")
            notification["body"] = body
    android = out.get("android", {})
    if fields.get("sound") is not None:
        _check_text(fields["sound"], "sound")
        android["notification"] = {**android.get("notification", {}), "sound": fields["sound"]}
    if fields.get("collapse_id") is not None:
        _check_text(fields["collapse_id"], "collapse_id")
        android["collapse_key"] = fields["collapse_id"]
    if flags.priority is not None:
        android["priority"] = "HIGH" if flags.priority >= 10 else "NORMAL"
    if flags.expiration is not None:
        android["ttl"] = max(0, flags.expiration - int(time.time()))
    if android:
        out["android"] = android
    if fields.get("badge") is not None:
        _check_badge(fields["badge"])
        apns = out.setdefault("apns", {})
        payload = dict(apns.get("payload") or {"aps": {}})
        payload["aps"] = {**payload.get("aps", {}), "badge": fields["badge"]}
        apns["payload"] = payload
    data = fields.get("data")
    if data is not None:
        out["data"] = {
            **_check_object(out.get("data") or {}, "data"),
            **_check_object(data, "data"),
        }
    return out


def _struct(cls: Callable[..., Any], value: object, field: str) -> Any:
    try:
        return cls(**_check_object(value, field))
    except TypeError as e:  # an unknown key: msgspec says which
        raise PayloadError(f"{field}: {e}", field=field) from None


def fcm_message(fields: dict[str, Any]) -> FCMMessage:
    """An :class:`FCMMessage` template (no target) from plain message fields."""
    android = apns = webpush = notification = None
    if "notification" in fields:
        notification = _struct(FCMNotification, fields["notification"], "notification")
    if "android" in fields:
        config = dict(_check_object(fields["android"], "android"))
        if "notification" in config:
            config["notification"] = _struct(
                AndroidNotification, config["notification"], "android.notification"
            )
        if "fcm_options" in config:
            config["fcm_options"] = _struct(
                FcmOptions, config["fcm_options"], "android.fcm_options"
            )
        android = _struct(AndroidConfig, config, "android")
    if "apns" in fields:
        config = dict(_check_object(fields["apns"], "apns"))
        if "fcm_options" in config:
            config["fcm_options"] = _struct(
                ApnsFcmOptions, config["fcm_options"], "apns.fcm_options"
            )
        apns = _struct(ApnsConfig, config, "apns")
    if "webpush" in fields:
        config = dict(_check_object(fields["webpush"], "webpush"))
        if "fcm_options" in config:
            config["fcm_options"] = _struct(
                WebpushFcmOptions, config["fcm_options"], "webpush.fcm_options"
            )
        webpush = _struct(WebpushConfig, config, "webpush")
    label = _check_object(fields.get("fcm_options", {}), "fcm_options").get("analytics_label")
    return FCMMessage(
        notification=notification,
        data=fields.get("data"),
        android=android,
        apns=apns,
        webpush=webpush,
        analytics_label=label,
    )


class _MessageCache:
    """Messages by the JSON of their row fields; least recently used ones are forgotten."""

    def __init__(self, build: Callable[[dict[str, Any]], AnyMessage]) -> None:
        self._build = build
        self._cache: OrderedDict[bytes, AnyMessage] = OrderedDict()

    def get(self, fields: dict[str, Any]) -> AnyMessage:
        key = msgspec.json.encode(fields, order="sorted")
        message = self._cache.get(key)
        if message is not None:
            self._cache.move_to_end(key)
            return message
        message = self._build(fields)
        self._cache[key] = message
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return message


class RowMessages:
    """Builds the notification of each row for one provider (``apns`` or ``fcm``).

    The message without per-row fields is built at once, so a bad flag or payload file is
    reported before any input is read.
    """

    def __init__(
        self,
        provider: str,
        base: dict[str, Any],
        flags: PayloadFlags,
        on_unknown_field: OnUnknownField,
    ) -> None:
        self.provider = provider
        self._flags = flags
        self._on_unknown_field = on_unknown_field
        self._unknown_seen: set[str] = set()
        self._row_fields = APNS_ROW_FIELDS if provider == "apns" else FCM_ROW_FIELDS
        flag_fields = {
            k: v
            for k, v in (
                ("title", flags.title),
                ("body", flags.body),
                ("badge", flags.badge),
                ("sound", flags.sound),
                ("collapse_id", flags.collapse_id),
            )
            if v is not None
        }
        self._flag_fields = flag_fields
        if provider == "apns":
            self._base = apns_payload(base, flag_fields)
        else:
            self._base = fcm_fields(base, flag_fields, flags)
        self._cache = _MessageCache(self._build)
        self.default = self._build({})

    def _build(self, row_fields: dict[str, Any]) -> AnyMessage:
        if self.provider == "fcm":
            return fcm_message(fcm_fields(self._base, row_fields, PayloadFlags()))
        flags = self._flags
        if flags.topic is None:
            raise CLIError("APNs needs --topic (the app's bundle id, e.g. com.example.app)")
        collapse_id = row_fields.get("collapse_id", self._flag_fields.get("collapse_id"))
        if collapse_id is not None:
            _check_text(collapse_id, "collapse_id")
        return Message(
            apns_payload(self._base, row_fields),
            topic=flags.topic,
            push_type=flags.push_type or "alert",
            priority=flags.priority,
            expiration=flags.expiration,
            collapse_id=collapse_id,
        )

    def _payload_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        chosen = {}
        for name, value in fields.items():
            if name in self._row_fields:
                if value is not None:
                    chosen[name] = value
            elif name not in self._unknown_seen and (name, self.provider) != ("apns_id", "apns"):
                self._unknown_seen.add(name)
                self._on_unknown_field(name, _HINTS.get((self.provider, name), ""))
        return chosen

    def notification(self, row: Row) -> Notification:
        """The row's notification; :class:`RowError` says what is wrong with the row."""
        token = row.token
        if self.provider == "apns" and not _HEX_TOKEN.fullmatch(token):
            raise RowError("token is not hexadecimal (APNs device tokens are 0-9, a-f)")
        if self.provider == "fcm" and not _FCM_TOKEN.fullmatch(token):
            raise RowError("token holds spaces, quotes, '/' or '\\' (not an FCM token)")
        if len(token) > MAX_TOKEN_LENGTH:
            raise RowError(f"token is {len(token)} characters long (limit {MAX_TOKEN_LENGTH})")
        apns_id = row.fields.get("apns_id") if self.provider == "apns" else None
        if apns_id is not None and (not isinstance(apns_id, str) or not _UUID.fullmatch(apns_id)):
            raise RowError(f"apns_id {apns_id!r} is not a UUID (8-4-4-4-12 hex digits)")
        if row.fields:
            payload_fields = self._payload_fields(row.fields)
            try:
                message = self._cache.get(payload_fields) if payload_fields else self.default
            except PayloadError as e:
                raise RowError(str(e)) from None
        else:
            message = self.default
        return Notification(token, message, apns_id)
