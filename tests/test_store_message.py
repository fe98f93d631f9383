"""The provider-neutral message and its rendering into valid APNs and FCM v1 messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import pushwire
from pushwire import AndroidConfig, PayloadError
from pushwire.store import APNsOverride, Application, FCMOverride, Provider, PushMessage

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
IOS = Application("ios", Provider.APNS, "production", "com.example.app", None, None, NOW, NOW)
ANDROID = Application("android", Provider.FCM, None, None, "demo", None, NOW, NOW)


def apns_json(message: PushMessage) -> tuple[pushwire.Message, dict]:
    rendered = message.render(IOS)
    assert isinstance(rendered, pushwire.Message)
    return rendered, json.loads(rendered.payload)


def fcm_json(message: PushMessage) -> dict:
    rendered = message.render(ANDROID)
    assert isinstance(rendered, pushwire.FCMMessage)
    return json.loads(rendered.encoded)


def test_a_visible_message_on_apns():
    message = PushMessage(
        title="Order shipped",
        body="Arrives Thursday",
        data={"order": "42"},
        image_url="https://cdn.example.com/box.png",
        sound="default",
        badge=3,
        action="deep_link",
        url="myapp://orders/42",
    )
    rendered, body = apns_json(message)
    assert rendered.push_type == "alert" and rendered.topic == "com.example.app"
    assert body["aps"] == {
        "alert": {"title": "Order shipped", "body": "Arrives Thursday"},
        "badge": 3,
        "sound": "default",
        "mutable-content": 1,
    }
    assert body["order"] == "42" and body["image_url"] == "https://cdn.example.com/box.png"
    assert body["action"] == "deep_link" and body["url"] == "myapp://orders/42"


def test_a_visible_message_on_fcm():
    message = PushMessage(
        title="Order shipped",
        body="Arrives Thursday",
        data={"order": "42"},
        image_url="https://cdn.example.com/box.png",
        sound="default",
        badge=3,
        action="url",
        url="https://example.com/orders/42",
    )
    body = fcm_json(message)
    assert body["notification"] == {
        "title": "Order shipped",
        "body": "Arrives Thursday",
        "image": "https://cdn.example.com/box.png",
    }
    assert body["data"] == {"order": "42", "action": "url", "url": "https://example.com/orders/42"}
    assert body["android"]["priority"] == "HIGH"
    assert body["android"]["notification"]["sound"] == "default"
    aps = body["apns"]["payload"]["aps"]
    assert aps["badge"] == 3 and aps["mutable-content"] == 1
    assert body["webpush"]["fcm_options"]["link"] == "https://example.com/orders/42"


def test_silent_is_a_background_push_on_apns_and_data_only_normal_priority_on_fcm():
    message = PushMessage(silent=True, data={"sync": "orders"})
    rendered, body = apns_json(message)
    assert rendered.push_type == "background" and rendered.priority == 5
    assert body == {"aps": {"content-available": 1}, "sync": "orders"}
    fcm = fcm_json(message)
    assert "notification" not in fcm and fcm["data"] == {"sync": "orders"}
    assert fcm["android"]["priority"] == "NORMAL"
    assert fcm["apns"]["headers"] == {"apns-priority": "5", "apns-push-type": "background"}


def test_the_fcm_collapse_key_also_collapses_ios_devices_reached_through_fcm():
    plain = fcm_json(PushMessage(body="Score 2-1", fcm=FCMOverride(collapse_key="match-7")))
    assert plain["android"]["collapse_key"] == "match-7"
    assert plain["apns"] == {"headers": {"apns-collapse-id": "match-7"}}
    with_badge = fcm_json(
        PushMessage(body="Score 2-1", badge=1, fcm=FCMOverride(collapse_key="match-7"))
    )
    assert with_badge["apns"]["headers"] == {"apns-collapse-id": "match-7"}
    assert with_badge["apns"]["payload"]["aps"]["badge"] == 1
    silent = fcm_json(PushMessage(silent=True, fcm=FCMOverride(collapse_key="sync")))
    assert silent["apns"]["headers"]["apns-collapse-id"] == "sync"
    assert silent["apns"]["headers"]["apns-push-type"] == "background"
    # Without a collapse key nothing is added (no empty APNs block either).
    assert "apns" not in fcm_json(PushMessage(body="Score 2-1"))


def test_a_collapse_key_apns_would_refuse_is_caught_when_the_message_is_built():
    with pytest.raises(PayloadError) as e:
        PushMessage(body="x", fcm=FCMOverride(collapse_key="k" * 65))
    assert e.value.field == "message.fcm.collapse_key" and "64" in str(e.value)
    PushMessage(body="x", fcm=FCMOverride(collapse_key="k" * 64))
    with pytest.raises(PayloadError, match="must be a string, not int"):
        PushMessage(body="x", fcm=FCMOverride(collapse_key=7))  # type: ignore[arg-type]
    # The same limit on a caller's own APNs block for FCM.
    with pytest.raises(PayloadError) as e:
        pushwire.FCMMessage(
            notification=pushwire.FCMNotification(body="x"),
            apns=pushwire.ApnsConfig(headers={"Apns-Collapse-Id": "é" * 33}),
        )
    assert e.value.field == "apns.headers.apns-collapse-id" and "66 bytes" in str(e.value)


def test_per_provider_overrides():
    message = PushMessage(
        title="Sale",
        body="Everything must go",
        data={"campaign": "c1"},
        apns=APNsOverride(
            title="Sale on iPhone", collapse_id="sale", thread_id="promo", data={"ios": "1"}
        ),
        fcm=FCMOverride(
            body="Android sale",
            channel_id="promotions",
            android=None,
            analytics_label="sale",
            data={"android": "1"},
        ),
    )
    rendered, body = apns_json(message)
    assert body["aps"]["alert"] == {"title": "Sale on iPhone", "body": "Everything must go"}
    assert body["aps"]["thread-id"] == "promo" and rendered.collapse_id == "sale"
    assert body["ios"] == "1" and body["campaign"] == "c1"
    fcm = fcm_json(message)
    assert fcm["notification"] == {"title": "Sale", "body": "Android sale"}
    assert fcm["android"]["notification"] == {"channel_id": "promotions"}
    assert fcm["fcm_options"] == {"analytics_label": "sale"}
    assert fcm["data"] == {"campaign": "c1", "android": "1"}
    whole_block = PushMessage(body="x", fcm=FCMOverride(android=AndroidConfig(priority="NORMAL")))
    assert fcm_json(whole_block)["android"] == {"priority": "NORMAL"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "message.body"),
        ({"silent": True, "title": "shown?"}, "message.silent"),
        ({"silent": True, "badge": 0}, "message.silent"),
        ({"body": "x", "badge": -1}, "message.badge"),
        ({"body": "x", "data": {"n": 1}}, "message.data"),
        ({"body": "x", "data": {"url": "reserved"}}, "message.data"),
        ({"body": "x", "action": "url"}, "message.url"),
        ({"body": "x", "url": "https://example.com"}, "message.url"),
        ({"body": "x", "action": "teleport", "url": "x:y"}, "message.action"),
        ({"body": "x", "image_url": "http://insecure.example.com/a.png"}, "message.image_url"),
    ],
)
def test_invalid_messages_are_payload_errors(kwargs, field):
    with pytest.raises(PayloadError) as info:
        PushMessage(**kwargs)
    assert info.value.field == field


def test_rendering_runs_the_provider_checks():
    huge = PushMessage(body="x" * 5000)
    with pytest.raises(PayloadError) as info:
        huge.render(IOS)
    assert info.value.field == "payload"
    with pytest.raises(PayloadError):
        huge.render(ANDROID)
    reserved = PushMessage(body="x", data={"google.sent": "1"})
    with pytest.raises(PayloadError):
        reserved.render(ANDROID)


def test_messages_round_trip_through_json():
    message = PushMessage(
        title="t",
        body="b",
        data={"k": "v"},
        apns=APNsOverride(badge=2),
        fcm=FCMOverride(android=AndroidConfig(priority="NORMAL"), ttl="60s"),
    )
    described = message.to_dict()
    assert described["fcm"]["android"] == {"priority": "NORMAL"}
    again = PushMessage.from_dict(json.loads(json.dumps(described)))
    assert again.render(ANDROID).encoded == message.render(ANDROID).encoded
    assert again.render(IOS).payload == message.render(IOS).payload
    with pytest.raises(PayloadError):
        PushMessage.from_dict({"body": "b", "colour": "red"})
