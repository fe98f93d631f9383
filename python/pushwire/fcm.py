"""FCM HTTP v1 messages (protocol.md §4.2): built and validated once, encoded once.

A message without a target is a template for many tokens (``send_to_tokens``, or
``Notification(token, message)``); a message with ``topic``, ``condition``, ``fid`` (or one
``token``) is sent on its own with ``client.send(message)``.

Every config object checks its fields when it is built (msgspec Structs built by keyword do
not check types themselves, so ``__post_init__`` does) and raises :class:`PayloadError`
naming the field as the v1 JSON spells it, e.g. ``android.notification.color``: a template
refused once here costs nothing, one refused by FCM costs a request per token. Field names
are the v1 proto names (``click_action``), which FCM's JSON parser accepts as firebase-admin
sends them; free-form objects (``apns.payload``, ``webpush.notification``, header maps) keep
their keys verbatim (``requireInteraction``, ``apns-priority``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Union

import msgspec

from . import _core
from ._errors import PayloadError
from ._message import PUSH_TYPES, Message
from .payload import Aps

#: FCM's payload limit: bytes of the data keys and values, to a token, FID or condition.
MAX_DATA_BYTES = 4096
#: The same limit for messages to a topic (FCM's ErrorCode reference).
MAX_TOPIC_DATA_BYTES = 2048
#: APNs' payload limit, which FCM passes on for ``apns.payload``.
MAX_APNS_PAYLOAD = 4096
SEND_PATH = "/messages:send"
#: FCM's TTL ceiling: 4 weeks.
MAX_TTL_SECONDS = 2_419_200
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]+$")
_LABEL = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,50}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LIGHT_COLOR = re.compile(r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
_RESERVED_EXACT = frozenset({"from", "notification", "message_type"})
#: FCM's error page: keys starting with "google" or "gcm" (so "gcm" and "googlex" too).
_RESERVED_PREFIXES = ("google", "gcm")

_encoder = msgspec.json.Encoder()

Duration = Union[str, float, int, _dt.timedelta]


# --- field checks ------------------------------------------------------------------------------


def _fail(message: str, field: str) -> PayloadError:
    return PayloadError(f"{field}: {message}", field=field)


def _text(value: object, field: str, *, non_empty: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _fail(f"must be a string, not {type(value).__name__}", field)
    if non_empty and not value:
        raise _fail("must not be empty", field)


def _texts(value: object, field: str) -> None:
    # A bare string is a Sequence too; refuse it rather than send one argument per character.
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail("must be a list of strings", field)


def _flag(value: object, field: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise _fail(f"must be True or False, not {value!r}", field)


def _count(value: object, field: str) -> None:
    # bool is an int in Python; True as a count is a bug.
    if value is not None and (type(value) is not int or not 0 <= value < 2**31):
        raise _fail(f"must be a non-negative integer, not {value!r}", field)


def _choice(value: object, field: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise _fail(f"{value!r} is not one of {', '.join(allowed)}", field)


def _label(value: object, field: str) -> None:
    _text(value, field)
    if isinstance(value, str) and not _LABEL.match(value):
        raise _fail("must be 1 to 50 characters from a-z A-Z 0-9 - _ . ~ %", field)


def _https_url(value: object, field: str) -> None:
    _text(value, field)
    if isinstance(value, str):
        parts = urllib.parse.urlsplit(value)
        if parts.scheme != "https" or not parts.netloc:
            raise _fail(f"{value!r} is not an HTTPS URL", field)


def _duration(value: object, field: str, maximum: float | None = None) -> str:
    """A JSON Duration string ("3.5s") from seconds, a timedelta or such a string."""
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise _fail(f"must be a non-negative duration, not {value!r}", field)
        seconds = float(value)
        text = f"{value:.9f}".rstrip("0").rstrip(".") + "s"
    elif isinstance(value, str) and _DURATION.match(value):
        seconds, text = float(value[:-1]), value
    elif isinstance(value, str) and value.startswith(("P", "-P")):
        # ISO 8601, as msgspec.to_builtins writes a timedelta: parse it and go round again.
        try:
            parsed = msgspec.convert(value, _dt.timedelta)
        except msgspec.ValidationError:
            raise _fail(f"{value!r} is not an ISO 8601 duration", field) from None
        return _duration(parsed, field, maximum)
    else:
        raise _fail(
            f"{value!r} is not a duration (seconds, a timedelta or a string such as '3.5s')",
            field,
        )
    if maximum is not None and seconds > maximum:
        raise _fail(f"must be at most {maximum:,.0f} seconds", field)
    return text


def _timestamp(value: object, field: str) -> str:
    """RFC 3339 in UTC with microseconds; a naive datetime is taken as UTC. An RFC 3339 string
    (as msgspec.to_builtins writes a datetime) is read back."""
    if isinstance(value, str):
        try:
            value = msgspec.convert(value, _dt.datetime)
        except msgspec.ValidationError:
            raise _fail(f"{value!r} is not an RFC 3339 time", field) from None
    if not isinstance(value, _dt.datetime):
        raise _fail(f"must be a datetime, not {type(value).__name__}", field)
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _string_map(value: object, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _fail("must be a mapping of strings to strings", field)
    for key, item in value.items():
        if not isinstance(key, str):
            raise _fail(f"key {key!r} is not a string", field)
        if not isinstance(item, str):
            raise _fail(
                f"value is {type(item).__name__}; FCM data values must be strings "
                "(encode numbers and JSON yourself)",
                f"{field}.{key}",
            )


def _check_data(data: object, field: str) -> None:
    _string_map(data, field)
    for key in data or ():  # type: ignore[attr-defined]
        if key in _RESERVED_EXACT or key.startswith(_RESERVED_PREFIXES):
            raise _fail(
                f"key {key!r} is reserved by FCM (from, notification, message_type and keys "
                "starting with google or gcm)",
                f"{field}.{key}",
            )


def _text_bytes(fields: Mapping[str, Any] | None) -> int:
    """Bytes of the string keys and values of a notification object (what FCM delivers)."""
    if not fields:
        return 0
    return sum(
        len(k.encode("utf-8", "replace")) + len(v.encode("utf-8", "replace"))
        for k, v in fields.items()
        if isinstance(v, str)
    )


def data_bytes(data: Mapping[str, str] | None) -> int:
    """FCM's payload size: UTF-8 bytes of the data keys and values."""
    if not data:
        return 0
    return sum(
        len(k.encode("utf-8", "replace")) + len(v.encode("utf-8", "replace"))
        for k, v in data.items()
    )


def _headers(value: object, field: str) -> None:
    _string_map(value, field)
    for name, item in (value or {}).items():  # type: ignore[attr-defined]
        if not name or any(c in name for c in "\r\n\0: "):
            raise _fail(f"{name!r} is not a header name", f"{field}.{name}")
        if any(c in item for c in "\r\n\0"):
            raise _fail("header values must not hold CR, LF or NUL", f"{field}.{name}")


def _json_value(value: object, field: str) -> None:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError, msgspec.EncodeError) as e:
        raise _fail(f"cannot be encoded as JSON: {e}", field) from None


def _json_object(value: object, field: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail("must be a dict with string keys", field)
    _json_value(value, field)


def _struct(value: object, kind: type[_Config], field: str) -> Any:
    """``value`` as a ``kind``: already one, or a plain dict checked by building one."""
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in kind.__struct_fields__]
        if unknown:
            raise _fail(
                f"unknown field {unknown[0]!r}; {kind.__name__} has "
                f"{', '.join(kind.__struct_fields__)}",
                f"{field}.{unknown[0]}",
            )
        return kind(**value)
    raise _fail(f"must be a pushwire.{kind.__name__} or a dict, not {type(value).__name__}", field)


# --- config objects -----------------------------------------------------------------------------


class _Config(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A v1 object: checked on construction, encoded by :meth:`to_json`."""

    #: Where this object sits in a v1 message (names errors).
    PATH: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        """Raise PayloadError naming the first bad field."""

    def _at(self, name: str) -> str:
        return f"{self.PATH}.{name}"

    def to_json(self) -> dict[str, Any]:
        """The v1 JSON object (None fields left out)."""
        return {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not None
        }


class FCMNotification(_Config):
    """The basic notification shown on every platform."""

    PATH: ClassVar[str] = "notification"
    title: str | None = None
    body: str | None = None
    image: str | None = None

    def _check(self) -> None:
        for name in ("title", "body", "image"):
            _text(getattr(self, name), self._at(name))


class LightSettings(_Config):
    """The notification LED: ``color`` ``#rrggbb`` or ``#rrggbbaa``, on and off durations
    (seconds, timedeltas or strings such as ``"0.5s"``). All three are required."""

    PATH: ClassVar[str] = "android.notification.light_settings"
    color: str = ""
    light_on_duration: Union[Duration, None] = None
    light_off_duration: Union[Duration, None] = None

    def _check(self) -> None:
        _text(self.color, self._at("color"))
        if not _LIGHT_COLOR.match(self.color):
            raise _fail(f"{self.color!r} is not #rrggbb or #rrggbbaa", self._at("color"))
        for name in ("light_on_duration", "light_off_duration"):
            if getattr(self, name) is None:
                raise _fail("is required", self._at(name))
            _duration(getattr(self, name), self._at(name))

    def to_json(self) -> dict[str, Any]:
        rgba = (self.color[1:] + "ff")[:8]
        red, green, blue, alpha = (int(rgba[i : i + 2], 16) / 255.0 for i in (0, 2, 4, 6))
        return {
            "color": {"red": red, "green": green, "blue": blue, "alpha": alpha},
            "light_on_duration": _duration(self.light_on_duration, ""),
            "light_off_duration": _duration(self.light_off_duration, ""),
        }


NotificationPriority = Literal[
    "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"
]
_NOTIFICATION_PRIORITIES = (
    "PRIORITY_MIN",
    "PRIORITY_LOW",
    "PRIORITY_DEFAULT",
    "PRIORITY_HIGH",
    "PRIORITY_MAX",
)
_VISIBILITIES = ("PRIVATE", "PUBLIC", "SECRET")
_PROXIES = ("ALLOW", "DENY", "IF_PRIORITY_LOWERED")
_ANDROID_TEXT = (
    "title",
    "body",
    "icon",
    "sound",
    "tag",
    "click_action",
    "body_loc_key",
    "title_loc_key",
    "channel_id",
    "ticker",
    "image",
)
_ANDROID_FLAGS = (
    "sticky",
    "local_only",
    "default_sound",
    "default_vibrate_timings",
    "default_light_settings",
    "bypass_proxy_notification",
)


class AndroidNotification(_Config):
    """``android.notification``: all 27 fields of the v1 resource. Durations
    (``vibrate_timings``) are seconds, timedeltas or strings such as ``"0.25s"``;
    ``event_time`` is a datetime (naive means UTC)."""

    PATH: ClassVar[str] = "android.notification"
    title: str | None = None
    body: str | None = None
    icon: str | None = None
    color: str | None = None
    sound: str | None = None
    tag: str | None = None
    click_action: str | None = None
    body_loc_key: str | None = None
    body_loc_args: list[str] | None = None
    title_loc_key: str | None = None
    title_loc_args: list[str] | None = None
    channel_id: str | None = None
    ticker: str | None = None
    sticky: bool | None = None
    event_time: Union[_dt.datetime, str, None] = None
    local_only: bool | None = None
    notification_priority: NotificationPriority | None = None
    default_sound: bool | None = None
    default_vibrate_timings: bool | None = None
    default_light_settings: bool | None = None
    vibrate_timings: list[Duration] | None = None
    visibility: Literal["PRIVATE", "PUBLIC", "SECRET"] | None = None
    notification_count: int | None = None
    light_settings: LightSettings | None = None
    image: str | None = None
    #: Deprecated by FCM in favour of ``proxy``; still accepted.
    bypass_proxy_notification: bool | None = None
    proxy: Literal["ALLOW", "DENY", "IF_PRIORITY_LOWERED"] | None = None

    def _check(self) -> None:
        for name in _ANDROID_TEXT:
            _text(getattr(self, name), self._at(name))
        for name in _ANDROID_FLAGS:
            _flag(getattr(self, name), self._at(name))
        _text(self.color, self._at("color"))
        if self.color is not None and not _COLOR.match(self.color):
            raise _fail(f"{self.color!r} is not a color #rrggbb", self._at("color"))
        for key, args in (("body_loc_key", "body_loc_args"), ("title_loc_key", "title_loc_args")):
            _texts(getattr(self, args), self._at(args))
            if getattr(self, args) and getattr(self, key) is None:
                raise _fail(f"needs {key} (the string resource they fill)", self._at(args))
        if self.event_time is not None:
            _timestamp(self.event_time, self._at("event_time"))
        _choice(
            self.notification_priority, self._at("notification_priority"), _NOTIFICATION_PRIORITIES
        )
        _choice(self.visibility, self._at("visibility"), _VISIBILITIES)
        _choice(self.proxy, self._at("proxy"), _PROXIES)
        _count(self.notification_count, self._at("notification_count"))
        if self.vibrate_timings is not None:
            if not isinstance(self.vibrate_timings, (list, tuple)):
                raise _fail("must be a list of durations", self._at("vibrate_timings"))
            for timing in self.vibrate_timings:
                _duration(timing, self._at("vibrate_timings"))
        if self.light_settings is not None:
            self.light_settings = _struct(
                self.light_settings, LightSettings, self._at("light_settings")
            )

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.event_time is not None:
            out["event_time"] = _timestamp(self.event_time, "")
        if self.vibrate_timings is not None:
            out["vibrate_timings"] = [_duration(t, "") for t in self.vibrate_timings]
        if self.light_settings is not None:
            out["light_settings"] = self.light_settings.to_json()
        for name in ("body_loc_args", "title_loc_args"):
            if name in out:
                out[name] = list(out[name])
        return out


class FcmOptions(_Config):
    """``android.fcm_options``."""

    PATH: ClassVar[str] = "android.fcm_options"
    analytics_label: str | None = None

    def _check(self) -> None:
        _label(self.analytics_label, self._at("analytics_label"))


class AndroidConfig(_Config):
    """``android``. ``ttl``: seconds, a timedelta or a string such as ``"3.5s"``, at most
    4 weeks. ``notification`` and ``fcm_options`` may be given as plain dicts."""

    PATH: ClassVar[str] = "android"
    collapse_key: str | None = None
    priority: Literal["NORMAL", "HIGH"] | None = None
    ttl: Union[Duration, None] = None
    restricted_package_name: str | None = None
    data: dict[str, str] | None = None
    notification: Union[AndroidNotification, dict[str, Any], None] = None
    fcm_options: Union[FcmOptions, dict[str, Any], None] = None
    direct_boot_ok: bool | None = None
    bandwidth_constrained_ok: bool | None = None
    restricted_satellite_ok: bool | None = None

    def _check(self) -> None:
        _text(self.collapse_key, self._at("collapse_key"))
        _text(self.restricted_package_name, self._at("restricted_package_name"))
        _choice(self.priority, self._at("priority"), ("NORMAL", "HIGH"))
        if self.ttl is not None:
            _duration(self.ttl, self._at("ttl"), MAX_TTL_SECONDS)
        _check_data(self.data, self._at("data"))
        for name in ("direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok"):
            _flag(getattr(self, name), self._at(name))
        if self.notification is not None:
            self.notification = _struct(
                self.notification, AndroidNotification, self._at("notification")
            )
        if self.fcm_options is not None:
            self.fcm_options = _struct(self.fcm_options, FcmOptions, self._at("fcm_options"))

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.ttl is not None:
            out["ttl"] = _duration(self.ttl, "")
        if self.data is not None:
            out["data"] = dict(self.data)
        for name in ("notification", "fcm_options"):
            if name in out:
                out[name] = out[name].to_json()
        return out


class ApnsFcmOptions(_Config):
    """``apns.fcm_options``."""

    PATH: ClassVar[str] = "apns.fcm_options"
    analytics_label: str | None = None
    image: str | None = None

    def _check(self) -> None:
        _label(self.analytics_label, self._at("analytics_label"))
        _text(self.image, self._at("image"))


def _header(headers: Mapping[str, str], name: str) -> tuple[str, str] | None:
    return next(((k, v) for k, v in headers.items() if k.lower() == name), None)


def _check_apns_headers(headers: Mapping[str, str]) -> None:
    """The APNs headers FCM passes on: what APNs would refuse, refused here."""
    for name, value in headers.items():
        lower = name.lower()
        field = f"apns.headers.{lower}"
        if lower == "apns-priority" and value not in ("1", "5", "10"):
            raise _fail(f"{value!r} is not 1, 5 or 10", field)
        if lower == "apns-push-type" and value not in PUSH_TYPES:
            raise _fail(f"{value!r} is not an APNs push type", field)
        if lower == "apns-expiration" and not value.isdigit():
            raise _fail(f"{value!r} is not a UNIX time in seconds", field)
        if lower == "apns-collapse-id" and len(value.encode("utf-8", "replace")) > 64:
            raise _fail(f"is {len(value.encode('utf-8', 'replace'))} bytes; APNs allows 64", field)
    push_type = _header(headers, "apns-push-type")
    priority = _header(headers, "apns-priority")
    if push_type and priority:
        allowed = PUSH_TYPES[push_type[1]][1]
        if int(priority[1]) not in allowed:
            raise _fail(
                f"{priority[1]} is not allowed for {push_type[1]} pushes "
                f"(allowed: {', '.join(str(p) for p in sorted(allowed))})",
                "apns.headers.apns-priority",
            )


_AT = re.compile(r" - at `\$(.*)`$")
_NAMED = re.compile(r"^(aps(?:\.[a-z-]+)+) ")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _check_aps(aps: dict[str, Any]) -> None:
    """An ``aps`` given as a dict gets the checks of pushwire's own payload builders (types,
    Apple's key names, critical sounds, localization pairs, Live Activity rules)."""
    try:
        msgspec.convert(aps, Aps)
    except msgspec.ValidationError as e:
        text = str(e)
        where = _AT.search(text)
        problem = _AT.sub("", text)
        field = "apns.payload.aps" + (where.group(1) if where else "")
        named = _NAMED.match(problem)  # the builders' own message names the key exactly
        unknown = _UNKNOWN.search(problem)
        if named:
            field = "apns.payload." + named.group(1)
        elif unknown:
            field += "." + unknown.group(1)
        raise _fail(problem, field) from None


def _message_headers(message: Message) -> dict[str, str]:
    headers = {"apns-push-type": message.push_type, "apns-topic": message.topic}
    if message.priority is not None:
        headers["apns-priority"] = str(message.priority)
    if message.expiration is not None:
        headers["apns-expiration"] = str(message.expiration)
    if message.collapse_id is not None:
        headers["apns-collapse-id"] = message.collapse_id
    return headers


class ApnsConfig(_Config):
    """APNs settings for iOS devices reached through FCM. ``payload`` is a pushwire
    :class:`Message` (its encoded payload is reused and its APNs headers — push type, topic,
    priority, expiration, collapse id — join ``headers``) or a dict with an ``aps`` dict."""

    PATH: ClassVar[str] = "apns"
    headers: dict[str, str] | None = None
    payload: Union[dict[str, Any], Message, None] = None
    fcm_options: Union[ApnsFcmOptions, dict[str, Any], None] = None
    live_activity_token: str | None = None

    def _check(self) -> None:
        _headers(self.headers, self._at("headers"))
        merged = dict(self.headers or {})
        if isinstance(self.payload, Message):
            payload = msgspec.json.decode(self.payload.payload)
            for name, value in _message_headers(self.payload).items():
                given = _header(merged, name)
                if given is not None and given[1] != value:
                    raise _fail(
                        f"{given[1]!r} contradicts the payload Message's {value!r}; "
                        "set it on the Message",
                        f"apns.headers.{name}",
                    )
                if given is None:
                    merged[name] = value
        elif self.payload is not None:
            _json_object(self.payload, self._at("payload"))
            payload = self.payload
            size = len(_encoder.encode(payload))
            if size > MAX_APNS_PAYLOAD:
                raise _fail(f"is {size} bytes; APNs allows {MAX_APNS_PAYLOAD}", "apns.payload")
        if self.payload is not None and not isinstance(payload.get("aps"), dict):
            raise _fail("must be an APNs payload with an 'aps' dictionary", "apns.payload")
        if isinstance(self.payload, dict):
            _check_aps(self.payload["aps"])
        _check_apns_headers(merged)
        if self.fcm_options is not None:
            self.fcm_options = _struct(self.fcm_options, ApnsFcmOptions, self._at("fcm_options"))
        _text(self.live_activity_token, self._at("live_activity_token"), non_empty=True)

    def all_headers(self) -> dict[str, str]:
        """``headers`` plus those of a payload :class:`Message`."""
        merged = dict(self.headers or {})
        if isinstance(self.payload, Message):
            for name, value in _message_headers(self.payload).items():
                if _header(merged, name) is None:
                    merged[name] = value
        return merged

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        headers = self.all_headers()
        if headers:
            out["headers"] = headers
        if isinstance(self.payload, Message):
            out["payload"] = msgspec.Raw(self.payload.payload)
        if self.fcm_options is not None:
            out["fcm_options"] = self.fcm_options.to_json()  # type: ignore[union-attr]
        return out


class WebpushNotificationAction(_Config):
    """One button of a web notification."""

    PATH: ClassVar[str] = "webpush.notification.actions"
    action: str | None = None
    title: str | None = None
    icon: str | None = None

    def _check(self) -> None:
        for name in ("action", "title", "icon"):
            _text(getattr(self, name), self._at(name))


class WebpushNotification(_Config, rename={"require_interaction": "requireInteraction"}):
    """``webpush.notification``: the Web Notification API's options (keys as the browser
    spells them: ``require_interaction`` is sent as ``requireInteraction``, also by
    ``msgspec.to_builtins``, so the builtins are the v1 JSON). ``timestamp`` is milliseconds
    since the epoch. For options of your own beside these, give ``webpush.notification`` as a
    plain dict."""

    PATH: ClassVar[str] = "webpush.notification"
    title: str | None = None
    body: str | None = None
    icon: str | None = None
    badge: str | None = None
    image: str | None = None
    lang: str | None = None
    tag: str | None = None
    dir: Literal["auto", "ltr", "rtl"] | None = None
    renotify: bool | None = None
    require_interaction: bool | None = None
    silent: bool | None = None
    timestamp: int | None = None
    vibrate: Union[int, list[int], None] = None
    actions: list[Union[WebpushNotificationAction, dict[str, Any]]] | None = None
    data: Any = None

    def _check(self) -> None:
        for name in ("title", "body", "icon", "badge", "image", "lang", "tag"):
            _text(getattr(self, name), self._at(name))
        _choice(self.dir, self._at("dir"), ("auto", "ltr", "rtl"))
        for name in ("renotify", "require_interaction", "silent"):
            _flag(getattr(self, name), self._at(name))
        if self.timestamp is not None and (type(self.timestamp) is not int or self.timestamp < 0):
            raise _fail("must be milliseconds since the epoch (an int)", self._at("timestamp"))
        if self.vibrate is not None:
            pattern = self.vibrate if isinstance(self.vibrate, list) else [self.vibrate]
            if not all(type(v) is int and v >= 0 for v in pattern):
                raise _fail("must be milliseconds or a list of them", self._at("vibrate"))
        if self.actions is not None:
            if not isinstance(self.actions, list):
                raise _fail("must be a list of actions", self._at("actions"))
            self.actions = [
                _struct(a, WebpushNotificationAction, self._at("actions")) for a in self.actions
            ]
        if self.data is not None:
            _json_value(self.data, self._at("data"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class WebpushFcmOptions(_Config):
    """``webpush.fcm_options``: ``link`` must be an HTTPS URL."""

    PATH: ClassVar[str] = "webpush.fcm_options"
    link: str | None = None
    analytics_label: str | None = None

    def _check(self) -> None:
        _https_url(self.link, self._at("link"))
        _label(self.analytics_label, self._at("analytics_label"))


_URGENCIES = ("very-low", "low", "normal", "high")


class WebpushConfig(_Config):
    """``webpush``. ``notification`` is a :class:`WebpushNotification` or a plain dict of
    Notification API options (sent as given)."""

    PATH: ClassVar[str] = "webpush"
    headers: dict[str, str] | None = None
    data: dict[str, str] | None = None
    notification: Union[WebpushNotification, dict[str, Any], None] = None
    fcm_options: Union[WebpushFcmOptions, dict[str, Any], None] = None

    def _check(self) -> None:
        _headers(self.headers, self._at("headers"))
        for name, value in (self.headers or {}).items():
            lower, field = name.lower(), f"webpush.headers.{name}"
            if lower == "ttl" and not value.isdigit():
                raise _fail(f"{value!r} is not a number of seconds", field)
            if lower == "urgency" and value not in _URGENCIES:
                raise _fail(f"{value!r} is not one of {', '.join(_URGENCIES)}", field)
            if lower == "topic" and not re.match(r"^[A-Za-z0-9_-]{1,32}$", value):
                raise _fail("must be 1 to 32 URL-safe base64 characters", field)
        _check_data(self.data, self._at("data"))
        if isinstance(self.notification, dict):
            _json_object(self.notification, self._at("notification"))
        elif self.notification is not None and not isinstance(
            self.notification, WebpushNotification
        ):
            raise _fail(
                "must be a pushwire.WebpushNotification or a dict", self._at("notification")
            )
        if self.fcm_options is not None:
            self.fcm_options = _struct(self.fcm_options, WebpushFcmOptions, self._at("fcm_options"))

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for name in ("headers", "data"):
            if name in out:
                out[name] = dict(out[name])
        if isinstance(self.notification, WebpushNotification):
            out["notification"] = self.notification.to_json()
        if self.fcm_options is not None:
            out["fcm_options"] = self.fcm_options.to_json()  # type: ignore[union-attr]
        return out


# --- the message --------------------------------------------------------------------------------

_TARGETS = ("token", "topic", "condition", "fid")


class FCMMessage:
    """An FCM v1 message. Give at most one target: none (a template for many tokens),
    ``token``, ``topic`` (a ``/topics/`` prefix is removed), ``condition`` or ``fid`` (a
    Firebase installation id). Configs may be the classes of this module or plain dicts."""

    __slots__ = ("_template", "encoded", "target", "target_kind", "validate_only")

    def __init__(
        self,
        *,
        token: str | None = None,
        topic: str | None = None,
        condition: str | None = None,
        fid: str | None = None,
        notification: Union[FCMNotification, dict[str, Any], None] = None,
        data: Mapping[str, str] | None = None,
        android: Union[AndroidConfig, dict[str, Any], None] = None,
        apns: Union[ApnsConfig, dict[str, Any], None] = None,
        webpush: Union[WebpushConfig, dict[str, Any], None] = None,
        analytics_label: str | None = None,
        validate_only: bool = False,
    ) -> None:
        given = {"token": token, "topic": topic, "condition": condition, "fid": fid}
        for kind, value in given.items():
            _text(value, f"message.{kind}", non_empty=True)
        targets = {k: v for k, v in given.items() if v is not None}
        if len(targets) > 1:
            raise _fail(f"give one target, not {' and '.join(targets)}", "message.target")
        if topic is not None:
            topic = topic.removeprefix("/topics/")
            if not _TOPIC.match(topic):
                raise _fail("topic names use letters, digits and -_.~% only", "message.topic")
            targets["topic"] = topic
        _flag(validate_only, "validate_only")
        body: dict[str, Any] = {}
        if notification is not None:
            body["notification"] = _struct(notification, FCMNotification, "notification").to_json()
        if data is not None:
            _check_data(data, "data")
            body["data"] = dict(data)
        platforms: tuple[tuple[str, object, type[_Config]], ...] = (
            ("android", android, AndroidConfig),
            ("apns", apns, ApnsConfig),
            ("webpush", webpush, WebpushConfig),
        )
        for platform, config, config_type in platforms:
            if config is not None:
                body[platform] = _struct(config, config_type, platform).to_json()
        if analytics_label is not None:
            _label(analytics_label, "fcm_options.analytics_label")
            body["fcm_options"] = {"analytics_label": analytics_label}
        self._check_size(body, "topic" in targets)
        try:
            encoded = _encoder.encode(body)
        except (TypeError, ValueError, msgspec.EncodeError) as e:
            raise PayloadError(f"message cannot be encoded as JSON: {e}", field="message") from None
        self.encoded = encoded
        self.validate_only = validate_only
        self.target_kind: str | None = None
        self.target: str | None = None
        if targets:
            ((self.target_kind, self.target),) = targets.items()
        self._template = self._build_template()

    @staticmethod
    def _check_size(body: dict[str, Any], to_topic: bool) -> None:
        """FCM's payload limit (4096 bytes, 2048 to a topic) counts the keys and values
        delivered to the device: data, and the notification's texts ("both message types").
        Each platform's block replaces or joins the common one, so each is counted apart."""
        limit = MAX_TOPIC_DATA_BYTES if to_topic else MAX_DATA_BYTES
        android = body.get("android", {})
        webpush = body.get("webpush", {})
        shown = _text_bytes(body.get("notification"))
        for field, size in (
            ("data", data_bytes(body.get("data")) + shown),
            ("android.data", data_bytes(android.get("data")) + shown),
            ("android.notification", _text_bytes(android.get("notification")) + shown),
            ("webpush.data", data_bytes(webpush.get("data"))),
        ):
            if size > limit:
                if field == "data" and "data" not in body:
                    field = "notification"
                to = " to a topic" if to_topic else ""
                raise _fail(
                    f"the payload is {size} bytes of keys and values (data and notification "
                    f"texts); FCM allows {limit}{to}",
                    field,
                )

    def _build_template(self) -> _core.Template:
        headers = [("content-type", "application/json; charset=UTF-8")]
        prefix = b'{"validate_only":true,"message":{' if self.validate_only else b'{"message":{'
        rest = self.encoded[1:-1]  # the message's fields without braces
        if self.target_kind in (None, "token"):
            after = b'"' + (b"," + rest if rest else b"") + b"}}"
            return _core.Template.body_splice(
                SEND_PATH, headers, prefix + b'"token":"', after, "opaque"
            )
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
            "has no target: give token=, topic=, condition= or fid=, or use send_to_tokens()",
            "message.target",
        )
    return (message.target, message, None)


__all__ = [
    "AndroidConfig",
    "AndroidNotification",
    "ApnsConfig",
    "ApnsFcmOptions",
    "FCMMessage",
    "FCMNotification",
    "FcmOptions",
    "LightSettings",
    "WebpushConfig",
    "WebpushFcmOptions",
    "WebpushNotification",
    "WebpushNotificationAction",
    "as_item",
    "data_bytes",
]
