"""Web Push: encryption interop (RFC 8291), VAPID (RFC 8292), messages, and the client
against mock push services that decrypt every message."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import pushwire
from pushwire import _core
from pushwire._errors import ConfigurationError, PayloadError
from pushwire.testing import MockWebPush
from pushwire.vapid import VapidKey, VapidSigner
from pushwire.webpush import WebPushMessage, WebPushNotification, WebPushSubscription


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- encryption: an independent implementation (http_ece) opens what the engine sealed ----


def test_http_ece_decrypts_1000_random_payloads() -> None:
    rng = random.Random(8291)
    for i in range(1000):
        receiver = ec.generate_private_key(ec.SECP256R1())
        p256dh = receiver.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth = os.urandom(16)
        size = rng.choice([0, 1, 15, 16, 17, rng.randrange(3994)])
        plaintext = rng.randbytes(size)
        padding = rng.randrange(3994 - size) if i % 10 == 0 else 0
        body = _core.webpush_encrypt(p256dh, auth, plaintext, padding)
        assert len(body) == 86 + size + 1 + padding + 16 <= 4096
        opened = http_ece.decrypt(body, private_key=receiver, auth_secret=auth, version="aes128gcm")
        assert opened == plaintext


def test_engine_refuses_oversize_and_bad_keys_before_encrypting() -> None:
    p256dh = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    assert len(_core.webpush_encrypt(p256dh, b"a" * 16, b"x" * 3993)) == 4096
    with pytest.raises(PayloadError) as e:
        _core.webpush_encrypt(p256dh, b"a" * 16, b"x" * 3994)
    assert e.value.field == "payload" and "3993" in str(e.value)
    with pytest.raises(PayloadError) as e:
        _core.webpush_encrypt(p256dh[:64], b"a" * 16, b"x")
    assert e.value.field == "p256dh"
    with pytest.raises(PayloadError) as e:
        _core.webpush_encrypt(p256dh, b"a" * 15, b"x")
    assert e.value.field == "auth"


# -- VAPID ----------------------------------------------------------------------------------


def test_vapid_jwt_shape_signature_and_cache_per_audience() -> None:
    now = [1_800_000_000.0]
    key = VapidKey.generate()
    signer = VapidSigner(key, "mailto:ops@example.com", clock=lambda: now[0])
    header = signer.authorization("https://push.example.net")
    assert header.startswith("vapid t=")
    token, k = header[len("vapid t=") :].split(", k=")
    assert k == key.public_key and len(b64d(k)) == 65 and b64d(k)[0] == 4
    head, claims, signature = token.split(".")
    assert json.loads(b64d(head)) == {"typ": "JWT", "alg": "ES256"}
    body = json.loads(b64d(claims))
    assert body["aud"] == "https://push.example.net"
    assert body["sub"] == "mailto:ops@example.com"
    assert now[0] < body["exp"] <= now[0] + 24 * 3600
    raw = b64d(signature)
    assert len(raw) == 64
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(k))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    # Cached per audience; a second audience gets its own; re-minted near expiry only.
    assert signer.authorization("https://push.example.net") == header
    assert signer.mints == 1
    signer.authorization("https://other.example.org")
    assert signer.mints == 2
    now[0] += 10 * 3600
    assert signer.authorization("https://push.example.net") == header
    now[0] += 1.5 * 3600
    assert signer.authorization("https://push.example.net") != header
    assert signer.mints == 3


def test_vapid_subject_rules_and_key_loading(tmp_path: os.PathLike[str]) -> None:
    key = VapidKey.generate()
    with pytest.raises(ConfigurationError, match="localhost") as e:
        VapidSigner(key, "mailto:admin@localhost")
    assert e.value.field == "subject"
    with pytest.raises(ConfigurationError):
        VapidSigner(key, "ops@example.com")
    VapidSigner(key, "https://example.com/contact")
    path = os.path.join(tmp_path, "vapid.pem")
    with open(path, "wb") as f:
        f.write(key.private_pem())
    assert VapidKey.load(path).public_key == key.public_key
    raw = key._key.private_numbers().private_value.to_bytes(32, "big")
    assert VapidKey.load(base64.urlsafe_b64encode(raw).rstrip(b"=").decode()).public_key == (
        key.public_key
    )
    with pytest.raises(pushwire.CredentialsError) as err:
        VapidKey.load(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    assert "nope" not in str(err.value)
    assert "hidden" in repr(key)


# -- messages -------------------------------------------------------------------------------


def test_message_checks() -> None:
    m = WebPushMessage({"a": 1}, ttl=60, urgency="high", topic="news-1")
    assert m.payload == b'{"a":1}'
    assert ("ttl", "60") in m._headers and ("topic", "news-1") in m._headers
    assert ("content-encoding", "aes128gcm") in m._headers
    for bad in (
        {"ttl": -1},
        {"ttl": 29 * 24 * 3600},
        {"ttl": 60, "urgency": "urgent"},
        {"ttl": 60, "topic": "x" * 33},
        {"ttl": 60, "topic": "has space"},
        {"ttl": 60, "padding": -1},
    ):
        with pytest.raises(PayloadError) as e:
            WebPushMessage(b"x", **bad)  # type: ignore[arg-type]
        assert e.value.field in ("ttl", "urgency", "topic", "padding")
    WebPushMessage(b"x" * 3993, ttl=0)
    with pytest.raises(PayloadError, match="3993") as e:
        WebPushMessage(b"x" * 3994, ttl=0)
    assert e.value.field == "payload"
    with pytest.raises(PayloadError):
        WebPushMessage(b"x" * 3000, ttl=0, padding=1000)


def test_declarative_web_push_shape() -> None:
    m = WebPushMessage.declarative(
        title="Sale",
        body="50% off",
        navigate="https://shop.example/sale",
        app_badge=3,
        lang="en",
        dir="ltr",
        tag="sale",
        data={"id": 7},
        mutable=True,
        ttl=3600,
        urgency="normal",
    )
    assert json.loads(m.payload) == {
        "web_push": 8030,
        "notification": {
            "title": "Sale",
            "navigate": "https://shop.example/sale",
            "body": "50% off",
            "lang": "en",
            "dir": "ltr",
            "tag": "sale",
            "app_badge": 3,
            "data": {"id": 7},
        },
        "mutable": True,
    }
    with pytest.raises(PayloadError) as e:
        WebPushMessage.declarative(title="x", navigate="/relative", ttl=0)
    assert e.value.field == "navigate"
    with pytest.raises(PayloadError):
        WebPushMessage.declarative(title="", navigate="https://a.example/", ttl=0)
    with pytest.raises(PayloadError):
        WebPushMessage.declarative(title="x", navigate="https://a.example/", ttl=0, app_badge=-1)


def test_subscription_from_browser_json_hides_auth() -> None:
    sub = WebPushSubscription.from_json(
        '{"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "expirationTime": null,'
        ' "keys": {"p256dh": "BCVx", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}'
    )
    assert sub.endpoint.endswith("/abc") and sub.auth == "BTBZMqHH6r4Tts7J_aSIgg"
    assert "BTBZ" not in repr(sub)
    with pytest.raises(PayloadError) as e:
        WebPushSubscription.from_json({"endpoint": "https://x.example/1", "keys": {"auth": "a"}})
    assert e.value.field == "p256dh"


# -- client against mock push services ------------------------------------------------------

MESSAGE = WebPushMessage({"title": "hi"}, ttl=60)


def test_messages_arrive_decrypted_at_each_push_service() -> None:
    async def main(mock: MockWebPush) -> None:
        subs = [mock.subscription(service=i % 3) for i in range(30)]
        async with mock.client() as client:
            results = await client.send_to_subscriptions(MESSAGE, subs)
            assert [r.status for r in results] == [201] * 30
            pairs = zip(results, subs, strict=True)
            assert all(r.delivered and r.token == s.endpoint for r, s in pairs)
            other = WebPushMessage(b"\x00binary\xff", ttl=0, urgency="low", topic="t1", padding=9)
            many = await client.send_many([WebPushNotification(s, other) for s in subs[:3]])
            assert all(r.delivered for r in many)
            assert set(client.pools()) == set(mock.urls)
            assert client.metrics()["auth_refreshes"] == 3  # one VAPID JWT per push service
        for i, sub in enumerate(subs):
            expected = [b'{"title":"hi"}'] + ([b"\x00binary\xff"] if i < 3 else [])
            assert mock.messages(sub) == expected
            assert mock.received(sub) == len(expected)

    with MockWebPush(services=3) as mock:
        asyncio.run(main(mock))


def test_push_service_answers_are_classified() -> None:
    rules = {
        "dead": "unregistered",
        "gone": "bad-token",
        "busy": "429",
        "big": "reject:413:PayloadTooLarge",
    }

    async def main(mock: MockWebPush) -> None:
        subs = [mock.subscription(p) for p in ("ok1", "dead1", "gone1", "busy1", "big1")]
        async with mock.client(retry=None) as client:
            results = await client.send_to_subscriptions(MESSAGE, subs)
        got = [(r.status, r.reason, r.action.value) for r in results]
        assert got == [
            (201, None, "delivered"),
            (410, "Unregistered", "drop_token"),
            (404, "BadDeviceToken", "drop_token"),
            (429, "TooManyRequests", "retry"),
            (413, "PayloadTooLarge", "fix_payload"),
        ]
        assert results[3].retry_after == 1
        assert [t.token for t in results.tokens_to_drop()] == [subs[1].endpoint, subs[2].endpoint]

    with MockWebPush(services=1, rules=rules) as mock:
        asyncio.run(main(mock))


def test_a_404_without_reason_drops_the_subscription() -> None:
    from pushwire._webpush import SUBSCRIPTION_GONE, _WebPushEngine

    class Engine:
        def drain(self, max: int) -> list[tuple[object, ...]]:
            row = (1, "https://p.example/x", "rejected", 404, None, *([None] * 11))
            ok = (2, "https://p.example/y", "delivered", 201, None, *([None] * 11))
            return [row, ok]

    rows = _WebPushEngine(Engine(), None).drain()  # type: ignore[arg-type]
    assert rows[0][4] == SUBSCRIPTION_GONE and rows[1][4] is None
    assert (
        pushwire.classify(
            pushwire.Result(
                0,
                "t",
                pushwire.Outcome.REJECTED,
                404,
                SUBSCRIPTION_GONE,
                None,
                None,
                None,
                0,
                0,
                0.0,
                1,
                None,
                False,
            )
        ).action.value
        == "drop_token"
    )


def test_vapid_is_checked_by_the_push_service() -> None:
    async def main(mock: MockWebPush) -> None:
        sub = mock.subscription("v1")
        async with mock.client() as client:
            # A JWT minted two days ago: the push service refuses it; the client re-mints
            # once (same stale clock here) and reports the second refusal.
            client._signer._clock = lambda: time.time() - 2 * 86400
            client._signer._cache.clear()
            result = await client.send(WebPushNotification(sub, MESSAGE))
        assert (result.status, result.reason) == (403, "ExpiredJwtToken")
        assert mock.received(sub) == 2 and mock.messages(sub) == []

    with MockWebPush(services=1) as mock:
        asyncio.run(main(mock))


def test_bad_subscriptions_are_refused_before_anything_is_sent() -> None:
    async def main(mock: MockWebPush) -> None:
        good = mock.subscription()
        bad_keys = good._replace(p256dh=good.p256dh[:-4])
        bad_url = good._replace(endpoint="http://plain.example/x")
        async with mock.client() as client:
            for bad, field in ((bad_keys, "p256dh"), (bad_url, "endpoint")):
                with pytest.raises(PayloadError) as e:
                    await client.send_to_subscriptions(MESSAGE, [good, bad])
                assert (e.value.field, e.value.index) == (field, 1)
        assert mock.total_received == 0

    with MockWebPush(services=1) as mock:
        asyncio.run(main(mock))


def test_10k_subscriptions_over_3_services_dead_and_hung() -> None:
    """One outcome each, counted on the server side; dead ones 410, hung ones time out
    within the deadline. (The 100k variant is benches/bench_webpush.py --scale.)"""
    n = 10_000
    rules = {"dead": "unregistered", "hung": "hang"}

    def sub_id(i: int) -> str:
        return ("dead" if i % 20 == 0 else "hung" if i % 97 == 0 else "live") + f"{i:x}"

    async def main(mock: MockWebPush) -> None:
        subs = [mock.subscription(sub_id(i), service=i % 3) for i in range(n)]
        async with mock.client(request_timeout=10.0, retry=None) as client:
            started = time.monotonic()
            results = await client.send_to_subscriptions(MESSAGE, subs)
            elapsed = time.monotonic() - started
        assert len(results) == n and [r.index for r in results] == list(range(n))
        for i, r in enumerate(results):
            kind = sub_id(i)[:4]
            expected = {"dead": "rejected", "hung": "timeout", "live": "delivered"}[kind]
            assert r.outcome == expected, (i, r)
        assert elapsed < 60  # hung ones end at their 10 s deadline, not later
        assert mock.total_received == n
        for i in range(0, n, 37):
            assert mock.received(subs[i]) == 1
            # Every one was decrypted (the rules apply after), dead and hung ones too.
            assert mock.messages(subs[i]) == [b'{"title":"hi"}']
        dropped = {t.token for t in results.tokens_to_drop()}
        assert dropped == {subs[i].endpoint for i in range(n) if sub_id(i).startswith("dead")}

    with MockWebPush(services=3, rules=rules) as mock:
        asyncio.run(main(mock))


def test_endpoint_origin_is_the_vapid_audience() -> None:
    split = _core.webpush_split_endpoint
    assert split("https://fcm.googleapis.com/fcm/send/abc:def") == (
        "https://fcm.googleapis.com",
        "/fcm/send/abc:def",
    )
    # The default port is not part of the origin; another port is.
    assert split("https://push.example:443/x")[0] == "https://push.example"
    assert split("https://push.example:8443/x")[0] == "https://push.example:8443"
    for bad in (
        "http://push.example/x",
        "https://user@push.example/x",
        "https://push.example",
        "https://push.example/a b",
        "https://push.example/" + "x" * 1100,
    ):
        with pytest.raises(PayloadError) as e:
            split(bad)
        assert e.value.field == "endpoint"
