"""A provider-neutral message (as Pinpoint's MessageConfiguration), rendered per application
into a :class:`pushwire.Message` (through :mod:`pushwire.payload`) or a
:class:`pushwire.FCMMessage`.

=============== ========================================= =========================================
field           APNs                                      FCM v1
=============== ========================================= =========================================
title, body     ``aps.alert``                             ``notification``, ``apns`` alert
image_url       ``mutable-content: 1`` + ``image_url``     ``notification.image`` (+ APNs options)
                (for a Notification Service Extension)
sound, badge    ``aps.sound``, ``aps.badge``              ``android.notification.sound``; APNs
                                                          block for iOS through FCM
data            custom keys beside ``aps``                ``data`` (strings)
action, url     custom keys ``action``, ``url``           ``data`` keys ``action``, ``url``;
                                                          ``webpush.fcm_options.link`` for URLs
silent          ``content-available: 1``, priority 5,     data only, Android priority NORMAL,
                push type background                      APNs background headers
=============== ========================================= =========================================

Web Push (browsers) gets the notification as JSON, in the shape of Declarative Web Push's
``notification`` member: ``{"notification": {"title", "body", "image", "app_badge",
"navigate", "data"}}`` (``image`` from ``image_url``, ``app_badge`` from ``badge``,
``navigate`` the ``url`` of an http(s) ``url`` action; ``data`` holds the message's data and
its action). Your service worker shows it (``registration.showNotification(n.title, n)``).
With ``webpush=WebPushOverride(declarative=True)`` it is sent as Declarative Web Push
(``"web_push": 8030``; Safari 18.4+ shows it without a service worker), which needs a title
and a ``navigate`` URL. A silent message sends ``{"data": ...}`` only (browsers expect every
push to show something: Safari revokes the permission of a site that does not). ``TTL`` is
four weeks unless the override says otherwise (as FCM's default).

``apns=``, ``fcm=`` and ``webpush=`` overrides change what one provider gets (another title,
a collapse id, a whole ``android`` block...). Rendering runs the provider's own builders, so
the result passes their checks (sizes, priorities, reserved keys) before anything is sent.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import msgspec

from .. import payload
from .._errors import PayloadError
from .._message import Message
from ..fcm import (
    AndroidConfig,
    AndroidNotification,
    ApnsConfig,
    ApnsFcmOptions,
    FCMMessage,
    FCMNotification,
    WebpushConfig,
    WebpushFcmOptions,
)
from ..webpush import MAX_TTL, WebPushMessage
from .model import Application, Provider

#: Data keys the rendering itself uses.
RESERVED_DATA_KEYS = frozenset({"aps", "action", "url", "image_url"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


class ClickAction(str, enum.Enum):
    """What a tap on the notification does."""

    OPEN_APP = "open_app"
    #: Open a web page (``url`` is http(s)).
    URL = "url"
    #: Open a screen of the app (``url`` is the app's link, e.g. ``myapp://orders/42``).
    DEEP_LINK = "deep_link"


@dataclass(frozen=True)
class APNsOverride:
    """What APNs devices get instead (``None`` keeps the message's value)."""

    title: str | None = None
    subtitle: str | None = None
    body: str | None = None
    sound: str | None = None
    badge: int | None = None
    #: Merged over the message's data.
    data: Mapping[str, str] | None = None
    category: str | None = None
    thread_id: str | None = None
    interruption_level: Literal["passive", "active", "time-sensitive", "critical"] | None = None
    collapse_id: str | None = None
    expiration: int | None = None
    priority: int | None = None


@dataclass(frozen=True)
class FCMOverride:
    """What FCM devices get instead. ``android``, ``apns`` and ``webpush`` replace the
    rendered blocks whole."""

    title: str | None = None
    body: str | None = None
    image_url: str | None = None
    sound: str | None = None
    #: Merged over the message's data.
    data: Mapping[str, str] | None = None
    channel_id: str | None = None
    collapse_key: str | None = None
    ttl: Union[str, float, int, None] = None
    analytics_label: str | None = None
    android: AndroidConfig | None = None
    apns: ApnsConfig | None = None
    webpush: WebpushConfig | None = None


@dataclass(frozen=True)
class WebPushOverride:
    """What browsers (Web Push) get instead, and Web Push's own delivery settings."""

    title: str | None = None
    body: str | None = None
    #: Merged over the message's data.
    data: Mapping[str, str] | None = None
    #: Seconds the push service keeps the message for an offline browser (default 4 weeks).
    ttl: int | None = None
    urgency: Literal["very-low", "low", "normal", "high"] | None = None
    #: At most 32 base64url characters: a newer message with the same topic replaces an
    #: undelivered one.
    topic: str | None = None
    #: Send as Declarative Web Push (Safari 18.4+), shown without a service worker.
    declarative: bool = False
    #: The page a click opens (default: the message's ``url`` for an http(s) url action).
    navigate: str | None = None
    tag: str | None = None
    lang: str | None = None
    dir: Literal["auto", "ltr", "rtl"] | None = None
    #: Declarative only: a service worker, when there is one, may change it before display.
    mutable: bool = False


def _fail(field: str, problem: str) -> PayloadError:
    return PayloadError(f"message.{field} {problem}", field=f"message.{field}")


def _check_data(data: object, field: str) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise _fail(field, "must be a mapping of strings to strings")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise _fail(
                field,
                f"must map strings to strings (FCM data is strings only), got {key!r}: "
                f"{type(value).__name__}",
            )
        if key in RESERVED_DATA_KEYS:
            raise _fail(field, f"key {key!r} is reserved (the message's own fields are sent there)")
    return dict(data)


@dataclass(frozen=True)
class PushMessage:
    """One message for every endpoint, whatever its provider."""

    title: str | None = None
    body: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    image_url: str | None = None
    sound: str | None = None
    badge: int | None = None
    #: A background (data-only) message: nothing is shown.
    silent: bool = False
    action: ClickAction | str = ClickAction.OPEN_APP
    url: str | None = None
    apns: APNsOverride | None = None
    fcm: FCMOverride | None = None
    webpush: WebPushOverride | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_data(self.data, "data"))
        try:
            object.__setattr__(self, "action", ClickAction(self.action))
        except ValueError:
            raise _fail(
                "action", f"must be open_app, url or deep_link, not {self.action!r}"
            ) from None
        for name in ("title", "body", "image_url", "sound", "url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise _fail(name, f"must be a string, not {type(value).__name__}")
        if self.badge is not None and (type(self.badge) is not int or self.badge < 0):
            raise _fail("badge", f"must be a non-negative integer, not {self.badge!r}")
        if self.silent:
            visible = ("title", "body", "sound", "badge", "image_url")
            shown = [name for name in visible if getattr(self, name)]
            if shown or self.badge is not None:
                raise _fail(
                    "silent",
                    "messages show nothing: leave out "
                    + ", ".join(shown or ["badge"])
                    + " (APNs refuses alert, sound and badge in background pushes)",
                )
        elif self.title is None and self.body is None and self.badge is None:
            raise _fail(
                "body", "is required (or a title or a badge); use silent=True for data only"
            )
        if self.action is ClickAction.OPEN_APP:
            if self.url is not None:
                raise _fail("url", "needs action='url' or action='deep_link'")
        elif self.url is None or not _URL.fullmatch(self.url):
            action = ClickAction(self.action).value
            raise _fail("url", f"must be a URL (scheme:...) for action {action!r}")
        if self.image_url is not None and not self.image_url.startswith("https://"):
            raise _fail("image_url", "must be an https:// URL")
        collapse_key = self.fcm.collapse_key if isinstance(self.fcm, FCMOverride) else None
        if collapse_key is not None and not isinstance(collapse_key, str):
            raise _fail("fcm.collapse_key", f"must be a string, not {type(collapse_key).__name__}")
        if collapse_key is not None and len(collapse_key.encode("utf-8", "replace")) > 64:
            raise _fail(
                "fcm.collapse_key",
                "must be at most 64 bytes (it is also the apns-collapse-id of iOS devices "
                "reached through FCM, which APNs limits to 64)",
            )
        overrides: tuple[
            tuple[str, APNsOverride | FCMOverride | WebPushOverride | None, type], ...
        ] = (
            ("apns", self.apns, APNsOverride),
            ("fcm", self.fcm, FCMOverride),
            ("webpush", self.webpush, WebPushOverride),
        )
        for override_name, override, expected in overrides:
            if override is not None and not isinstance(override, expected):
                raise _fail(override_name, f"must be a {expected.__name__}")
            if override is not None and override.data is not None:
                _check_data(override.data, f"{override_name}.data")

    # -- rendering ----------------------------------------------------------------------------

    def render(self, application: Application) -> Message | FCMMessage | WebPushMessage:
        """The provider message for ``application`` (APNs needs its topic)."""
        if application.provider is Provider.APNS:
            return self.render_apns(application.topic or "")
        if application.provider is Provider.WEBPUSH:
            return self.render_webpush()
        return self.render_fcm()

    def render_webpush(self) -> WebPushMessage:
        """The Web Push message (see the module's documentation for its JSON shape)."""
        o = self.webpush or WebPushOverride()
        data = {**self.data, **(o.data or {}), **self._action_data()}
        ttl = MAX_TTL if o.ttl is None else o.ttl
        if self.silent:
            if o.declarative:
                raise _fail("webpush.declarative", "messages are shown: a silent one cannot be")
            return _webpush_message({"data": data}, ttl, o)
        navigate = o.navigate
        url = self.url or ""
        if navigate is None and self.action is ClickAction.URL and url.startswith("http"):
            navigate = url
        if navigate is not None and not navigate.startswith(("https://", "http://")):
            raise _fail("webpush.navigate", "must be an absolute http(s) URL")
        notification: dict[str, Any] = {}
        for key, value in (
            ("title", _pick(o.title, self.title)),
            ("body", _pick(o.body, self.body)),
            ("image", self.image_url),
            ("app_badge", self.badge),
            ("navigate", navigate),
            ("tag", o.tag),
            ("lang", o.lang),
            ("dir", o.dir),
            ("data", data or None),
        ):
            if value is not None:
                notification[key] = value
        if not o.declarative:
            return _webpush_message({"notification": notification}, ttl, o)
        if "title" not in notification:
            raise _fail("title", "is required for Declarative Web Push")
        if navigate is None:
            raise _fail(
                "webpush.navigate",
                "is required for Declarative Web Push (the page a click opens): set it, or "
                "give the message action='url' with an http(s) url",
            )
        payload: dict[str, Any] = {"web_push": 8030, "notification": notification}
        if o.mutable:
            payload["mutable"] = True
        return _webpush_message(payload, ttl, o)

    def _action_data(self) -> dict[str, str]:
        action = ClickAction(self.action)
        if action is ClickAction.OPEN_APP or self.url is None:
            return {}
        return {"action": action.value, "url": self.url}

    def render_apns(self, topic: str) -> Message:
        o = self.apns or APNsOverride()
        custom: dict[str, Any] = {**self.data, **(o.data or {}), **self._action_data()}
        if self.silent:
            return payload.background(
                topic,
                custom=custom or None,
                priority=o.priority,
                expiration=o.expiration,
                collapse_id=o.collapse_id,
            )
        if self.image_url is not None:
            custom["image_url"] = self.image_url  # for the Notification Service Extension
        return payload.alert(
            topic,
            title=_pick(o.title, self.title),
            subtitle=o.subtitle,
            body=_pick(o.body, self.body),
            badge=_pick(o.badge, self.badge),
            sound=_pick(o.sound, self.sound),
            thread_id=o.thread_id,
            category=o.category,
            mutable_content=self.image_url is not None,
            interruption_level=o.interruption_level,
            custom=custom or None,
            priority=o.priority,
            expiration=o.expiration,
            collapse_id=o.collapse_id,
        )

    def render_fcm(self) -> FCMMessage:
        o = self.fcm or FCMOverride()
        data = {**self.data, **(o.data or {}), **self._action_data()}
        if self.silent:
            return FCMMessage(
                data=data or None,
                android=o.android
                or AndroidConfig(priority="NORMAL", collapse_key=o.collapse_key, ttl=o.ttl),
                apns=o.apns
                or ApnsConfig(
                    headers={
                        "apns-priority": "5",
                        "apns-push-type": "background",
                        **self._apns_collapse_header(o),
                    },
                    payload={"aps": {"content-available": 1}},
                ),
                webpush=o.webpush,
                analytics_label=o.analytics_label,
            )
        title, body = _pick(o.title, self.title), _pick(o.body, self.body)
        image, sound = _pick(o.image_url, self.image_url), _pick(o.sound, self.sound)
        android_notification = None
        if sound is not None or o.channel_id is not None:
            android_notification = AndroidNotification(sound=sound, channel_id=o.channel_id)
        android = o.android or AndroidConfig(
            priority="HIGH",
            collapse_key=o.collapse_key,
            ttl=o.ttl,
            notification=android_notification,
        )
        return FCMMessage(
            notification=FCMNotification(title=title, body=body, image=image),
            data=data or None,
            android=android,
            apns=o.apns or self._apns_through_fcm(o, title, body, image, sound),
            webpush=o.webpush or self._webpush(),
            analytics_label=o.analytics_label,
        )

    @staticmethod
    def _apns_collapse_header(o: FCMOverride) -> dict[str, str]:
        """FCM's collapse key reaches Android only; iOS devices behind FCM need the APNs
        header for the same effect."""
        return {"apns-collapse-id": o.collapse_key} if o.collapse_key is not None else {}

    def _apns_through_fcm(
        self,
        o: FCMOverride,
        title: str | None,
        body: str | None,
        image: str | None,
        sound: str | None,
    ) -> ApnsConfig | None:
        """iOS devices reached through FCM: badge, sound, image and collapsing need the
        APNs block."""
        headers = self._apns_collapse_header(o) or None
        if self.badge is None and sound is None and image is None:
            return ApnsConfig(headers=headers) if headers else None
        alert = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        aps: dict[str, Any] = {"alert": alert} if alert else {}
        if self.badge is not None:
            aps["badge"] = self.badge
        if sound is not None:
            aps["sound"] = sound
        if image is not None:
            aps["mutable-content"] = 1
        options = ApnsFcmOptions(image=image) if image is not None else None
        return ApnsConfig(headers=headers, payload={"aps": aps}, fcm_options=options)

    def _webpush(self) -> WebpushConfig | None:
        if self.action is ClickAction.URL and self.url and self.url.startswith("https://"):
            return WebpushConfig(fcm_options=WebpushFcmOptions(link=self.url))
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON description (what a send run records)."""
        out: dict[str, Any] = {
            "title": self.title,
            "body": self.body,
            "data": dict(self.data),
            "image_url": self.image_url,
            "sound": self.sound,
            "badge": self.badge,
            "silent": self.silent,
            "action": ClickAction(self.action).value,
            "url": self.url,
        }
        if self.apns is not None:
            out["apns"] = _override_dict(self.apns)
        if self.fcm is not None:
            out["fcm"] = _override_dict(self.fcm)
        if self.webpush is not None:
            out["webpush"] = _override_dict(self.webpush)
        return {k: v for k, v in out.items() if v not in (None, {})}

    @classmethod
    def from_dict(cls, data: object) -> PushMessage:
        """The message of a JSON object (the CLI's ``--message FILE``), overrides included
        (``fcm.android`` and friends in FCM's own JSON shape)."""
        if not isinstance(data, Mapping):
            raise PayloadError("a message must be a JSON object", field="message")
        fields = dict(data)
        try:
            apns = fields.pop("apns", None)
            fcm = fields.pop("fcm", None)
            webpush = fields.pop("webpush", None)
            if fcm is not None:
                fcm = dict(fcm)
                for name, struct in _FCM_BLOCKS.items():
                    if isinstance(fcm.get(name), Mapping):
                        fcm[name] = struct(**fcm[name])
            return cls(
                **fields,
                apns=APNsOverride(**apns) if apns is not None else None,
                fcm=FCMOverride(**fcm) if fcm is not None else None,
                webpush=WebPushOverride(**webpush) if webpush is not None else None,
            )
        except TypeError as e:
            raise PayloadError(f"message: {e}", field="message") from None


#: The FCM blocks an override may carry in FCM's own JSON shape. msgspec cannot decode them
#: by type (their ``ttl`` and ``payload`` unions), so they are built from the keys as given
#: (nested objects stay dicts, which encode the same); FCM checks the values.
_FCM_BLOCKS: dict[str, type[msgspec.Struct]] = {
    "android": AndroidConfig,
    "apns": ApnsConfig,
    "webpush": WebpushConfig,
}


def _webpush_message(payload: dict[str, Any], ttl: int, o: WebPushOverride) -> WebPushMessage:
    try:
        return WebPushMessage(payload, ttl=ttl, urgency=o.urgency, topic=o.topic)
    except PayloadError as e:
        # Name the message's field: the override's delivery settings, or the payload's size.
        name = e.field if e.field in ("ttl", "urgency", "topic") else None
        field = f"message.webpush.{name}" if name else "message"
        raise PayloadError(f"Web Push: {e}", field=field) from None


def _pick(override: Any, value: Any) -> Any:
    return value if override is None else override


def _override_dict(override: APNsOverride | FCMOverride | WebPushOverride) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in override.__dataclass_fields__:
        value = getattr(override, name)
        if value is None:
            continue
        if isinstance(value, msgspec.Struct):
            value = msgspec.to_builtins(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[name] = value
    return out
