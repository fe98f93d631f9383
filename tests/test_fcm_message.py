"""FCM v1 messages and service-account credentials: local validation, exact JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import pushwire
from pushwire import (
    AndroidConfig,
    ApnsConfig,
    CredentialsError,
    FCMMessage,
    FCMNotification,
    PayloadError,
    ServiceAccountCredentials,
    WebpushConfig,
)
from pushwire.fcm import as_item


def body_for(message: FCMMessage, token: str = "tok-1") -> dict:
    """What the engine sends for ``token``: the token spliced into the message's template."""
    prefix = b'{"validate_only":true,' if message.validate_only else b"{"
    rest = message.encoded[1:-1]
    body = prefix + b'"message":{"token":"' + token.encode() + b'"'
    body += (b"," + rest if rest else b"") + b"}}"
    assert len(body) == message._template.body_len(len(token))
    return json.loads(body)


def test_token_template_json_is_exact():
    msg = FCMMessage(
        notification=FCMNotification(title="Hi", body="there"),
        data={"order": "42"},
        android=AndroidConfig(priority="HIGH", ttl=dt.timedelta(hours=1), collapse_key="c"),
        apns=ApnsConfig(payload=pushwire.payload.alert("com.example.app", body="x")),
        webpush=WebpushConfig(headers={"Urgency": "high"}),
        analytics_label="campaign-1",
    )
    assert body_for(msg) == {
        "message": {
            "token": "tok-1",
            "notification": {"title": "Hi", "body": "there"},
            "data": {"order": "42"},
            "android": {"collapse_key": "c", "priority": "HIGH", "ttl": "3600s"},
            "apns": {
                "headers": {"apns-push-type": "alert", "apns-topic": "com.example.app"},
                "payload": {"aps": {"alert": {"body": "x"}}},
            },
            "webpush": {"headers": {"Urgency": "high"}},
            "fcm_options": {"analytics_label": "campaign-1"},
        }
    }


def test_validate_only_and_empty_messages():
    msg = FCMMessage(data={"k": "v"}, validate_only=True)
    assert body_for(msg)["validate_only"] is True
    assert body_for(FCMMessage()) == {"message": {"token": "tok-1"}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3.5, "3.5s"),
        (0, "0s"),
        ("10s", "10s"),
        ("1.25s", "1.25s"),
        (dt.timedelta(days=28), "2419200s"),
    ],
)
def test_ttl_becomes_a_duration_string(value, expected):
    msg = FCMMessage(android=AndroidConfig(ttl=value))
    assert json.loads(msg.encoded)["android"]["ttl"] == expected


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: FCMMessage(data={"n": 1}), "data.n"),
        (lambda: FCMMessage(data={"from": "x"}), "data.from"),
        (lambda: FCMMessage(data={"google.x": "y"}), "data.google.x"),
        (lambda: FCMMessage(data={"gcm.notification.title": "y"}), "data.gcm.notification.title"),
        (lambda: FCMMessage(data={"message_type": "y"}), "data.message_type"),
        (lambda: FCMMessage(token="a", topic="b"), "message.target"),
        (lambda: FCMMessage(topic="bad topic!"), "message.topic"),
        (lambda: FCMMessage(data={"big": "x" * 5000}), "data"),
        (lambda: AndroidConfig(ttl="soon"), "android.ttl"),
        (lambda: AndroidConfig(ttl=10**9), "android.ttl"),
        (lambda: AndroidConfig(data={"n": 2}), "android.data.n"),
        (lambda: ApnsConfig(payload={"alert": "no aps"}), "apns.payload"),
        (
            lambda: ApnsConfig(headers={"apns-priority": "10\r\nx: y"}),
            "apns.headers.apns-priority",
        ),
        (lambda: WebpushConfig(data={"n": 3}), "webpush.data.n"),
    ],
)
def test_bad_messages_are_refused_naming_the_field(build, field):
    with pytest.raises(PayloadError) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_topic_and_condition_messages_are_sent_on_their_own():
    topic = FCMMessage(topic="news", data={"k": "v"})
    assert as_item(topic)[0] == "news"
    cond = FCMMessage(condition="'a' in topics && 'b' in topics")
    assert as_item(cond)[0].startswith("'a'")
    with pytest.raises(PayloadError, match="no target"):
        as_item(FCMMessage(data={"k": "v"}))


def service_account_info(key=None) -> dict:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "abc123",
        "private_key": pem,
        "client_email": "pusher@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_service_account_file_problems_are_clear(tmp_path):
    with pytest.raises(CredentialsError, match="cannot read"):
        ServiceAccountCredentials.from_file(tmp_path / "missing.json")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(CredentialsError, match="not valid JSON"):
        ServiceAccountCredentials.from_file(bad_json)
    info = service_account_info()
    del info["client_email"]
    with pytest.raises(CredentialsError, match="client_email") as e:
        ServiceAccountCredentials(info)
    assert e.value.field == "client_email"
    info = service_account_info()
    info["type"] = "authorized_user"
    with pytest.raises(CredentialsError, match="service_account"):
        ServiceAccountCredentials(info)
    info = service_account_info()
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"
    with pytest.raises(CredentialsError, match="not a readable PEM"):
        ServiceAccountCredentials(info)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info["private_key"] = ec_pem.decode()
    with pytest.raises(CredentialsError, match="RSA"):
        ServiceAccountCredentials(info)


def test_assertion_is_a_verifiable_rs256_jwt_and_secrets_stay_hidden():
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = service_account_info(key)
    sa = ServiceAccountCredentials(info, clock=lambda: 1_700_000_000)
    jwt = sa.assertion()
    header, claims, signature = jwt.split(".")

    def b64d(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(b64d(header)) == {"alg": "RS256", "typ": "JWT", "kid": "abc123"}
    assert json.loads(b64d(claims)) == {
        "iss": info["client_email"],
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }
    key.public_key().verify(
        b64d(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    for text in (repr(sa), str(sa)):
        assert "PRIVATE KEY" not in text and jwt not in text
