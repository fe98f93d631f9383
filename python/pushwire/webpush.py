"""Web Push messages and subscriptions (RFC 8030): what :class:`pushwire.WebPushClient` sends.

A :class:`WebPushSubscription` is what a browser's ``PushSubscription.toJSON()`` gives
(``endpoint``, ``keys.p256dh``, ``keys.auth``). A :class:`WebPushMessage` is the plaintext
and its delivery headers (``TTL`` is mandatory; ``Urgency`` and ``Topic`` optional); the engine
encrypts it for each subscription (RFC 8291) — plaintext at most 3,993 bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._errors import PayloadError

#: Most plaintext one encrypted message carries (4,096 bytes on the wire).
MAX_PLAINTEXT = 3993
#: Longest TTL accepted: 28 days, the most push services keep a message.
MAX_TTL = 28 * 24 * 3600
URGENCIES = ("very-low", "low", "normal", "high")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+=*")


class WebPushSubscription(NamedTuple):
    """A browser's push subscription: its endpoint URL (naming the push service) and keys."""

    endpoint: str
    p256dh: str
    auth: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> WebPushSubscription:
        """From ``PushSubscription.toJSON()`` (a dict or its JSON text)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise PayloadError("subscription is not valid JSON", field="subscription") from None
        if not isinstance(data, Mapping):
            raise PayloadError("subscription must be a JSON object", field="subscription")
        endpoint = data.get("endpoint")
        keys = data.get("keys")
        if not isinstance(endpoint, str) or not endpoint:
            raise PayloadError("subscription has no endpoint", field="endpoint")
        if not isinstance(keys, Mapping):
            raise PayloadError("subscription has no keys {p256dh, auth}", field="keys")
        p256dh, auth = keys.get("p256dh"), keys.get("auth")
        for name, value in (("p256dh", p256dh), ("auth", auth)):
            if not isinstance(value, str) or not _B64URL.fullmatch(value):
                raise PayloadError(f"subscription keys.{name} is not base64url text", field=name)
        return cls(endpoint, p256dh, auth)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        # The auth secret stays out of logs.
        return f"WebPushSubscription(endpoint={self.endpoint!r}, p256dh=..., auth=<hidden>)"


def _check_ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise PayloadError(
            f"ttl must be whole seconds between 0 and {MAX_TTL} (push services keep a message "
            "that long at most); 0 means deliver now or never",
            field="ttl",
        )
    return ttl


class WebPushMessage:
    """A Web Push message: payload (bytes, text, or a dict sent as JSON) and headers.

    ``ttl`` (seconds the push service keeps it for an offline browser) is mandatory.
    ``urgency``: ``very-low``, ``low``, ``normal`` or ``high``. ``topic``: at most 32 base64url
    characters; a newer message with the same topic replaces an undelivered one.
    ``padding``: zero bytes added before encryption, to hide the length.
    """

    __slots__ = ("_headers", "_padding", "_plaintext", "topic", "ttl", "urgency")

    def __init__(
        self,
        payload: bytes | str | Mapping[str, Any] | None = None,
        *,
        ttl: int,
        urgency: str | None = None,
        topic: str | None = None,
        padding: int = 0,
    ) -> None:
        if payload is None:
            plaintext = b""
        elif isinstance(payload, bytes):
            plaintext = payload
        elif isinstance(payload, str):
            plaintext = payload.encode()
        elif isinstance(payload, Mapping):
            try:
                plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            except (TypeError, ValueError) as e:
                raise PayloadError(
                    f"payload is not JSON-serialisable: {e}", field="payload"
                ) from None
        else:
            raise PayloadError("payload must be bytes, str or a dict", field="payload")
        self.ttl = _check_ttl(ttl)
        if urgency is not None and urgency not in URGENCIES:
            raise PayloadError(f"urgency must be one of {', '.join(URGENCIES)}", field="urgency")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise PayloadError(
                "topic must be 1 to 32 characters of the base64url alphabet (A-Z a-z 0-9 - _)",
                field="topic",
            )
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise PayloadError("padding must be a non-negative number of bytes", field="padding")
        if len(plaintext) + padding > MAX_PLAINTEXT:
            raise PayloadError(
                f"payload is {len(plaintext)} bytes"
                + (f" plus {padding} of padding" if padding else "")
                + f"; an encrypted Web Push message carries at most {MAX_PLAINTEXT} bytes "
                "(4,096 on the wire): shorten it",
                field="payload",
            )
        self.urgency = urgency
        self.topic = topic
        self._plaintext = plaintext
        self._padding = padding
        headers = [
            ("ttl", str(self.ttl)),
            ("content-encoding", "aes128gcm"),
            ("content-type", "application/octet-stream"),
        ]
        if urgency is not None:
            headers.append(("urgency", urgency))
        if topic is not None:
            headers.append(("topic", topic))
        self._headers = headers

    @property
    def _template(self) -> WebPushMessage:
        # PushClient.send_to_tokens hands `message._template` to the engine: here, the message.
        return self

    @property
    def payload(self) -> bytes:
        """The plaintext, before encryption."""
        return self._plaintext

    @classmethod
    def declarative(
        cls,
        *,
        title: str,
        navigate: str,
        body: str | None = None,
        lang: str | None = None,
        dir: str | None = None,
        silent: bool | None = None,
        tag: str | None = None,
        app_badge: int | None = None,
        data: Any = None,
        mutable: bool = False,
        ttl: int,
        urgency: str | None = None,
        topic: str | None = None,
    ) -> WebPushMessage:
        """A Declarative Web Push message (Safari 18.4+): shown without a service worker.

        ``mutable=True`` lets a service worker, when there is one, change it before display.
        """
        if not isinstance(title, str) or not title:
            raise PayloadError("declarative notifications need a title", field="title")
        if not isinstance(navigate, str) or not navigate.startswith(("https://", "http://")):
            raise PayloadError(
                "navigate must be the absolute URL opened when the notification is clicked",
                field="navigate",
            )
        if dir is not None and dir not in ("auto", "ltr", "rtl"):
            raise PayloadError("dir must be auto, ltr or rtl", field="dir")
        if app_badge is not None and (
            isinstance(app_badge, bool) or not isinstance(app_badge, int) or app_badge < 0
        ):
            raise PayloadError("app_badge must be a non-negative integer", field="app_badge")
        notification: dict[str, Any] = {"title": title, "navigate": navigate}
        for key, value in (
            ("body", body),
            ("lang", lang),
            ("dir", dir),
            ("silent", silent),
            ("tag", tag),
            ("app_badge", app_badge),
            ("data", data),
        ):
            if value is not None:
                notification[key] = value
        payload: dict[str, Any] = {"web_push": 8030, "notification": notification}
        if mutable:
            payload["mutable"] = True
        return cls(payload, ttl=ttl, urgency=urgency, topic=topic)

    def __repr__(self) -> str:
        return (
            f"WebPushMessage({len(self._plaintext)} bytes, ttl={self.ttl}, "
            f"urgency={self.urgency!r}, topic={self.topic!r})"
        )


class WebPushNotification(NamedTuple):
    """One message to one subscription, for ``send`` and ``send_many``."""

    subscription: WebPushSubscription
    message: WebPushMessage
