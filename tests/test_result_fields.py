"""What the README's API section promises about Result and Notification holds for the objects."""

from __future__ import annotations

import datetime as dt

import pytest

import pushwire
from pushwire import FCMMessage, Notification
from pushwire.testing import MockAPNs, MockFCM

DEVICE = "ab" * 32


def test_an_apns_result_has_every_documented_field(credentials, message):
    rules = {"dead": "unregistered"}
    with MockAPNs(credentials=credentials, rules=rules) as server, server.sync_client() as c:
        ok = c.send(Notification(DEVICE, message))
        dead = c.send(Notification("dead" + "0" * 60, message))
    for name in [
        "token",
        "index",
        "outcome",
        "status",
        "reason",
        "apns_id",
        "message_id",
        "timestamp_ms",
        "timestamp",
        "retry_after",
        "stream_id",
        "connection_id",
        "latency",
        "attempts",
        "error",
        "maybe_delivered",
        "action",
        "delivered",
        "body",
        "target_kind",
    ]:
        assert hasattr(ok, name), name
    assert ok.message_id == ok.apns_id and ok.message_id
    assert ok.action == "delivered" and ok.target_kind == "token"
    assert f"token={DEVICE!r}" in repr(ok) and f"message_id={ok.apns_id!r}" in repr(ok)
    assert isinstance(dead.timestamp, dt.datetime) and dead.timestamp.tzinfo is dt.timezone.utc
    assert dead.action == "drop_token"


def test_an_fcm_result_shows_the_message_name_as_message_id(service_account):
    with MockFCM(credentials=service_account) as server, server.sync_client() as c:
        r = c.send(Notification("tok-1", FCMMessage(data={"k": "v"})))
    assert r.message_id.startswith("projects/demo-project/messages/")
    assert "apns_id=" not in repr(r) and f"message_id={r.message_id!r}" in repr(r)
    assert r.apns_id == r.message_id  # the old attribute stays


def test_a_topic_or_condition_send_says_what_its_target_is(service_account):
    with MockFCM(credentials=service_account) as server, server.sync_client() as c:
        topic = c.send(FCMMessage(topic="news", data={"k": "v"}))
        condition = c.send(FCMMessage(condition="'a' in topics", data={"k": "v"}))
        device = c.send(FCMMessage(token="tok-2", data={"k": "v"}))
    assert (topic.target_kind, topic.token) == ("topic", "news")
    assert "topic='news'" in repr(topic) and "token=" not in repr(topic)
    assert (condition.target_kind, condition.token) == ("condition", "'a' in topics")
    assert "condition=\"'a' in topics\"" in repr(condition)
    assert device.target_kind == "token" and "token='tok-2'" in repr(device)


def test_a_notification_is_a_named_tuple_and_a_bare_tuple_is_refused(credentials, message):
    n = Notification(DEVICE, message)
    assert isinstance(n, tuple) and n.token == DEVICE and n.apns_id is None
    with MockAPNs(credentials=credentials) as server, server.sync_client() as c:
        with pytest.raises(pushwire.PayloadError, match=r"Notification\(token, message"):
            c.send((DEVICE, message))  # type: ignore[arg-type]
        assert server.received(DEVICE) == 0
