"""Bad input is refused locally with a typed error naming the field, before anything is sent."""

from __future__ import annotations

import asyncio

import pytest

import pushwire
from pushwire import Message, Notification, PayloadError
from pushwire.testing import MockAPNs
from support.util import tokens


def send_many_error(server: MockAPNs, items) -> PayloadError:
    async def main() -> None:
        async with server.client() as client:
            await client.send_many(items)

    with pytest.raises(PayloadError) as info:
        asyncio.run(main())
    return info.value


@pytest.mark.parametrize(
    ("token", "words"),
    [("", "empty"), ("xyz123", "malformed"), ("ab cd", "malformed"), ("a" * 5000, "long")],
)
def test_bad_token_in_a_batch_names_index_and_token_and_sends_nothing(
    credentials, message, token, words
):
    items = [Notification(t, message) for t in tokens(50)]
    items.insert(17, Notification(token, message))
    with MockAPNs(credentials=credentials) as server:
        err = send_many_error(server, items)
        assert server.total_received == 0
    assert err.field == "token" and err.index == 17
    assert words in str(err) and "#17" in str(err)
    if token and len(token) < 80:
        assert repr(token) in str(err) or token in str(err)


def test_non_string_token_is_a_payload_error(credentials, message):
    with MockAPNs(credentials=credentials) as server:
        err = send_many_error(server, [Notification(12345, message)])  # type: ignore[arg-type]
    assert err.field == "token" and err.index == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"topic": "com.example\r\nx-evil: 1"}, "apns-topic"),
        ({"topic": "com.example\x00app"}, "apns-topic"),
        ({"topic": "com.exämple"}, "apns-topic"),
        ({"topic": ""}, "apns-topic"),
        ({"topic": "t", "collapse_id": "x" * 65}, "apns-collapse-id"),
        ({"topic": "t", "collapse_id": "a\nb"}, "apns-collapse-id"),
        ({"topic": "t", "push_type": "background", "priority": 10}, "apns-priority"),
        ({"topic": "t", "priority": 7}, "apns-priority"),
        ({"topic": "t", "push_type": "nope"}, "apns-push-type"),
        ({"topic": "t", "expiration": -5}, "apns-expiration"),
    ],
)
def test_bad_headers_are_refused_when_the_message_is_built(kwargs, field):
    with pytest.raises(PayloadError) as info:
        Message({"aps": {"alert": "x"}}, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)


def test_payload_over_its_size_limit():
    big = {"aps": {"alert": "x" * 5000}}
    with pytest.raises(PayloadError, match="limit for alert pushes is 4096") as info:
        Message(big, topic="t")
    assert info.value.field == "payload"
    # VoIP allows 5120 bytes.
    Message({"aps": {}, "call": "y" * 4900}, topic="t", push_type="voip")
    with pytest.raises(PayloadError, match="5120"):
        Message({"aps": {}, "call": "y" * 5200}, topic="t", push_type="voip")


def test_payload_must_be_a_json_object():
    with pytest.raises(PayloadError) as info:
        Message(b"[1, 2]", topic="t")
    assert info.value.field == "payload"
    with pytest.raises(PayloadError):
        Message({"aps": {"alert": object()}}, topic="t")


def test_bad_apns_id_is_refused(credentials, message):
    with MockAPNs(credentials=credentials) as server:
        err = send_many_error(server, [Notification(tokens(1)[0], message, apns_id="not-a-uuid")])
        assert server.total_received == 0
    assert err.field == "apns-id"


def test_single_send_raises_at_the_call_site(credentials, message):
    async def main() -> None:
        async with server.client() as client:
            with pytest.raises(PayloadError) as info:
                await client.send(Notification("zz", message))
            assert info.value.field == "token"
            ok = await client.send(Notification(tokens(1)[0], message))
            assert ok.delivered

    with MockAPNs(credentials=credentials) as server:
        asyncio.run(main())
        assert server.total_received == 1


def test_configuration_errors():
    with pytest.raises(pushwire.ConfigurationError):
        pushwire.APNsClient(environment="staging")
    with pytest.raises(pushwire.ConfigurationError) as info:
        pushwire.APNsClient(base_url="http://insecure.example")
    assert info.value.field == "base_url"
    with pytest.raises(pushwire.ConfigurationError, match="CA file"):
        pushwire.APNsClient(base_url="https://localhost:1", ca_file="/nonexistent/ca.pem")


def test_closed_client_refuses_work(credentials, message):
    async def main() -> None:
        async with server.client() as client:
            pass
        with pytest.raises(pushwire.ClientClosedError):
            await client.send(Notification(tokens(1)[0], message))

    with MockAPNs(credentials=credentials) as server:
        asyncio.run(main())
