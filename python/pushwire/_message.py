"""APNs messages (headers + payload, shared by many tokens) and notifications (one per device).

A :class:`Message` is validated and encoded once; sending it to a million tokens passes the
same bytes to the engine a million times by reference.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import msgspec

from . import _core
from ._errors import PayloadError

if TYPE_CHECKING:
    from .fcm import FCMMessage

#: push type -> (topic suffix, allowed priorities, default priority, payload limit)
PUSH_TYPES: dict[str, tuple[str, frozenset[int], int | None, int]] = {
    "alert": ("", frozenset({1, 5, 10}), None, 4096),
    "background": ("", frozenset({5}), 5, 4096),
    "location": (".location-query", frozenset({5, 10}), None, 4096),
    "voip": (".voip", frozenset({1, 5, 10}), None, 5120),
    "complication": (".complication", frozenset({1, 5, 10}), None, 4096),
    "fileprovider": (".pushkit.fileprovider", frozenset({1, 5, 10}), None, 4096),
    "mdm": ("", frozenset({1, 5, 10}), None, 4096),
    "liveactivity": (".push-type.liveactivity", frozenset({5, 10}), None, 4096),
    "pushtotalk": (".voip-ptt", frozenset({10}), 10, 4096),
    "widgets": (".push-type.widgets", frozenset({1, 5, 10}), None, 4096),
    "controls": (".push-type.controls", frozenset({1, 5, 10}), None, 4096),
}

DEVICE_PATH = "/3/device/"
#: Bundle ids are at most 155 characters; with the longest push-type suffix this is ample.
MAX_TOPIC_BYTES = 255

_encoder = msgspec.json.Encoder()

Payload = Union[dict[str, Any], bytes, str, msgspec.Struct]


def _encode(payload: Payload) -> bytes:
    try:
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            body = _encoder.encode(payload)
    except (TypeError, ValueError, msgspec.EncodeError) as e:
        # UnicodeEncodeError (a lone surrogate) is a ValueError too.
        raise PayloadError(f"payload cannot be encoded as JSON: {e}", field="payload") from None
    stripped = body.lstrip()
    if not stripped.startswith(b"{"):
        raise PayloadError("payload must be a JSON object", field="payload")
    return body


def _header_bytes(value: object, field: str) -> bytes:
    """UTF-8 of a header value; text UTF-8 cannot encode (lone surrogates) is a PayloadError."""
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be a string", field=field)
    try:
        return value.encode()
    except UnicodeEncodeError:
        message = f"{field} contains text that is not valid Unicode"
        raise PayloadError(message, field=field) from None


class Message:
    """What to send (payload and APNs headers), independent of the device.

    ``topic`` is the bundle id; the suffix required by ``push_type`` (``.voip``,
    ``.push-type.liveactivity``...) is added when missing.
    """

    __slots__ = (
        "_template",
        "collapse_id",
        "expiration",
        "payload",
        "priority",
        "push_type",
        "topic",
    )

    def __init__(
        self,
        payload: Payload,
        *,
        topic: str,
        push_type: str = "alert",
        priority: int | None = None,
        expiration: int | None = None,
        collapse_id: str | None = None,
    ) -> None:
        if not isinstance(push_type, str) or push_type not in PUSH_TYPES:
            raise PayloadError(
                f"apns-push-type {push_type!r} is unknown; expected one of {', '.join(PUSH_TYPES)}",
                field="apns-push-type",
            )
        suffix, priorities, default_priority, limit = PUSH_TYPES[push_type]
        if not isinstance(topic, str) or not topic:
            raise PayloadError("apns-topic is required (the app's bundle id)", field="apns-topic")
        if len(_header_bytes(topic, "apns-topic")) > MAX_TOPIC_BYTES:
            raise PayloadError(
                f"apns-topic is {len(topic.encode())} bytes; a bundle id plus its push-type "
                f"suffix fits in {MAX_TOPIC_BYTES}",
                field="apns-topic",
            )
        if suffix and not topic.endswith(suffix):
            topic += suffix
        if priority is None:
            priority = default_priority
        # bool is an int in Python: True would otherwise pass as priority 1.
        if priority is not None and (
            not isinstance(priority, int)
            or isinstance(priority, bool)
            or priority not in priorities
        ):
            allowed = ", ".join(str(p) for p in sorted(priorities))
            raise PayloadError(
                f"apns-priority {priority!r} is not allowed for {push_type} pushes "
                f"(allowed: {allowed})",
                field="apns-priority",
            )
        if expiration is not None and (
            not isinstance(expiration, int) or isinstance(expiration, bool) or expiration < 0
        ):
            raise PayloadError(
                "apns-expiration must be a UNIX time in seconds (0 = try once)",
                field="apns-expiration",
            )
        if collapse_id is not None and len(_header_bytes(collapse_id, "apns-collapse-id")) > 64:
            raise PayloadError(
                f"apns-collapse-id is {len(collapse_id.encode())} bytes; APNs allows 64",
                field="apns-collapse-id",
            )
        body = _encode(payload)
        if len(body) > limit:
            raise PayloadError(
                f"payload is {len(body)} bytes; the limit for {push_type} pushes is {limit}",
                field="payload",
            )
        headers = [("apns-topic", topic), ("apns-push-type", push_type)]
        if priority is not None:
            headers.append(("apns-priority", str(priority)))
        if expiration is not None:
            headers.append(("apns-expiration", str(expiration)))
        if collapse_id is not None:
            headers.append(("apns-collapse-id", collapse_id))
        # Header values are checked in Rust (CR/LF, NUL, non-ASCII) and raise PayloadError.
        self._template = _core.Template(DEVICE_PATH, headers, body, "hex")
        self.payload = body
        self.topic = topic
        self.push_type = push_type
        self.priority = priority
        self.expiration = expiration
        self.collapse_id = collapse_id

    def __repr__(self) -> str:
        return (
            f"Message(topic={self.topic!r}, push_type={self.push_type!r}, "
            f"priority={self.priority!r}, payload={len(self.payload)}B)"
        )


class Notification(NamedTuple):
    """One message to one device. A plain tuple, so batches cross into Rust without copies."""

    token: str
    #: A :class:`Message` for APNs, an :class:`pushwire.FCMMessage` for FCM.
    message: Message | FCMMessage
    apns_id: str | None = None


#: What a client takes as one notification: a :class:`Notification`, or the plain
#: ``(token, message, apns_id)`` tuple it is.
NotificationLike = Union[Notification, tuple[str, "Message | FCMMessage", Union[str, None]]]


def new_apns_id() -> str:
    """A fresh lowercase canonical UUID for ``apns-id``."""
    return str(uuid.uuid4())
