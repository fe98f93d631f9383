"""Typed APNs payloads: msgspec Structs for the ``aps`` dictionary and one builder per push type.

Each builder returns a ready :class:`pushwire.Message` with the right ``apns-push-type``, topic
suffix and priority rules::

    from pushwire import payload

    message = payload.alert("com.example.app", title="Order shipped", body="Arrives Tuesday",
                            badge=3, sound="default", custom={"order": 1234})
    ring = payload.voip("com.example.app", custom={"call_id": "c-42", "caller": "Ada"})
    panda = payload.live_activity_update(
        "com.example.app",
        content_state={"health": 0.2},
        timestamp=datetime.now(timezone.utc),
        alert=payload.Alert(
            title=payload.LocalizedString("%@ is knocked down!", ["Power Panda"]),
            body="Use a potion",
            sound="HeroDown.mp4",
        ),
    )

Rules the builders follow (see ``protocol.md`` §1.2-1.4 and §3):

- Struct field names are Apple's keys (``thread_id`` -> ``thread-id``) and unset fields are left
  out of the JSON. Decoding an ``aps`` object (``msgspec.json.decode(raw, type=Aps)``) rejects
  unknown keys and runs the same checks.
- Custom keys go beside ``aps``, never inside it (APNs ignores unknown keys inside ``aps``).
- Times (``timestamp``, ``stale_date``, ``dismissal_date``) are epoch seconds (int or float,
  truncated) or datetimes; a naive datetime is taken as UTC.
- Invalid input raises :class:`pushwire.PayloadError`; ``field`` is the JSON path of the culprit
  (``aps.sound.volume``, ``aps.content-state``, ``custom``) or the header (``apns-priority``).
- ``content_state`` is decoded on the device with Swift's *default* ``JSONDecoder`` strategies:
  a ``Date`` there expects seconds since 2001-01-01 as a number, so don't put datetimes (which
  encode as ISO strings) in it unless your ``ContentState`` decodes strings.

Raw payloads stay possible: ``Message(dict | bytes, ...)``, and ``Message({"aps": Aps(...)})``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Union

import msgspec

from ._errors import PayloadError
from ._message import Message

__all__ = [
    "Alert",
    "Aps",
    "LocalizedString",
    "Sound",
    "alert",
    "background",
    "complication",
    "controls",
    "fileprovider",
    "live_activity_end",
    "live_activity_start",
    "live_activity_update",
    "location",
    "mdm",
    "push_to_talk",
    "voip",
    "wallet_pass",
    "widgets",
]

InterruptionLevel = Literal["passive", "active", "time-sensitive", "critical"]
LiveActivityEvent = Literal["start", "update", "end"]
#: Epoch seconds, or a datetime (naive = UTC).
Timestamp = Union[int, float, datetime]

INTERRUPTION_LEVELS = ("passive", "active", "time-sensitive", "critical")
LIVE_ACTIVITY_EVENTS = ("start", "update", "end")

_encoder = msgspec.json.Encoder()


# --- validation helpers: each raises PayloadError naming the JSON path -------------------------
# Callers test ``is not None`` before calling: most fields are unset, and these checks run for
# every message built, so a skipped call is the cheapest check.


def _fail(field: str, problem: str) -> PayloadError:
    return PayloadError(f"{field} {problem}", field=field)


def _check_text(value: object, field: str) -> None:
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, not {type(value).__name__}")


def _check_text_list(value: object, field: str) -> None:
    # A bare string is a Sequence too; refuse it rather than send one argument per character.
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(field, "must be a list of strings")


def _check_number(value: object, field: str, low: float, high: float) -> None:
    # bool is an int subclass, but True as a score or volume is a bug, not a number.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(field, f"must be a finite number, not {value!r}")
    if not low <= value <= high:
        raise _fail(field, f"must be between {low:g} and {high:g} (got {value!r})")


def _check_count(value: object, field: str) -> None:
    if type(value) is not int or value < 0:
        raise _fail(field, f"must be a non-negative integer, not {value!r}")


def _check_flag(value: object, field: str) -> None:
    # Apple's flags are the number 1; to turn one off, leave it out.
    if type(value) is not int or value != 1:
        raise _fail(field, f"must be 1 (leave it unset for off), not {value!r}")


def _check_json_object(value: object, field: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(field, "must be a dict with string keys")


def _check_sound(value: object, field: str) -> None:
    if not isinstance(value, (str, Sound)):
        raise _fail(field, "must be a file name string or a Sound")
    if isinstance(value, str) and not value:
        # iOS plays nothing and reports nothing; leave sound unset for a silent alert.
        raise _fail(field, 'must name a sound file or "default" (leave it unset for silence)')


def _check_loc_pair(args: object, key: object, field: str, key_field: str) -> None:
    """``*-loc-args`` fill a ``*-loc-key`` format string; without the key iOS ignores them."""
    if args is not None and key is None:
        raise _fail(field, f"needs {key_field} (the format string the arguments fill)")


def _check_alert_text(value: object, field: str) -> None:
    if not isinstance(value, (str, LocalizedString)):
        raise _fail(field, "must be a string or a LocalizedString")


def _epoch_seconds(value: Timestamp | None, field: str) -> int | None:
    """Epoch seconds from an int/float or a datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return math.floor(value.timestamp())
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(field, f"must be epoch seconds or a datetime, not {value!r}")
    return math.floor(value)


# --- Structs -----------------------------------------------------------------------------------


class LocalizedString(
    msgspec.Struct, rename="kebab", omit_defaults=True, forbid_unknown_fields=True, frozen=True
):
    """A localized Live Activity alert title or body: ``{"loc-key": ..., "loc-args": [...]}``."""

    loc_key: str
    loc_args: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_text(self.loc_key, "loc-key")
        _check_text_list(self.loc_args, "loc-args")


class Sound(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The dictionary form of ``aps.sound``, for critical alerts.

    Always encodes all three keys, as in Apple's example: ``{"name", "volume", "critical": 1}``.
    A plain string (file name or ``"default"``) is the usual, non-critical form.
    """

    name: str = "default"
    volume: float = 1.0
    critical: int = 1

    def __post_init__(self) -> None:
        _check_text(self.name, "aps.sound.name")
        if not self.name:
            raise _fail("aps.sound.name", 'must name a sound file or "default"')
        _check_number(self.volume, "aps.sound.volume", 0.0, 1.0)
        if type(self.critical) is not int or self.critical not in (0, 1):
            raise _fail("aps.sound.critical", f"must be 0 or 1, not {self.critical!r}")


class Alert(
    msgspec.Struct, rename="kebab", omit_defaults=True, forbid_unknown_fields=True, frozen=True
):
    """``aps.alert``. ``LocalizedString`` titles/bodies and ``sound`` are for Live Activities.

    Regular notifications localize with ``title_loc_key``/``loc_key`` and put the sound in
    ``aps.sound``; Live Activity alerts follow Apple's examples, with ``{"loc-key", "loc-args"}``
    objects and ``sound`` inside the alert.
    """

    title: Union[str, LocalizedString, None] = None
    subtitle: Union[str, None] = None
    body: Union[str, LocalizedString, None] = None
    launch_image: Union[str, None] = None
    title_loc_key: Union[str, None] = None
    title_loc_args: Union[Sequence[str], None] = None
    subtitle_loc_key: Union[str, None] = None
    subtitle_loc_args: Union[Sequence[str], None] = None
    loc_key: Union[str, None] = None
    loc_args: Union[Sequence[str], None] = None
    sound: Union[str, Sound, None] = None

    def __post_init__(self) -> None:
        if self.title is not None:
            _check_alert_text(self.title, "aps.alert.title")
        if self.subtitle is not None:
            _check_text(self.subtitle, "aps.alert.subtitle")
        if self.body is not None:
            _check_alert_text(self.body, "aps.alert.body")
        if self.launch_image is not None:
            _check_text(self.launch_image, "aps.alert.launch-image")
        if self.title_loc_key is not None:
            _check_text(self.title_loc_key, "aps.alert.title-loc-key")
        if self.title_loc_args is not None:
            _check_text_list(self.title_loc_args, "aps.alert.title-loc-args")
        if self.subtitle_loc_key is not None:
            _check_text(self.subtitle_loc_key, "aps.alert.subtitle-loc-key")
        if self.subtitle_loc_args is not None:
            _check_text_list(self.subtitle_loc_args, "aps.alert.subtitle-loc-args")
        if self.loc_key is not None:
            _check_text(self.loc_key, "aps.alert.loc-key")
        if self.loc_args is not None:
            _check_text_list(self.loc_args, "aps.alert.loc-args")
        if self.sound is not None:
            _check_sound(self.sound, "aps.alert.sound")
        _check_loc_pair(
            self.title_loc_args,
            self.title_loc_key,
            "aps.alert.title-loc-args",
            "aps.alert.title-loc-key",
        )
        _check_loc_pair(
            self.subtitle_loc_args,
            self.subtitle_loc_key,
            "aps.alert.subtitle-loc-args",
            "aps.alert.subtitle-loc-key",
        )
        _check_loc_pair(self.loc_args, self.loc_key, "aps.alert.loc-args", "aps.alert.loc-key")


class Aps(
    msgspec.Struct, rename="kebab", omit_defaults=True, forbid_unknown_fields=True, frozen=True
):
    """The ``aps`` dictionary (protocol.md §1.4), checked on construction and on decoding.

    Live Activity keys (``timestamp``, ``content_state``...) need ``event``; ``event="start"``
    needs ``alert``, ``attributes_type``, ``attributes``, ``content_state`` and ``timestamp``.
    """

    alert: Union[Alert, str, None] = None
    badge: Union[int, None] = None
    sound: Union[Sound, str, None] = None
    thread_id: Union[str, None] = None
    category: Union[str, None] = None
    content_available: Union[Literal[1], None] = None
    mutable_content: Union[Literal[1], None] = None
    target_content_id: Union[str, None] = None
    interruption_level: Union[InterruptionLevel, None] = None
    relevance_score: Union[float, None] = None
    filter_criteria: Union[str, None] = None
    # Live Activities (ActivityKit)
    event: Union[LiveActivityEvent, None] = None
    timestamp: Union[int, None] = None
    content_state: Union[dict[str, Any], None] = None
    stale_date: Union[int, None] = None
    dismissal_date: Union[int, None] = None
    attributes_type: Union[str, None] = None
    attributes: Union[dict[str, Any], None] = None
    input_push_token: Union[Literal[1], None] = None
    input_push_channel: Union[str, None] = None
    # WidgetKit widgets and controls
    content_changed: Union[bool, None] = None

    def __post_init__(self) -> None:
        _check_notification_keys(self)
        if self.event is None:
            _check_regular_aps(self)
        else:
            _check_live_activity_keys(self)
            _check_live_activity_aps(self)
        if self.content_changed is not None and not isinstance(self.content_changed, bool):
            raise _fail("aps.content-changed", "must be true or false")


def _check_notification_keys(aps: Aps) -> None:
    """Types and values of the keys any push may carry."""
    if aps.alert is not None and not isinstance(aps.alert, (Alert, str)):
        raise _fail("aps.alert", "must be an Alert or a string")
    if aps.badge is not None:
        _check_count(aps.badge, "aps.badge")
    if aps.sound is not None:
        _check_sound(aps.sound, "aps.sound")
    if aps.thread_id is not None:
        _check_text(aps.thread_id, "aps.thread-id")
    if aps.category is not None:
        _check_text(aps.category, "aps.category")
    if aps.content_available is not None:
        _check_flag(aps.content_available, "aps.content-available")
    if aps.mutable_content is not None:
        _check_flag(aps.mutable_content, "aps.mutable-content")
    if aps.target_content_id is not None:
        _check_text(aps.target_content_id, "aps.target-content-id")
    if aps.interruption_level is not None and aps.interruption_level not in INTERRUPTION_LEVELS:
        raise _fail("aps.interruption-level", f"must be one of {', '.join(INTERRUPTION_LEVELS)}")
    if aps.filter_criteria is not None:
        _check_text(aps.filter_criteria, "aps.filter-criteria")


_FieldNames = tuple[tuple[str, str], ...]
_START_ONLY_FIELDS: _FieldNames = (
    ("attributes_type", "aps.attributes-type"),
    ("attributes", "aps.attributes"),
    ("input_push_token", "aps.input-push-token"),
    ("input_push_channel", "aps.input-push-channel"),
)
# Keys ActivityKit reads; without "event" they would be silently ignored.
_LIVE_ACTIVITY_FIELDS: _FieldNames = (
    ("timestamp", "aps.timestamp"),
    ("content_state", "aps.content-state"),
    ("stale_date", "aps.stale-date"),
    ("dismissal_date", "aps.dismissal-date"),
    *_START_ONLY_FIELDS,
)
# In the order protocol.md §3.1 lists them.
_START_REQUIRED_FIELDS: _FieldNames = (
    ("alert", "aps.alert"),
    ("attributes_type", "aps.attributes-type"),
    ("attributes", "aps.attributes"),
    ("content_state", "aps.content-state"),
    ("timestamp", "aps.timestamp"),
)
_EVENT_REQUIRED_FIELDS: _FieldNames = (
    ("content_state", "aps.content-state"),
    ("timestamp", "aps.timestamp"),
)


def _check_regular_aps(aps: Aps) -> None:
    """Rules for notifications that are not Live Activity updates."""
    # Spelled out rather than looped over _LIVE_ACTIVITY_FIELDS: this runs for every alert.
    if (
        aps.timestamp is not None
        or aps.content_state is not None
        or aps.stale_date is not None
        or aps.dismissal_date is not None
        or aps.attributes_type is not None
        or aps.attributes is not None
        or aps.input_push_token is not None
        or aps.input_push_channel is not None
    ):
        for attr, field in _LIVE_ACTIVITY_FIELDS:
            if getattr(aps, attr) is not None:
                raise _fail(field, "is a Live Activity key; it needs aps.event (start/update/end)")
    # Only Live Activities take any number; notification summaries sort by 0-1.
    if aps.relevance_score is not None:
        _check_number(aps.relevance_score, "aps.relevance-score", 0.0, 1.0)
    if isinstance(aps.alert, Alert):
        # iOS would not read these forms outside a Live Activity: the user would see a blank
        # title or hear no sound, with no error from APNs.
        if isinstance(aps.alert.title, LocalizedString):
            raise _fail("aps.alert.title", "must be a string here; use title_loc_key/args")
        if isinstance(aps.alert.body, LocalizedString):
            raise _fail("aps.alert.body", "must be a string here; use loc_key/loc_args")
        if aps.alert.sound is not None:
            raise _fail("aps.alert.sound", "belongs in aps.sound outside Live Activities")


def _check_live_activity_keys(aps: Aps) -> None:
    """Types and values of the Live Activity keys."""
    if aps.event not in LIVE_ACTIVITY_EVENTS:
        raise _fail("aps.event", f"must be start, update or end, not {aps.event!r}")
    if aps.relevance_score is not None:
        _check_number(aps.relevance_score, "aps.relevance-score", -math.inf, math.inf)
    if aps.timestamp is not None:
        _check_count(aps.timestamp, "aps.timestamp")
    if aps.content_state is not None:
        _check_json_object(aps.content_state, "aps.content-state")
    if aps.stale_date is not None:
        _check_count(aps.stale_date, "aps.stale-date")
    if aps.dismissal_date is not None:
        _check_count(aps.dismissal_date, "aps.dismissal-date")
    if aps.attributes_type is not None:
        _check_text(aps.attributes_type, "aps.attributes-type")
    if aps.attributes is not None:
        _check_json_object(aps.attributes, "aps.attributes")
    if aps.input_push_token is not None:
        _check_flag(aps.input_push_token, "aps.input-push-token")
    if aps.input_push_channel is not None:
        _check_text(aps.input_push_channel, "aps.input-push-channel")


def _check_live_activity_aps(aps: Aps) -> None:
    """Required and forbidden keys per event (protocol.md §3.1)."""
    if aps.event == "start":
        required = _START_REQUIRED_FIELDS
    else:
        required = _EVENT_REQUIRED_FIELDS
        for attr, field in _START_ONLY_FIELDS:
            if getattr(aps, attr) is not None:
                raise _fail(field, f"is only for event 'start', not {aps.event!r}")
    for attr, field in required:
        if getattr(aps, attr) is None:
            raise _fail(field, f"is required for a Live Activity {aps.event!r} event")
    if aps.input_push_token is not None and aps.input_push_channel is not None:
        raise _fail(
            "aps.input-push-channel", "and aps.input-push-token are alternatives; set only one"
        )


# --- payload encoding --------------------------------------------------------------------------


def _check_custom(custom: object) -> None:
    if not isinstance(custom, Mapping):
        raise _fail("custom", f"must be a mapping of custom keys, not {type(custom).__name__}")
    for key in custom:
        if not isinstance(key, str):
            raise _fail("custom", f"keys must be strings, not {key!r}")
    if "aps" in custom:
        raise _fail("custom", "must not contain 'aps': custom keys go beside aps, not in it")


def _encodes(value: object) -> bool:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError, msgspec.EncodeError):
        return False
    return True


def _unencodable_path(value: object, path: str) -> str:
    """Narrow an encoding failure down to the Struct field at fault (error path only)."""
    if isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            member = getattr(value, field.name)
            if not _encodes(member):
                return _unencodable_path(member, f"{path}.{field.encode_name}")
    return path


def _encode_payload(
    aps: Aps | None, custom: Mapping[str, Any] | None, custom_path: str = "custom."
) -> bytes:
    """The JSON body: ``aps`` first, custom keys beside it. Errors name the key at fault."""
    payload: dict[str, Any] = {} if aps is None else {"aps": aps}
    if custom is not None:
        _check_custom(custom)
        payload.update(custom)
    try:
        return _encoder.encode(payload)
    except (TypeError, ValueError, msgspec.EncodeError) as e:
        for key, value in payload.items():
            if not _encodes(value):
                field = _unencodable_path(value, "aps" if key == "aps" else custom_path + key)
                raise _fail(field, f"cannot be encoded as JSON: {e}") from None
        raise PayloadError(f"payload cannot be encoded as JSON: {e}", field="payload") from None


def _message(
    push_type: str,
    topic: str,
    body: bytes,
    priority: int | None,
    expiration: int | None,
    collapse_id: str | None,
) -> Message:
    return Message(
        body,
        topic=topic,
        push_type=push_type,
        priority=priority,
        expiration=expiration,
        collapse_id=collapse_id,
    )


# --- builders: regular notifications -----------------------------------------------------------


def alert(
    topic: str,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    body: str | None = None,
    badge: int | None = None,
    sound: str | Sound | None = None,
    thread_id: str | None = None,
    category: str | None = None,
    mutable_content: bool = False,
    interruption_level: InterruptionLevel | None = None,
    relevance_score: float | None = None,
    target_content_id: str | None = None,
    filter_criteria: str | None = None,
    launch_image: str | None = None,
    title_loc_key: str | None = None,
    title_loc_args: Sequence[str] | None = None,
    subtitle_loc_key: str | None = None,
    subtitle_loc_args: Sequence[str] | None = None,
    loc_key: str | None = None,
    loc_args: Sequence[str] | None = None,
    custom: Mapping[str, Any] | None = None,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A visible notification (``apns-push-type: alert``, topic = bundle id).

    ``aps.alert`` is left out when no alert text is given (a badge- or sound-only push).
    ``relevance_score`` is 0-1; ``mutable_content`` runs the Notification Service Extension.
    """
    texts = (
        title,
        subtitle,
        body,
        launch_image,
        title_loc_key,
        title_loc_args,
        subtitle_loc_key,
        subtitle_loc_args,
        loc_key,
        loc_args,
    )
    alert_dict = None
    if texts.count(None) != len(texts):  # some alert text was given
        alert_dict = Alert(
            title=title,
            subtitle=subtitle,
            body=body,
            launch_image=launch_image,
            title_loc_key=title_loc_key,
            title_loc_args=title_loc_args,
            subtitle_loc_key=subtitle_loc_key,
            subtitle_loc_args=subtitle_loc_args,
            loc_key=loc_key,
            loc_args=loc_args,
        )
    aps = Aps(
        alert=alert_dict,
        badge=badge,
        sound=sound,
        thread_id=thread_id,
        category=category,
        mutable_content=1 if mutable_content else None,
        target_content_id=target_content_id,
        interruption_level=interruption_level,
        relevance_score=relevance_score,
        filter_criteria=filter_criteria,
    )
    body_bytes = _encode_payload(aps, custom)
    return _message("alert", topic, body_bytes, priority, expiration, collapse_id)


_BACKGROUND_APS = Aps(content_available=1)


def background(
    topic: str,
    *,
    custom: Mapping[str, Any] | None = None,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A silent app wake-up: ``{"aps": {"content-available": 1}, ...custom}``.

    Priority is 5 (APNs rejects 10 for background pushes). Apple throttles these; don't send
    more than 2-3 per hour per device.
    """
    body = _encode_payload(_BACKGROUND_APS, custom)
    return _message("background", topic, body, priority, expiration, collapse_id)


def mdm(
    topic: str,
    push_magic: str,
    *,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """An MDM check-in request: ``{"mdm": push_magic}``.

    ``topic`` is the UID in the subject of the MDM push certificate (no suffix); certificate
    connections only.
    """
    if not isinstance(push_magic, str) or not push_magic:
        raise _fail("mdm", "(the device's PushMagic) must be a non-empty string")
    body = _encode_payload(None, {"mdm": push_magic}, custom_path="")
    return _message("mdm", topic, body, priority, expiration, collapse_id)


# --- builders: custom-keys-only pushes (PushKit and friends) -----------------------------------


def _custom_only(
    push_type: str,
    topic: str,
    custom: Mapping[str, Any] | None,
    priority: int | None,
    expiration: int | None,
    collapse_id: str | None,
    *,
    custom_required: bool = False,
) -> Message:
    # These payloads go to an extension or PushKit as a whole dict; no "aps" is needed.
    if custom is None and custom_required:
        raise _fail("custom", f"is required for {push_type} pushes (the app's data)")
    body = _encode_payload(None, {} if custom is None else custom)
    return _message(push_type, topic, body, priority, expiration, collapse_id)


def voip(
    topic: str,
    *,
    custom: Mapping[str, Any],
    priority: int | None = None,
    expiration: int | None = 0,
    collapse_id: str | None = None,
) -> Message:
    """A PushKit VoIP call (topic ``<bundle>.voip``, up to 5120 bytes); call data in ``custom``.

    ``expiration`` defaults to 0 (one attempt, no storage) because a late ring is worse than none;
    the app must report every VoIP push to CallKit.
    """
    return _custom_only(
        "voip", topic, custom, priority, expiration, collapse_id, custom_required=True
    )


def push_to_talk(
    topic: str,
    *,
    custom: Mapping[str, Any],
    priority: int = 10,
    expiration: int | None = 0,
    collapse_id: str | None = None,
) -> Message:
    """A Push to Talk audio push (topic ``<bundle>.voip-ptt``), priority 10, expiration 0.

    ``custom`` carries e.g. the active speaker's name, as Apple's example does.
    """
    return _custom_only(
        "pushtotalk", topic, custom, priority, expiration, collapse_id, custom_required=True
    )


def location(
    topic: str,
    *,
    custom: Mapping[str, Any] | None = None,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A location query for the Location Push Service Extension (``<bundle>.location-query``).

    Token-based connections only; the payload is ``custom`` (``{}`` if none).
    """
    return _custom_only("location", topic, custom, priority, expiration, collapse_id)


def complication(
    topic: str,
    *,
    custom: Mapping[str, Any] | None = None,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A watchOS complication update (topic ``<bundle>.complication``); payload is ``custom``."""
    return _custom_only("complication", topic, custom, priority, expiration, collapse_id)


def fileprovider(
    topic: str,
    *,
    custom: Mapping[str, Any] | None = None,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A File Provider change signal (topic ``<bundle>.pushkit.fileprovider``).

    The payload is ``custom``; Apple doesn't document its keys (one library sends
    ``container-identifier`` and ``domain``).
    """
    return _custom_only("fileprovider", topic, custom, priority, expiration, collapse_id)


def wallet_pass(
    pass_type_id: str,
    *,
    push_type: Literal["alert", "background"] = "alert",
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """A Wallet pass update signal: payload exactly ``{}``, topic = the pass type identifier.

    Send it with the Pass Type ID certificate that signed the pass, to production only.
    Apple documents no ``apns-push-type`` for pass updates. ``"alert"`` is the default because
    ``background`` would force priority 5 (deferred and throttled by the device's power state)
    and its documented payload is ``content-available: 1``, which ``{}`` doesn't match; an
    update can also show a lock-screen message (the pass's ``changeMessage``).
    ``push_type="background"`` is available for setups that already use it.
    """
    return _message(push_type, pass_type_id, b"{}", priority, expiration, collapse_id)


_CONTENT_CHANGED_APS = Aps(content_changed=True)


def widgets(
    topic: str,
    *,
    priority: int | None = None,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """Reload WidgetKit widgets (topic ``<bundle>.push-type.widgets``), budgeted by the system.

    Apple's example sends no priority, so APNs' default (10) applies.
    """
    body = _encode_payload(_CONTENT_CHANGED_APS, None)
    return _message("widgets", topic, body, priority, expiration, collapse_id)


def controls(
    topic: str,
    *,
    priority: int | None = 10,
    expiration: int | None = 0,
    collapse_id: str | None = None,
) -> Message:
    """Reload Control Center controls (topic ``<bundle>.push-type.controls``).

    Priority 10 and expiration 0, as in Apple's example.
    """
    body = _encode_payload(_CONTENT_CHANGED_APS, None)
    return _message("controls", topic, body, priority, expiration, collapse_id)


# --- builders: Live Activities -----------------------------------------------------------------


def _json_object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # msgspec encodes dicts, not arbitrary Mappings; other non-dicts are left for Aps to refuse.
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return dict(value)
    return value


def _live_activity(
    topic: str,
    aps: Aps,
    priority: int,
    expiration: int | None,
    collapse_id: str | None,
) -> Message:
    body = _encode_payload(aps, None)
    return _message("liveactivity", topic, body, priority, expiration, collapse_id)


def live_activity_start(
    topic: str,
    *,
    attributes_type: str,
    attributes: Mapping[str, Any],
    content_state: Mapping[str, Any],
    timestamp: Timestamp,
    alert: Alert,
    stale_date: Timestamp | None = None,
    relevance_score: float | None = None,
    input_push_token: bool = False,
    input_push_channel: str | None = None,
    dismissal_date: Timestamp | None = None,
    priority: int = 10,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """Push-to-start a Live Activity (iOS 17.2+), topic ``<bundle>.push-type.liveactivity``.

    ``alert``, ``attributes_type``, ``attributes``, ``content_state`` and ``timestamp`` are all
    required (``None`` raises PayloadError naming the field). iOS 18+: ``input_push_token=True``
    asks for an update token, ``input_push_channel`` subscribes to a broadcast channel (one or
    the other). Use a token-based connection.
    """
    aps = Aps(
        event="start",
        alert=alert,
        attributes_type=attributes_type,
        attributes=_json_object(attributes),
        content_state=_json_object(content_state),
        timestamp=_epoch_seconds(timestamp, "aps.timestamp"),
        stale_date=_epoch_seconds(stale_date, "aps.stale-date"),
        relevance_score=relevance_score,
        input_push_token=1 if input_push_token else None,
        input_push_channel=input_push_channel,
        dismissal_date=_epoch_seconds(dismissal_date, "aps.dismissal-date"),
    )
    return _live_activity(topic, aps, priority, expiration, collapse_id)


def live_activity_update(
    topic: str,
    *,
    content_state: Mapping[str, Any],
    timestamp: Timestamp,
    stale_date: Timestamp | None = None,
    alert: Alert | None = None,
    relevance_score: float | None = None,
    dismissal_date: Timestamp | None = None,
    priority: int = 10,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """Update a Live Activity with its full ``content_state``.

    An ``alert`` lights up the screen; the highest ``relevance_score`` (any number) wins the
    Dynamic Island. Priority 10 counts toward the hourly budget, 5 doesn't.
    """
    aps = Aps(
        event="update",
        content_state=_json_object(content_state),
        timestamp=_epoch_seconds(timestamp, "aps.timestamp"),
        stale_date=_epoch_seconds(stale_date, "aps.stale-date"),
        alert=alert,
        relevance_score=relevance_score,
        dismissal_date=_epoch_seconds(dismissal_date, "aps.dismissal-date"),
    )
    return _live_activity(topic, aps, priority, expiration, collapse_id)


def live_activity_end(
    topic: str,
    *,
    content_state: Mapping[str, Any],
    timestamp: Timestamp,
    dismissal_date: Timestamp | None = None,
    priority: int = 10,
    expiration: int | None = None,
    collapse_id: str | None = None,
) -> Message:
    """End a Live Activity with its final ``content_state``.

    It stays on the Lock Screen up to 4 hours unless ``dismissal_date`` says otherwise (a past
    date removes it at once).
    """
    aps = Aps(
        event="end",
        content_state=_json_object(content_state),
        timestamp=_epoch_seconds(timestamp, "aps.timestamp"),
        dismissal_date=_epoch_seconds(dismissal_date, "aps.dismissal-date"),
    )
    return _live_activity(topic, aps, priority, expiration, collapse_id)
