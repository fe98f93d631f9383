"""Golden tests for the typed payload builders: exact JSON and headers per push type (protocol.md
§1.2-1.4, §3), every validation with the field it names, a property test and a mock delivery."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import pushwire
from pushwire import Message, PayloadError, payload
from pushwire.payload import Alert, Aps, LocalizedString, Sound
from pushwire.testing import MockAPNs

TOPIC = "com.example.app"
HeaderList = list[tuple[str, str]]


def headers_of(message: Message) -> HeaderList:
    """The APNs headers the message sends, in Message's order (the Rust template is opaque)."""
    headers = [("apns-topic", message.topic), ("apns-push-type", message.push_type)]
    if message.priority is not None:
        headers.append(("apns-priority", str(message.priority)))
    if message.expiration is not None:
        headers.append(("apns-expiration", str(message.expiration)))
    if message.collapse_id is not None:
        headers.append(("apns-collapse-id", message.collapse_id))
    return headers


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def assert_nothing_unset(value: Any, path: str = "$") -> None:
    """Unset fields must be absent, never null (APNs and iOS treat null as a value)."""
    assert value is not None, f"{path} is null"
    if isinstance(value, dict):
        for key, item in value.items():
            assert_nothing_unset(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_nothing_unset(item, f"{path}[{i}]")


# --- golden payloads and headers ---------------------------------------------------------------

FULL_ALERT = {
    "aps": {
        "alert": {
            "title": "Game Request",
            "subtitle": "Five Card Draw",
            "body": "Bob wants to play poker",
            "launch-image": "table.png",
            "title-loc-key": "GAME_TITLE",
            "title-loc-args": ["Bob"],
            "subtitle-loc-key": "GAME_SUBTITLE",
            "subtitle-loc-args": ["5"],
            "loc-key": "GAME_PLAY_REQUEST_FORMAT",
            "loc-args": ["Jenna", "Frank"],
        },
        "badge": 9,
        "sound": "bingbong.aiff",
        "thread-id": "game-42",
        "category": "GAME_INVITATION",
        "mutable-content": 1,
        "target-content-id": "table-7",
        "interruption-level": "time-sensitive",
        "relevance-score": 0.75,
        "filter-criteria": "work",
    },
    "gameID": "12345678",
}

# Apple's push-to-start example (ActivityKit docs), with its localized alert and in-alert sound.
LA_START = {
    "aps": {
        "alert": {
            "title": {"loc-key": "%@ is on an adventure!", "loc-args": ["Power Panda"]},
            "body": {"loc-key": "%@ found a sword!", "loc-args": ["Power Panda"]},
            "sound": "chime.aiff",
        },
        "event": "start",
        "timestamp": 1234,
        "content-state": {"currentHealthLevel": 100, "eventDescription": "Adventure has begun!"},
        "attributes-type": "AdventureAttributes",
        "attributes": {"currentHealthLevel": 100, "eventDescription": "Adventure has begun!"},
        "input-push-token": 1,
    }
}

LA_UPDATE = {
    "aps": {
        "alert": {
            "title": {"loc-key": "%@ is knocked down!", "loc-args": ["Power Panda"]},
            "body": {"loc-key": "Use a potion to heal %@!", "loc-args": ["Power Panda"]},
            "sound": "HeroDown.mp4",
        },
        "relevance-score": 75.5,
        "event": "update",
        "timestamp": 1685952000,
        "content-state": {
            "currentHealthLevel": 0.0,
            "eventDescription": "Power Panda has been knocked down!",
        },
        "stale-date": 1685955600,
    }
}


def panda_alert(title_key: str, body_key: str, sound: str) -> Alert:
    return Alert(
        title=LocalizedString(title_key, ["Power Panda"]),
        body=LocalizedString(body_key, ["Power Panda"]),
        sound=sound,
    )


GOLDEN: dict[str, tuple[Callable[[], Message], dict[str, Any], HeaderList]] = {
    "alert-minimal": (
        lambda: payload.alert(TOPIC, body="Hello"),
        {"aps": {"alert": {"body": "Hello"}}},
        [("apns-topic", TOPIC), ("apns-push-type", "alert")],
    ),
    "alert-full": (
        lambda: payload.alert(
            TOPIC,
            title="Game Request",
            subtitle="Five Card Draw",
            body="Bob wants to play poker",
            badge=9,
            sound="bingbong.aiff",
            thread_id="game-42",
            category="GAME_INVITATION",
            mutable_content=True,
            interruption_level="time-sensitive",
            relevance_score=0.75,
            target_content_id="table-7",
            filter_criteria="work",
            launch_image="table.png",
            title_loc_key="GAME_TITLE",
            title_loc_args=["Bob"],
            subtitle_loc_key="GAME_SUBTITLE",
            subtitle_loc_args=("5",),
            loc_key="GAME_PLAY_REQUEST_FORMAT",
            loc_args=["Jenna", "Frank"],
            custom={"gameID": "12345678"},
            priority=5,
            expiration=1700000000,
            collapse_id="game-42",
        ),
        FULL_ALERT,
        [
            ("apns-topic", TOPIC),
            ("apns-push-type", "alert"),
            ("apns-priority", "5"),
            ("apns-expiration", "1700000000"),
            ("apns-collapse-id", "game-42"),
        ],
    ),
    "alert-badge-clear": (
        lambda: payload.alert(TOPIC, badge=0),
        {"aps": {"badge": 0}},
        [("apns-topic", TOPIC), ("apns-push-type", "alert")],
    ),
    "alert-critical-sound": (
        lambda: payload.alert(
            TOPIC,
            title="Fire alarm",
            sound=Sound("siren.caf", volume=0.8),
            interruption_level="critical",
            priority=10,
        ),
        {
            "aps": {
                "alert": {"title": "Fire alarm"},
                "sound": {"name": "siren.caf", "volume": 0.8, "critical": 1},
                "interruption-level": "critical",
            }
        },
        [("apns-topic", TOPIC), ("apns-push-type", "alert"), ("apns-priority", "10")],
    ),
    "background": (
        lambda: payload.background(TOPIC, custom={"sync": "inbox"}),
        {"aps": {"content-available": 1}, "sync": "inbox"},
        [("apns-topic", TOPIC), ("apns-push-type", "background"), ("apns-priority", "5")],
    ),
    "voip": (
        lambda: payload.voip(TOPIC, custom={"call_id": "c-1", "caller": "Ada"}),
        {"call_id": "c-1", "caller": "Ada"},
        [("apns-topic", f"{TOPIC}.voip"), ("apns-push-type", "voip"), ("apns-expiration", "0")],
    ),
    "voip-topic-already-suffixed": (
        lambda: payload.voip(f"{TOPIC}.voip", custom={"call_id": "c-2"}, expiration=None),
        {"call_id": "c-2"},
        [("apns-topic", f"{TOPIC}.voip"), ("apns-push-type", "voip")],
    ),
    "pushtotalk": (
        lambda: payload.push_to_talk(TOPIC, custom={"activeSpeaker": "Ada"}),
        {"activeSpeaker": "Ada"},
        [
            ("apns-topic", f"{TOPIC}.voip-ptt"),
            ("apns-push-type", "pushtotalk"),
            ("apns-priority", "10"),
            ("apns-expiration", "0"),
        ],
    ),
    "location": (
        lambda: payload.location(TOPIC),
        {},
        [("apns-topic", f"{TOPIC}.location-query"), ("apns-push-type", "location")],
    ),
    "complication": (
        lambda: payload.complication(TOPIC, custom={"score": "3-1"}, priority=5),
        {"score": "3-1"},
        [
            ("apns-topic", f"{TOPIC}.complication"),
            ("apns-push-type", "complication"),
            ("apns-priority", "5"),
        ],
    ),
    "fileprovider": (
        lambda: payload.fileprovider(
            TOPIC, custom={"container-identifier": "root", "domain": "docs"}
        ),
        {"container-identifier": "root", "domain": "docs"},
        [("apns-topic", f"{TOPIC}.pushkit.fileprovider"), ("apns-push-type", "fileprovider")],
    ),
    "mdm": (
        lambda: payload.mdm("com.apple.mgmt.External.5a3b", "8E1F7F9E-PUSHMAGIC"),
        {"mdm": "8E1F7F9E-PUSHMAGIC"},
        [("apns-topic", "com.apple.mgmt.External.5a3b"), ("apns-push-type", "mdm")],
    ),
    "widgets": (
        lambda: payload.widgets(TOPIC),
        {"aps": {"content-changed": True}},
        [("apns-topic", f"{TOPIC}.push-type.widgets"), ("apns-push-type", "widgets")],
    ),
    "controls": (
        lambda: payload.controls(TOPIC),
        {"aps": {"content-changed": True}},
        [
            ("apns-topic", f"{TOPIC}.push-type.controls"),
            ("apns-push-type", "controls"),
            ("apns-priority", "10"),
            ("apns-expiration", "0"),
        ],
    ),
    "wallet": (
        lambda: payload.wallet_pass("pass.com.example.boarding"),
        {},
        [("apns-topic", "pass.com.example.boarding"), ("apns-push-type", "alert")],
    ),
    "wallet-background": (
        lambda: payload.wallet_pass("pass.com.example.boarding", push_type="background"),
        {},
        [
            ("apns-topic", "pass.com.example.boarding"),
            ("apns-push-type", "background"),
            ("apns-priority", "5"),
        ],
    ),
    "liveactivity-start": (
        lambda: payload.live_activity_start(
            TOPIC,
            attributes_type="AdventureAttributes",
            attributes={"currentHealthLevel": 100, "eventDescription": "Adventure has begun!"},
            content_state={"currentHealthLevel": 100, "eventDescription": "Adventure has begun!"},
            timestamp=1234,
            alert=panda_alert("%@ is on an adventure!", "%@ found a sword!", "chime.aiff"),
            input_push_token=True,
        ),
        LA_START,
        [
            ("apns-topic", f"{TOPIC}.push-type.liveactivity"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "10"),
        ],
    ),
    "liveactivity-start-channel": (
        lambda: payload.live_activity_start(
            TOPIC,
            attributes_type="Match",
            attributes={"home": "A", "away": "B"},
            content_state={"score": "0-0"},
            timestamp=datetime(2025, 1, 1, tzinfo=timezone.utc),
            alert=Alert(title="Kick-off", body="A vs B"),
            input_push_channel="dHN0LXNyY2gtY2hubA==",
            stale_date=1735693200,
            relevance_score=-3,
            dismissal_date=1735700000,
            priority=5,
        ),
        {
            "aps": {
                "alert": {"title": "Kick-off", "body": "A vs B"},
                "relevance-score": -3,
                "event": "start",
                "timestamp": 1735689600,
                "content-state": {"score": "0-0"},
                "stale-date": 1735693200,
                "dismissal-date": 1735700000,
                "attributes-type": "Match",
                "attributes": {"home": "A", "away": "B"},
                "input-push-channel": "dHN0LXNyY2gtY2hubA==",
            }
        },
        [
            ("apns-topic", f"{TOPIC}.push-type.liveactivity"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "5"),
        ],
    ),
    "liveactivity-update": (
        lambda: payload.live_activity_update(
            TOPIC,
            content_state={
                "currentHealthLevel": 0.0,
                "eventDescription": "Power Panda has been knocked down!",
            },
            timestamp=1685952000,
            stale_date=datetime(2023, 6, 5, 9, 0),  # naive: taken as UTC
            alert=panda_alert("%@ is knocked down!", "Use a potion to heal %@!", "HeroDown.mp4"),
            relevance_score=75.5,
        ),
        LA_UPDATE,
        [
            ("apns-topic", f"{TOPIC}.push-type.liveactivity"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "10"),
        ],
    ),
    "liveactivity-update-quiet": (
        lambda: payload.live_activity_update(
            TOPIC, content_state={"currentHealthLevel": 0.941}, timestamp=1685952000, priority=5
        ),
        {
            "aps": {
                "event": "update",
                "timestamp": 1685952000,
                "content-state": {"currentHealthLevel": 0.941},
            }
        },
        [
            ("apns-topic", f"{TOPIC}.push-type.liveactivity"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "5"),
        ],
    ),
    "liveactivity-end": (
        lambda: payload.live_activity_end(
            TOPIC,
            content_state={"currentHealthLevel": 1.0},
            timestamp=1685952100,
            dismissal_date=1663177260,
            collapse_id="adventure-1",
        ),
        {
            "aps": {
                "event": "end",
                "timestamp": 1685952100,
                "content-state": {"currentHealthLevel": 1.0},
                "dismissal-date": 1663177260,
            }
        },
        [
            ("apns-topic", f"{TOPIC}.push-type.liveactivity"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "10"),
            ("apns-collapse-id", "adventure-1"),
        ],
    ),
}


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_payload(case: str) -> None:
    build, expected, _ = GOLDEN[case]
    message = build()
    decoded = json.loads(message.payload)
    assert decoded == expected  # key-order independent
    assert message.payload == compact(expected)  # exact bytes: compact, fields in Struct order
    assert_nothing_unset(decoded)


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_headers(case: str) -> None:
    build, _, expected_headers = GOLDEN[case]
    assert headers_of(build()) == expected_headers


def test_headers_attributes_directly() -> None:
    message = payload.controls(TOPIC, collapse_id="c")
    assert (message.topic, message.push_type, message.priority) == (
        f"{TOPIC}.push-type.controls",
        "controls",
        10,
    )
    assert (message.expiration, message.collapse_id) == (0, "c")


def test_wallet_payload_is_exactly_an_empty_dict() -> None:
    assert payload.wallet_pass("pass.com.example").payload == b"{}"


def test_every_aps_key_is_spelled_as_apple_does() -> None:
    # protocol.md §1.4, in table order.
    apple_keys = [
        "alert",
        "badge",
        "sound",
        "thread-id",
        "category",
        "content-available",
        "mutable-content",
        "target-content-id",
        "interruption-level",
        "relevance-score",
        "filter-criteria",
        "stale-date",
        "content-state",
        "timestamp",
        "event",
        "dismissal-date",
        "attributes-type",
        "attributes",
        "input-push-token",
        "input-push-channel",
        "content-changed",
    ]
    aps_keys = {f.encode_name for f in msgspec.structs.fields(Aps)}
    assert aps_keys == set(apple_keys)
    alert_keys = {f.encode_name for f in msgspec.structs.fields(Alert)}
    assert alert_keys == {
        "title",
        "subtitle",
        "body",
        "launch-image",
        "title-loc-key",
        "title-loc-args",
        "subtitle-loc-key",
        "subtitle-loc-args",
        "loc-key",
        "loc-args",
        "sound",
    }


def test_empty_structs_encode_to_empty_objects() -> None:
    assert msgspec.json.encode(Aps()) == b"{}"
    assert msgspec.json.encode(Alert()) == b"{}"
    assert msgspec.json.encode(LocalizedString("k")) == b'{"loc-key":"k"}'
    assert msgspec.json.encode(Sound()) == b'{"name":"default","volume":1.0,"critical":1}'


def test_message_accepts_a_payload_built_from_structs() -> None:
    message = Message({"aps": Aps(alert=Alert(body="hi"), badge=1), "k": 2}, topic=TOPIC)
    assert json.loads(message.payload) == {"aps": {"alert": {"body": "hi"}, "badge": 1}, "k": 2}


# --- decoding ----------------------------------------------------------------------------------


class Envelope(msgspec.Struct):
    """The ``aps`` part of a payload; custom keys beside it are ignored."""

    aps: Aps


@pytest.mark.parametrize("case", [c for c in GOLDEN if "aps" in GOLDEN[c][1]])
def test_aps_round_trips_through_decoding(case: str) -> None:
    message = GOLDEN[case][0]()
    aps = msgspec.json.decode(message.payload, type=Envelope).aps
    assert json.loads(msgspec.json.encode(aps)) == json.loads(message.payload)["aps"]


def test_decoding_apples_live_activity_example() -> None:
    aps = msgspec.json.decode(compact(LA_START), type=Envelope).aps
    assert aps.event == "start" and aps.timestamp == 1234
    assert isinstance(aps.alert, Alert) and aps.alert.title == LocalizedString(
        "%@ is on an adventure!", ["Power Panda"]
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"aps":{"badge":1,"bagde":2}}', "unknown field `bagde`"),
        (b'{"aps":{"alert":{"titel":"x"}}}', "unknown field `titel`"),
        (b'{"aps":{"sound":{"name":"a","volume":2.0,"critical":1}}}', "aps.sound.volume"),
        (b'{"aps":{"interruption-level":"loud"}}', "interruption-level"),
        (b'{"aps":{"content-state":{"a":1}}}', "aps.content-state"),
        (b'{"aps":{"event":"start","timestamp":1,"content-state":{}}}', "aps.alert"),
    ],
)
def test_decoding_is_strict(raw: bytes, words: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(raw, type=Envelope)
    assert words in str(info.value)


# --- times -------------------------------------------------------------------------------------


def start_at(**times: Any) -> dict[str, Any]:
    message = payload.live_activity_start(
        TOPIC,
        attributes_type="T",
        attributes={},
        content_state={},
        alert=Alert(body="b"),
        **{"timestamp": 0, **times},
    )
    aps: dict[str, Any] = json.loads(message.payload)["aps"]
    return aps


@pytest.mark.parametrize(
    "when",
    [
        1735689600,
        1735689600.99,  # floats are truncated to whole seconds
        datetime(2025, 1, 1, tzinfo=timezone.utc),
        datetime(2025, 1, 1),  # naive = UTC
        datetime(2025, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_times_become_epoch_seconds(when: Any) -> None:
    aps = start_at(timestamp=when, stale_date=when, dismissal_date=when)
    assert aps["timestamp"] == aps["stale-date"] == aps["dismissal-date"] == 1735689600


# --- bad input: every validation names its field -----------------------------------------------


def la_start(**overrides: Any) -> Message:
    kwargs: dict[str, Any] = {
        "attributes_type": "T",
        "attributes": {"a": 1},
        "content_state": {"s": 1},
        "timestamp": 1,
        "alert": Alert(title="t", body="b"),
        **overrides,
    }
    return payload.live_activity_start(TOPIC, **kwargs)


def la_update(**overrides: Any) -> Message:
    return payload.live_activity_update(
        TOPIC, **{"content_state": {"s": 1}, "timestamp": 1, **overrides}
    )


def la_end(**overrides: Any) -> Message:
    return payload.live_activity_end(
        TOPIC, **{"content_state": {"s": 1}, "timestamp": 1, **overrides}
    )


def alert_with(**kwargs: Any) -> Callable[[], Message]:
    return lambda: payload.alert(kwargs.pop("topic", TOPIC), **kwargs)


BAD_INPUT: list[tuple[str, Callable[[], object], str]] = [
    # sound
    ("volume above 1", lambda: Sound("a.caf", volume=1.5), "aps.sound.volume"),
    ("volume below 0", lambda: Sound("a.caf", volume=-0.1), "aps.sound.volume"),
    ("volume NaN", lambda: Sound("a.caf", volume=math.nan), "aps.sound.volume"),
    ("volume bool", lambda: Sound("a.caf", volume=True), "aps.sound.volume"),
    ("critical 2", lambda: Sound("a.caf", critical=2), "aps.sound.critical"),
    ("sound name int", lambda: Sound(3), "aps.sound.name"),
    ("sound int", alert_with(sound=5), "aps.sound"),
    ("sound empty", alert_with(body="b", sound=""), "aps.sound"),
    ("critical sound empty name", lambda: Sound(""), "aps.sound.name"),
    ("loc-args without loc-key", alert_with(loc_args=["a"]), "aps.alert.loc-args"),
    (
        "title-loc-args without title-loc-key",
        alert_with(title_loc_args=["a"], body="b"),
        "aps.alert.title-loc-args",
    ),
    (
        "subtitle-loc-args without subtitle-loc-key",
        alert_with(subtitle_loc_args=["a"], body="b"),
        "aps.alert.subtitle-loc-args",
    ),
    # badge
    ("badge negative", alert_with(badge=-1), "aps.badge"),
    ("badge bool", alert_with(badge=True), "aps.badge"),
    ("badge float", alert_with(badge=1.5), "aps.badge"),
    # custom keys
    ("custom aps", alert_with(custom={"aps": {"badge": 1}}), "custom"),
    ("custom not a mapping", alert_with(custom=[("k", 1)]), "custom"),
    ("custom int key", alert_with(custom={1: "x"}), "custom"),
    ("custom unencodable", alert_with(custom={"when": object()}), "custom.when"),
    ("background custom aps", lambda: payload.background(TOPIC, custom={"aps": {}}), "custom"),
    ("voip custom None", lambda: payload.voip(TOPIC, custom=None), "custom"),
    ("ptt custom None", lambda: payload.push_to_talk(TOPIC, custom=None), "custom"),
    # alert fields
    ("relevance above 1", alert_with(relevance_score=1.5), "aps.relevance-score"),
    ("relevance negative", alert_with(relevance_score=-0.1), "aps.relevance-score"),
    ("relevance text", alert_with(relevance_score="high"), "aps.relevance-score"),
    ("interruption level", alert_with(interruption_level="urgent"), "aps.interruption-level"),
    ("title int", alert_with(title=5), "aps.alert.title"),
    ("body list", alert_with(body=["x"]), "aps.alert.body"),
    ("subtitle int", alert_with(subtitle=5), "aps.alert.subtitle"),
    ("launch image int", alert_with(launch_image=1), "aps.alert.launch-image"),
    ("title-loc-key int", alert_with(title_loc_key=1), "aps.alert.title-loc-key"),
    ("subtitle-loc-key int", alert_with(subtitle_loc_key=1), "aps.alert.subtitle-loc-key"),
    ("loc-key int", alert_with(loc_key=1), "aps.alert.loc-key"),
    ("loc-args string", alert_with(loc_args="Bob"), "aps.alert.loc-args"),
    ("title-loc-args ints", alert_with(title_loc_args=[1]), "aps.alert.title-loc-args"),
    ("subtitle-loc-args", alert_with(subtitle_loc_args=[None]), "aps.alert.subtitle-loc-args"),
    ("thread-id int", alert_with(thread_id=1), "aps.thread-id"),
    ("category int", alert_with(category=1), "aps.category"),
    ("target-content-id", alert_with(target_content_id=1), "aps.target-content-id"),
    ("filter-criteria", alert_with(filter_criteria=1), "aps.filter-criteria"),
    ("lone surrogate", alert_with(title="\ud800"), "aps.alert.title"),
    ("too large", alert_with(body="x" * 5000), "payload"),
    # headers, checked by Message
    ("empty topic", alert_with(topic="", body="x"), "apns-topic"),
    ("collapse id too long", alert_with(collapse_id="x" * 65), "apns-collapse-id"),
    ("expiration negative", alert_with(expiration=-1), "apns-expiration"),
    ("expiration bool", alert_with(expiration=True), "apns-expiration"),
    ("priority bool", alert_with(priority=True), "apns-priority"),
    ("topic surrogate", alert_with(topic="com.\ud800"), "apns-topic"),
    ("collapse id surrogate", alert_with(collapse_id="\ud800"), "apns-collapse-id"),
    ("alert priority 7", alert_with(priority=7), "apns-priority"),
    ("background priority 10", lambda: payload.background(TOPIC, priority=10), "apns-priority"),
    ("ptt priority 5", lambda: payload.push_to_talk(TOPIC, custom={}, priority=5), "apns-priority"),
    ("liveactivity priority 1", lambda: la_update(priority=1), "apns-priority"),
    (
        "wallet background 10",
        lambda: payload.wallet_pass("pass.x", push_type="background", priority=10),
        "apns-priority",
    ),
    ("wallet empty topic", lambda: payload.wallet_pass(""), "apns-topic"),
    ("voip too large", lambda: payload.voip(TOPIC, custom={"x": "y" * 5200}), "payload"),
    # mdm
    ("mdm empty magic", lambda: payload.mdm("uid", ""), "mdm"),
    ("mdm magic int", lambda: payload.mdm("uid", 5), "mdm"),
    ("mdm magic surrogate", lambda: payload.mdm("uid", "\udc00"), "mdm"),
    # Live Activity start: each required field, then other checks
    ("start without alert", lambda: la_start(alert=None), "aps.alert"),
    ("start without type", lambda: la_start(attributes_type=None), "aps.attributes-type"),
    ("start without attributes", lambda: la_start(attributes=None), "aps.attributes"),
    ("start without state", lambda: la_start(content_state=None), "aps.content-state"),
    ("start without timestamp", lambda: la_start(timestamp=None), "aps.timestamp"),
    ("start alert int", lambda: la_start(alert=5), "aps.alert"),
    ("start type int", lambda: la_start(attributes_type=5), "aps.attributes-type"),
    ("attributes list", lambda: la_start(attributes=[1]), "aps.attributes"),
    ("attributes unencodable", lambda: la_start(attributes={"x": object()}), "aps.attributes"),
    (
        "token and channel",
        lambda: la_start(input_push_token=True, input_push_channel="c2g="),
        "aps.input-push-channel",
    ),
    ("channel int", lambda: la_start(input_push_channel=5), "aps.input-push-channel"),
    # Live Activity content-state and times
    ("state list", lambda: la_update(content_state=[1, 2]), "aps.content-state"),
    ("state int keys", lambda: la_update(content_state={1: "x"}), "aps.content-state"),
    (
        "state unencodable",
        lambda: la_update(content_state={"d": object()}),
        "aps.content-state",
    ),
    ("end state None", lambda: la_end(content_state=None), "aps.content-state"),
    ("end timestamp None", lambda: la_end(timestamp=None), "aps.timestamp"),
    ("timestamp text", lambda: la_update(timestamp="now"), "aps.timestamp"),
    ("timestamp negative", lambda: la_update(timestamp=-5), "aps.timestamp"),
    ("timestamp infinite", lambda: la_update(timestamp=math.inf), "aps.timestamp"),
    ("timestamp bool", lambda: la_update(timestamp=True), "aps.timestamp"),
    ("stale-date text", lambda: la_update(stale_date="soon"), "aps.stale-date"),
    ("dismissal-date text", lambda: la_end(dismissal_date="later"), "aps.dismissal-date"),
    ("LA relevance text", lambda: la_update(relevance_score="x"), "aps.relevance-score"),
    ("LA relevance NaN", lambda: la_update(relevance_score=math.nan), "aps.relevance-score"),
    ("update alert int", lambda: la_update(alert=5), "aps.alert"),
    # Structs used directly
    ("loc-key int", lambda: LocalizedString(5), "loc-key"),
    ("loc-args string", lambda: LocalizedString("k", "abc"), "loc-args"),
    ("alert sound int", lambda: Alert(body="b", sound=1), "aps.alert.sound"),
    ("aps alert int", lambda: Aps(alert=5), "aps.alert"),
    ("LA key without event", lambda: Aps(content_state={}), "aps.content-state"),
    ("timestamp without event", lambda: Aps(timestamp=1), "aps.timestamp"),
    ("unknown event", lambda: Aps(event="pause"), "aps.event"),
    (
        "start-only key on update",
        lambda: Aps(event="update", timestamp=1, content_state={}, attributes={}),
        "aps.attributes",
    ),
    ("content-available 0", lambda: Aps(content_available=0), "aps.content-available"),
    ("mutable-content True", lambda: Aps(mutable_content=True), "aps.mutable-content"),
    ("input-push-token 2", lambda: Aps(input_push_token=2), "aps.input-push-token"),
    ("content-changed text", lambda: Aps(content_changed="yes"), "aps.content-changed"),
    (
        "localized title outside LA",
        lambda: Aps(alert=Alert(title=LocalizedString("k"))),
        "aps.alert.title",
    ),
    (
        "localized body outside LA",
        lambda: Aps(alert=Alert(body=LocalizedString("k"))),
        "aps.alert.body",
    ),
    ("alert sound outside LA", lambda: Aps(alert=Alert(body="b", sound="s")), "aps.alert.sound"),
]


@pytest.mark.parametrize(
    ("build", "field"),
    [pytest.param(build, field, id=name) for name, build, field in BAD_INPUT],
)
def test_bad_input_names_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_volume_message_reads_well() -> None:
    with pytest.raises(PayloadError, match="volume must be between 0 and 1"):
        Sound(volume=2)


def test_builders_raise_only_payload_error_for_a_missing_required_field() -> None:
    # A ValueError subclass, so `except ValueError` callers keep working.
    with pytest.raises(ValueError, match=r"aps\.alert is required"):
        la_start(alert=None)


# --- property: arbitrary text --------------------------------------------------------------------

any_text = st.one_of(
    st.none(),
    st.text(),
    # A lone surrogate somewhere: valid Python text that UTF-8 cannot encode.
    st.tuples(st.text(), st.characters(categories=["Cs"]), st.text()).map("".join),
    st.text(min_size=1, max_size=4).map(lambda s: s * 700),  # near and over the 4096 limit
)
custom_keys = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(st.text(max_size=8), st.just("aps")), st.text(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(title=any_text, subtitle=any_text, body=any_text, thread_id=any_text, custom=custom_keys)
def test_alert_with_arbitrary_text(
    title: str | None,
    subtitle: str | None,
    body: str | None,
    thread_id: str | None,
    custom: dict[str, str] | None,
) -> None:
    try:
        message = payload.alert(
            TOPIC, title=title, subtitle=subtitle, body=body, thread_id=thread_id, custom=custom
        )
    except PayloadError as e:
        event(f"rejected: {e.field}")
        assert e.field in {
            "payload",
            "custom",
            "aps.alert.title",
            "aps.alert.subtitle",
            "aps.alert.body",
            "aps.thread-id",
        } or (e.field or "").startswith("custom.")
        return
    event("accepted")
    decoded = json.loads(message.payload)
    aps = decoded.pop("aps")
    given_alert = {"title": title, "subtitle": subtitle, "body": body}
    expected_alert = {k: v for k, v in given_alert.items() if v is not None}
    assert aps.get("alert", {}) == expected_alert
    assert aps.get("thread-id") == thread_id
    assert decoded == (custom or {})
    assert len(message.payload) <= 4096


# --- end to end through the mock APNs ----------------------------------------------------------


def one_of_each_push_type() -> list[Message]:
    messages = [build() for build, _, _ in GOLDEN.values()]
    # The largest payload each limit allows: VoIP is the only one above 4096 bytes.
    messages.append(payload.voip(TOPIC, custom={"call": "x" * (5120 - len('{"call":""}'))}))
    messages.append(payload.alert(TOPIC, body="x" * (4096 - len('{"aps":{"alert":{"body":""}}}'))))
    return messages


def test_every_push_type_is_delivered_by_the_mock() -> None:
    messages = one_of_each_push_type()
    assert {m.push_type for m in messages} == set(pushwire.PUSH_TYPES)
    assert max(len(m.payload) for m in messages) == 5120
    with MockAPNs() as server:

        async def main() -> list[pushwire.Result]:
            async with server.client() as client:
                return await client.send_many(
                    [pushwire.Notification("ab" * 32, m) for m in messages]
                )

        results = asyncio.run(main())
    assert len(results) == len(messages)
    assert all(r.delivered for r in results), [(r.reason, r.error) for r in results]
