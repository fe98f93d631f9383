"""Every field of the FCM v1 Message resource: exact JSON (golden), and a PayloadError naming
the field for each bad input, raised before anything is sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from pushwire import PayloadError, payload
from pushwire.fcm import (
    AndroidConfig,
    AndroidNotification,
    ApnsConfig,
    ApnsFcmOptions,
    FCMMessage,
    FCMNotification,
    FcmOptions,
    LightSettings,
    WebpushConfig,
    WebpushFcmOptions,
    WebpushNotification,
    WebpushNotificationAction,
    as_item,
)
from pushwire.testing import MockFCM

EVENT = dt.datetime(2026, 12, 5, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)


def sent(message: FCMMessage, token: str = "tok-1") -> dict[str, Any]:
    """The v1 request body the engine sends for ``token``."""
    rest = message.encoded[1:-1]
    body = b'{"message":{"token":"' + token.encode() + b'"' + (b"," + rest if rest else b"")
    return json.loads(body + b"}}")["message"]


# --- golden JSON ----------------------------------------------------------------------------------


def test_every_android_notification_field_is_encoded_as_v1_expects() -> None:
    notification = AndroidNotification(
        title="t",
        body="b",
        icon="ic",
        color="#10a0FF",
        sound="ding",
        tag="tg",
        click_action="OPEN",
        body_loc_key="bk",
        body_loc_args=["b1", "b2"],
        title_loc_key="tk",
        title_loc_args=["t1"],
        channel_id="orders",
        ticker="tick",
        sticky=True,
        event_time=EVENT,
        local_only=False,
        notification_priority="PRIORITY_HIGH",
        default_sound=True,
        default_vibrate_timings=False,
        default_light_settings=False,
        vibrate_timings=[0.5, dt.timedelta(milliseconds=250), "1.5s"],
        visibility="PUBLIC",
        notification_count=7,
        light_settings=LightSettings(
            color="#FF000080", light_on_duration=0.2, light_off_duration="0.300s"
        ),
        image="https://example.com/i.png",
        bypass_proxy_notification=False,
        proxy="IF_PRIORITY_LOWERED",
    )
    assert len(AndroidNotification.__struct_fields__) == 27
    message = FCMMessage(android=AndroidConfig(notification=notification))
    assert sent(message)["android"]["notification"] == {
        "title": "t",
        "body": "b",
        "icon": "ic",
        "color": "#10a0FF",
        "sound": "ding",
        "tag": "tg",
        "click_action": "OPEN",
        "body_loc_key": "bk",
        "body_loc_args": ["b1", "b2"],
        "title_loc_key": "tk",
        "title_loc_args": ["t1"],
        "channel_id": "orders",
        "ticker": "tick",
        "sticky": True,
        "event_time": "2026-12-05T03:04:05.123456Z",
        "local_only": False,
        "notification_priority": "PRIORITY_HIGH",
        "default_sound": True,
        "default_vibrate_timings": False,
        "default_light_settings": False,
        "vibrate_timings": ["0.5s", "0.25s", "1.5s"],
        "visibility": "PUBLIC",
        "notification_count": 7,
        "light_settings": {
            "color": {"red": 1.0, "green": 0.0, "blue": 0.0, "alpha": 128 / 255},
            "light_on_duration": "0.2s",
            "light_off_duration": "0.300s",
        },
        "image": "https://example.com/i.png",
        "bypass_proxy_notification": False,
        "proxy": "IF_PRIORITY_LOWERED",
    }


def test_every_android_config_field_and_the_fid_target() -> None:
    message = FCMMessage(
        fid="cXm3V2fE-installation",
        android=AndroidConfig(
            collapse_key="score",
            priority="HIGH",
            ttl=dt.timedelta(seconds=3.5),
            restricted_package_name="com.example.app",
            data={"k": "v"},
            notification={"title": "plain dict", "event_time": EVENT.replace(tzinfo=None)},
            fcm_options={"analytics_label": "a-b_c.d~e%20"},
            direct_boot_ok=True,
            bandwidth_constrained_ok=True,
            restricted_satellite_ok=False,
        ),
    )
    assert message.target_kind == "fid" and as_item(message)[0] == "cXm3V2fE-installation"
    assert json.loads(message.encoded) == {
        "android": {
            "collapse_key": "score",
            "priority": "HIGH",
            "ttl": "3.5s",
            "restricted_package_name": "com.example.app",
            "data": {"k": "v"},
            "notification": {"title": "plain dict", "event_time": "2026-12-05T03:04:05.123456Z"},
            "fcm_options": {"analytics_label": "a-b_c.d~e%20"},
            "direct_boot_ok": True,
            "bandwidth_constrained_ok": True,
            "restricted_satellite_ok": False,
        }
    }


def test_event_time_in_another_zone_is_sent_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    note = AndroidNotification(event_time=dt.datetime(2026, 1, 1, 1, 0, tzinfo=paris))
    assert note.to_json() == {"event_time": "2026-01-01T00:00:00.000000Z"}


def test_apns_and_webpush_fields_and_the_top_level_options() -> None:
    message = FCMMessage(
        topic="/topics/news",
        notification=FCMNotification(title="T", body="B", image="https://example.com/a.png"),
        apns=ApnsConfig(
            headers={"apns-priority": "5", "apns-push-type": "background"},
            payload={"aps": {"content-available": 1}, "custom": 1},
            fcm_options=ApnsFcmOptions(analytics_label="ios", image="https://example.com/b.png"),
            live_activity_token="la-token",
        ),
        webpush=WebpushConfig(
            headers={"TTL": "60", "Urgency": "high", "Topic": "scores"},
            data={"w": "1"},
            notification=WebpushNotification(
                title="wt",
                body="wb",
                icon="/i.png",
                badge="/b.png",
                image="/im.png",
                lang="fr",
                tag="g",
                dir="rtl",
                renotify=True,
                require_interaction=True,
                silent=False,
                timestamp=1_700_000_000_000,
                vibrate=[100, 50, 100],
                actions=[WebpushNotificationAction(action="open", title="Open", icon="/o.png")],
                data={"deep": [1, 2]},
            ),
            fcm_options=WebpushFcmOptions(link="https://example.com/n", analytics_label="web"),
        ),
        analytics_label="campaign-7",
    )
    assert message.target_kind == "topic" and message.target == "news"
    assert json.loads(message.encoded) == {
        "notification": {"title": "T", "body": "B", "image": "https://example.com/a.png"},
        "apns": {
            "headers": {"apns-priority": "5", "apns-push-type": "background"},
            "payload": {"aps": {"content-available": 1}, "custom": 1},
            "fcm_options": {"analytics_label": "ios", "image": "https://example.com/b.png"},
            "live_activity_token": "la-token",
        },
        "webpush": {
            "headers": {"TTL": "60", "Urgency": "high", "Topic": "scores"},
            "data": {"w": "1"},
            # The Notification API's own spelling inside the free-form object.
            "notification": {
                "title": "wt",
                "body": "wb",
                "icon": "/i.png",
                "badge": "/b.png",
                "image": "/im.png",
                "lang": "fr",
                "tag": "g",
                "dir": "rtl",
                "renotify": True,
                "requireInteraction": True,
                "silent": False,
                "timestamp": 1_700_000_000_000,
                "vibrate": [100, 50, 100],
                "actions": [{"action": "open", "title": "Open", "icon": "/o.png"}],
                "data": {"deep": [1, 2]},
            },
            "fcm_options": {"link": "https://example.com/n", "analytics_label": "web"},
        },
        "fcm_options": {"analytics_label": "campaign-7"},
    }


def test_a_webpush_notification_dict_is_sent_as_given() -> None:
    notification = {"title": "t", "requireInteraction": True, "x-own": {"k": 1}}
    message = FCMMessage(webpush={"notification": notification})
    assert sent(message)["webpush"] == {"notification": notification}


def test_a_message_as_apns_payload_carries_its_headers() -> None:
    background = payload.background("com.example.app", custom={"sync": 1}, expiration=99)
    message = FCMMessage(data={"k": "v"}, apns=ApnsConfig(payload=background))
    assert sent(message)["apns"] == {
        "headers": {
            "apns-push-type": "background",
            "apns-topic": "com.example.app",
            "apns-priority": "5",
            "apns-expiration": "99",
        },
        "payload": {"aps": {"content-available": 1}, "sync": 1},
    }
    alert = payload.alert("com.example.app", body="x", priority=10, collapse_id="c1")
    headers = sent(FCMMessage(apns=ApnsConfig(payload=alert)))["apns"]["headers"]
    assert headers == {
        "apns-push-type": "alert",
        "apns-topic": "com.example.app",
        "apns-priority": "10",
        "apns-collapse-id": "c1",
    }
    # An explicit header that agrees is kept once; one that contradicts is refused.
    same = ApnsConfig(headers={"apns-priority": "5"}, payload=background)
    assert same.all_headers()["apns-priority"] == "5"
    with pytest.raises(PayloadError) as info:
        ApnsConfig(headers={"APNs-Priority": "10"}, payload=background)
    assert info.value.field == "apns.headers.apns-priority"


def test_a_message_payload_without_aps_is_refused() -> None:
    no_aps = payload.Message({"custom": 1}, topic="com.example.app")
    with pytest.raises(PayloadError) as info:
        ApnsConfig(payload=no_aps)
    assert info.value.field == "apns.payload"


def test_durations_accept_seconds_timedeltas_and_strings() -> None:
    assert AndroidConfig(ttl=0).to_json() == {"ttl": "0s"}
    assert AndroidConfig(ttl=1.000000001).to_json() == {"ttl": "1.000000001s"}
    assert AndroidConfig(ttl=dt.timedelta(weeks=4)).to_json() == {"ttl": "2419200s"}
    assert AndroidConfig(ttl="2419200s").to_json() == {"ttl": "2419200s"}


# --- sizes ---------------------------------------------------------------------------------------


def test_a_token_message_holds_4096_bytes_of_data_keys_and_values() -> None:
    fits = {"k": "x" * 4095}
    assert sent(FCMMessage(data=fits))["data"] == fits
    with pytest.raises(PayloadError) as info:
        FCMMessage(data={"k": "x" * 4096})
    assert info.value.field == "data" and "4097 bytes" in str(info.value)
    # UTF-8 bytes, not characters.
    with pytest.raises(PayloadError):
        FCMMessage(data={"k": "é" * 2048})


def test_a_topic_message_holds_2048_bytes() -> None:
    FCMMessage(topic="news", data={"k": "x" * 2047})
    with pytest.raises(PayloadError) as info:
        FCMMessage(topic="news", data={"k": "x" * 2048})
    assert info.value.field == "data" and "to a topic" in str(info.value)
    # The same data to a token is fine.
    FCMMessage(token="t", data={"k": "x" * 2048})


def test_notification_texts_count_towards_the_payload() -> None:
    with pytest.raises(PayloadError) as info:
        FCMMessage(notification=FCMNotification(body="x" * 4096))
    assert info.value.field == "notification"
    with pytest.raises(PayloadError) as info:
        FCMMessage(android=AndroidConfig(data={"k": "x" * 4096}))
    assert info.value.field == "android.data"


async def _send_bulk(server: MockFCM, message: FCMMessage, tokens: list[str]) -> list[Any]:
    async with server.client() as client:
        return list(await client.send_to_tokens(message, tokens))


def test_the_largest_payloads_are_accepted_by_the_mock(service_account: Any) -> None:
    big = FCMMessage(data={"k": "x" * 4095})
    topic = FCMMessage(topic="news", data={"k": "x" * 2047})

    async def main() -> list[Any]:
        async with server.client() as client:
            return [
                *(await client.send_to_tokens(big, ["tok-a", "tok-b"])),
                await client.send(topic),
                await client.send(FCMMessage(fid="fid-1", data={"k": "v"})),
            ]

    with MockFCM(credentials=service_account) as server:
        results = asyncio.run(main())
    assert [r.delivered for r in results] == [True] * 4, [r.error for r in results]


# --- bad input ----------------------------------------------------------------------------------

BAD: list[tuple[str, Callable[[], object], str]] = [
    # targets
    ("empty token", lambda: FCMMessage(token=""), "message.token"),
    ("int topic", lambda: FCMMessage(topic=3), "message.topic"),  # type: ignore[arg-type]
    ("two targets", lambda: FCMMessage(fid="f", condition="c"), "message.target"),
    ("bad topic", lambda: FCMMessage(topic="/topics/a b"), "message.topic"),
    ("validate_only yes", lambda: FCMMessage(validate_only="yes"), "validate_only"),  # type: ignore[arg-type]
    # notification
    ("title int", lambda: FCMNotification(title=1), "notification.title"),  # type: ignore[arg-type]
    ("notification str", lambda: FCMMessage(notification="hi"), "notification"),  # type: ignore[arg-type]
    ("notification unknown", lambda: FCMMessage(notification={"titel": "x"}), "notification.titel"),
    # data
    ("reserved gcm", lambda: FCMMessage(data={"gcm": "x"}), "data.gcm"),
    ("reserved googlex", lambda: FCMMessage(data={"googlex": "x"}), "data.googlex"),
    ("reserved gcm.x", lambda: FCMMessage(data={"gcm.x": "x"}), "data.gcm.x"),
    ("reserved notification", lambda: FCMMessage(data={"notification": "x"}), "data.notification"),
    ("reserved from", lambda: FCMMessage(data={"from": "x"}), "data.from"),
    ("data list", lambda: FCMMessage(data=["a"]), "data"),  # type: ignore[arg-type]
    ("data value int", lambda: FCMMessage(data={"n": 1}), "data.n"),  # type: ignore[dict-item]
    # android
    ("android str", lambda: FCMMessage(android="x"), "android"),  # type: ignore[arg-type]
    ("priority foo", lambda: AndroidConfig(priority="foo"), "android.priority"),  # type: ignore[arg-type]
    ("priority lower", lambda: AndroidConfig(priority="high"), "android.priority"),  # type: ignore[arg-type]
    ("direct_boot_ok yes", lambda: AndroidConfig(direct_boot_ok="yes"), "android.direct_boot_ok"),  # type: ignore[arg-type]
    (
        "bandwidth int",
        lambda: AndroidConfig(bandwidth_constrained_ok=1),  # type: ignore[arg-type]
        "android.bandwidth_constrained_ok",
    ),
    (
        "satellite str",
        lambda: AndroidConfig(restricted_satellite_ok="no"),  # type: ignore[arg-type]
        "android.restricted_satellite_ok",
    ),
    ("collapse_key int", lambda: AndroidConfig(collapse_key=1), "android.collapse_key"),  # type: ignore[arg-type]
    (
        "package int",
        lambda: AndroidConfig(restricted_package_name=1),  # type: ignore[arg-type]
        "android.restricted_package_name",
    ),
    ("ttl negative", lambda: AndroidConfig(ttl=-1), "android.ttl"),
    ("ttl too long", lambda: AndroidConfig(ttl="2419201s"), "android.ttl"),
    ("ttl bool", lambda: AndroidConfig(ttl=True), "android.ttl"),
    ("ttl nan", lambda: AndroidConfig(ttl=float("nan")), "android.ttl"),
    ("ttl minutes", lambda: AndroidConfig(ttl="10m"), "android.ttl"),
    ("notification foo", lambda: AndroidConfig(notification="foo"), "android.notification"),  # type: ignore[arg-type]
    (
        "notification dict bad",
        lambda: AndroidConfig(notification={"title": 1}),
        "android.notification.title",
    ),
    (
        "notification dict unknown",
        lambda: AndroidConfig(notification={"colour": "#000000"}),
        "android.notification.colour",
    ),
    (
        "fcm_options label",
        lambda: FcmOptions(analytics_label="a b"),
        "android.fcm_options.analytics_label",
    ),
    (
        "fcm_options label long",
        lambda: AndroidConfig(fcm_options={"analytics_label": "a" * 51}),
        "android.fcm_options.analytics_label",
    ),
    # android.notification
    ("color name", lambda: AndroidNotification(color="red"), "android.notification.color"),
    ("color short", lambda: AndroidNotification(color="#fff"), "android.notification.color"),
    ("color alpha", lambda: AndroidNotification(color="#ffffffff"), "android.notification.color"),
    ("body int", lambda: AndroidNotification(body=2), "android.notification.body"),  # type: ignore[arg-type]
    ("icon int", lambda: AndroidNotification(icon=2), "android.notification.icon"),  # type: ignore[arg-type]
    ("sound int", lambda: AndroidNotification(sound=2), "android.notification.sound"),  # type: ignore[arg-type]
    ("tag int", lambda: AndroidNotification(tag=2), "android.notification.tag"),  # type: ignore[arg-type]
    (
        "click_action int",
        lambda: AndroidNotification(click_action=2),  # type: ignore[arg-type]
        "android.notification.click_action",
    ),
    ("channel int", lambda: AndroidNotification(channel_id=2), "android.notification.channel_id"),  # type: ignore[arg-type]
    ("ticker int", lambda: AndroidNotification(ticker=2), "android.notification.ticker"),  # type: ignore[arg-type]
    ("image int", lambda: AndroidNotification(image=2), "android.notification.image"),  # type: ignore[arg-type]
    (
        "body_loc_args without key",
        lambda: AndroidNotification(body_loc_args=["a"]),
        "android.notification.body_loc_args",
    ),
    (
        "title_loc_args without key",
        lambda: AndroidNotification(title_loc_args=["a"]),
        "android.notification.title_loc_args",
    ),
    (
        "loc args a string",
        lambda: AndroidNotification(body_loc_key="k", body_loc_args="abc"),  # type: ignore[arg-type]
        "android.notification.body_loc_args",
    ),
    (
        "loc key int",
        lambda: AndroidNotification(title_loc_key=1),  # type: ignore[arg-type]
        "android.notification.title_loc_key",
    ),
    ("sticky str", lambda: AndroidNotification(sticky="yes"), "android.notification.sticky"),  # type: ignore[arg-type]
    (
        "local_only int",
        lambda: AndroidNotification(local_only=0),
        "android.notification.local_only",
    ),  # type: ignore[arg-type]
    (
        "default_sound str",
        lambda: AndroidNotification(default_sound="y"),  # type: ignore[arg-type]
        "android.notification.default_sound",
    ),
    (
        "default_vibrate int",
        lambda: AndroidNotification(default_vibrate_timings=1),  # type: ignore[arg-type]
        "android.notification.default_vibrate_timings",
    ),
    (
        "default_light int",
        lambda: AndroidNotification(default_light_settings=1),  # type: ignore[arg-type]
        "android.notification.default_light_settings",
    ),
    (
        "bypass proxy str",
        lambda: AndroidNotification(bypass_proxy_notification="y"),  # type: ignore[arg-type]
        "android.notification.bypass_proxy_notification",
    ),
    (
        "event_time not RFC 3339",
        lambda: AndroidNotification(event_time="5 Dec 2026"),
        "android.notification.event_time",
    ),
    (
        "event_time int",
        lambda: AndroidNotification(event_time=1700000000),  # type: ignore[arg-type]
        "android.notification.event_time",
    ),
    (
        "vibrate ISO nonsense",
        lambda: AndroidNotification(vibrate_timings=["PT-S"]),
        "android.notification.vibrate_timings",
    ),
    (
        "priority lowercase",
        lambda: AndroidNotification(notification_priority="high"),  # type: ignore[arg-type]
        "android.notification.notification_priority",
    ),
    (
        "visibility lowercase",
        lambda: AndroidNotification(visibility="public"),  # type: ignore[arg-type]
        "android.notification.visibility",
    ),
    ("proxy maybe", lambda: AndroidNotification(proxy="MAYBE"), "android.notification.proxy"),  # type: ignore[arg-type]
    (
        "count negative",
        lambda: AndroidNotification(notification_count=-1),
        "android.notification.notification_count",
    ),
    (
        "count bool",
        lambda: AndroidNotification(notification_count=True),
        "android.notification.notification_count",
    ),
    (
        "count str",
        lambda: AndroidNotification(notification_count="3"),  # type: ignore[arg-type]
        "android.notification.notification_count",
    ),
    (
        "vibrate negative",
        lambda: AndroidNotification(vibrate_timings=[-1]),
        "android.notification.vibrate_timings",
    ),
    (
        "vibrate not a list",
        lambda: AndroidNotification(vibrate_timings=0.5),  # type: ignore[arg-type]
        "android.notification.vibrate_timings",
    ),
    (
        "light settings str",
        lambda: AndroidNotification(light_settings="#ff0000"),  # type: ignore[arg-type]
        "android.notification.light_settings",
    ),
    (
        "light color",
        lambda: LightSettings(color="ff0000", light_on_duration=1, light_off_duration=1),
        "android.notification.light_settings.color",
    ),
    (
        "light on missing",
        lambda: LightSettings(color="#ff0000", light_off_duration=1),
        "android.notification.light_settings.light_on_duration",
    ),
    (
        "light off bad",
        lambda: LightSettings(color="#ff0000", light_on_duration=1, light_off_duration="x"),
        "android.notification.light_settings.light_off_duration",
    ),
    # apns
    ("apns str", lambda: FCMMessage(apns="x"), "apns"),  # type: ignore[arg-type]
    ("apns payload no aps", lambda: ApnsConfig(payload={"alert": "x"}), "apns.payload"),
    ("apns payload aps str", lambda: ApnsConfig(payload={"aps": "x"}), "apns.payload"),
    (
        "aps badge str",
        lambda: ApnsConfig(payload={"aps": {"badge": "1"}}),
        "apns.payload.aps.badge",
    ),
    (
        "aps unknown key",
        lambda: ApnsConfig(payload={"aps": {"bagde": 1}}),
        "apns.payload.aps.bagde",
    ),
    (
        "aps critical volume",
        lambda: ApnsConfig(payload={"aps": {"sound": {"name": "a", "volume": 2, "critical": 1}}}),
        "apns.payload.aps.sound.volume",
    ),
    (
        "aps loc-args alone",
        lambda: ApnsConfig(payload={"aps": {"alert": {"loc-args": ["a"]}}}),
        "apns.payload.aps.alert.loc-args",
    ),
    (
        "aps empty sound",
        lambda: ApnsConfig(payload={"aps": {"sound": ""}}),
        "apns.payload.aps.sound",
    ),
    ("apns payload object", lambda: ApnsConfig(payload={"aps": {}, "s": object()}), "apns.payload"),
    (
        "apns payload too big",
        lambda: ApnsConfig(payload={"aps": {}, "x": "y" * 4096}),
        "apns.payload",
    ),
    (
        "apns header int",
        lambda: ApnsConfig(headers={"apns-priority": 10}),
        "apns.headers.apns-priority",
    ),  # type: ignore[dict-item]
    (
        "apns priority 7",
        lambda: ApnsConfig(headers={"apns-priority": "7"}),
        "apns.headers.apns-priority",
    ),
    (
        "apns push type",
        lambda: ApnsConfig(headers={"apns-push-type": "loud"}),
        "apns.headers.apns-push-type",
    ),
    (
        "background at priority 10",
        lambda: ApnsConfig(headers={"apns-push-type": "background", "apns-priority": "10"}),
        "apns.headers.apns-priority",
    ),
    (
        "apns expiration",
        lambda: ApnsConfig(headers={"apns-expiration": "tomorrow"}),
        "apns.headers.apns-expiration",
    ),
    (
        "apns collapse id",
        lambda: ApnsConfig(headers={"apns-collapse-id": "c" * 65}),
        "apns.headers.apns-collapse-id",
    ),
    ("apns label", lambda: ApnsFcmOptions(analytics_label="é"), "apns.fcm_options.analytics_label"),
    ("apns image int", lambda: ApnsFcmOptions(image=1), "apns.fcm_options.image"),  # type: ignore[arg-type]
    (
        "live activity token empty",
        lambda: ApnsConfig(live_activity_token=""),
        "apns.live_activity_token",
    ),
    # webpush
    ("webpush str", lambda: FCMMessage(webpush="x"), "webpush"),  # type: ignore[arg-type]
    (
        "web link http",
        lambda: WebpushFcmOptions(link="http://example.com"),
        "webpush.fcm_options.link",
    ),
    ("web link relative", lambda: WebpushFcmOptions(link="/path"), "webpush.fcm_options.link"),
    (
        "web label",
        lambda: WebpushConfig(fcm_options={"analytics_label": ""}),
        "webpush.fcm_options.analytics_label",
    ),
    ("web ttl", lambda: WebpushConfig(headers={"TTL": "soon"}), "webpush.headers.TTL"),
    ("web urgency", lambda: WebpushConfig(headers={"Urgency": "now"}), "webpush.headers.Urgency"),
    ("web topic", lambda: WebpushConfig(headers={"Topic": "a b"}), "webpush.headers.Topic"),
    ("web header CRLF", lambda: WebpushConfig(headers={"X": "a\r\nb"}), "webpush.headers.X"),
    ("web data reserved", lambda: WebpushConfig(data={"google.c": "x"}), "webpush.data.google.c"),
    ("web notification str", lambda: WebpushConfig(notification="x"), "webpush.notification"),  # type: ignore[arg-type]
    (
        "web notification set",
        lambda: WebpushConfig(notification={"data": object()}),
        "webpush.notification",
    ),
    ("web dir", lambda: WebpushNotification(dir="up"), "webpush.notification.dir"),  # type: ignore[arg-type]
    ("web renotify", lambda: WebpushNotification(renotify=1), "webpush.notification.renotify"),  # type: ignore[arg-type]
    (
        "web timestamp float",
        lambda: WebpushNotification(timestamp=1.5),  # type: ignore[arg-type]
        "webpush.notification.timestamp",
    ),
    (
        "web vibrate str",
        lambda: WebpushNotification(vibrate="buzz"),  # type: ignore[arg-type]
        "webpush.notification.vibrate",
    ),
    (
        "web action title",
        lambda: WebpushNotification(actions=[{"action": "a", "title": 3}]),
        "webpush.notification.actions.title",
    ),
    # top level options
    ("label space", lambda: FCMMessage(analytics_label="a b"), "fcm_options.analytics_label"),
    ("label int", lambda: FCMMessage(analytics_label=5), "fcm_options.analytics_label"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("build", "field"), [pytest.param(build, field, id=name) for name, build, field in BAD]
)
def test_bad_input_is_a_payload_error_naming_the_field(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(PayloadError) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_bad_input_sends_nothing(service_account: Any) -> None:
    """Each bad template fails where it is built: the mock receives no request at all."""

    async def main() -> int:
        refused = 0
        async with server.client() as client:
            for _name, build, _field in BAD:
                try:
                    message = build()
                    if isinstance(message, FCMMessage):
                        await client.send_to_tokens(message, ["tok-1", "tok-2"])
                except PayloadError:
                    refused += 1
        return refused

    with MockFCM(credentials=service_account) as server:
        refused = asyncio.run(main())
        assert refused == len(BAD)
        assert server.total_received == 0 and server.dry_runs == 0


def test_configs_survive_a_round_trip_through_builtins() -> None:
    """What the endpoint store does with overrides: msgspec.to_builtins, JSON, then the
    class built again from the dict; the v1 JSON is unchanged."""
    android = AndroidConfig(
        ttl=dt.timedelta(minutes=5),
        notification=AndroidNotification(
            event_time=EVENT,
            vibrate_timings=[dt.timedelta(milliseconds=500), 1.5],
            light_settings=LightSettings("#00ff00", dt.timedelta(seconds=1), 2),
        ),
    )
    again = AndroidConfig(**json.loads(json.dumps(msgspec.to_builtins(android))))
    assert again.to_json() == android.to_json()
    web = WebpushConfig(notification=WebpushNotification(title="t", require_interaction=True))
    again_web = WebpushConfig(**json.loads(json.dumps(msgspec.to_builtins(web))))
    assert again_web.to_json() == {"notification": {"title": "t", "requireInteraction": True}}
