"""FCM through the engine against the mock: bulk delivery, OAuth lifecycle, every error code
classified from real-shaped bodies, quota back-off. Each message ends with one result."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import pushwire
from pushwire import Action, FCMMessage, FCMNotification, Notification, Outcome, RetryPolicy
from pushwire.testing import MockFCM


def fcm_tokens(n: int, prefix: str = "tok") -> list[str]:
    return [f"{prefix}{i:06d}:APA91b" + "x" * 140 for i in range(n)]


MESSAGE = FCMMessage(notification=FCMNotification(title="Hi", body="there"), data={"k": "v"})


def test_100k_messages_delivered_once_with_one_access_token(service_account):
    toks = fcm_tokens(100_000)

    async def main() -> tuple[pushwire.Results, int]:
        async with server.client() as client:
            results = await client.send_to_tokens(MESSAGE, toks)
            return results, client.token_refreshes

    with MockFCM(credentials=service_account) as server:
        results, refreshes = asyncio.run(main())
        assert Counter(r.outcome for r in results) == {Outcome.DELIVERED: len(toks)}
        assert [r.token for r in results] == toks
        assert all(server.received(t) == 1 for t in toks)
        assert server.oauth_tokens_issued == 1 and refreshes == 1
        assert results[0].message_id.startswith("projects/demo-project/messages/")


def test_expired_access_token_mid_run_is_refreshed_and_nothing_is_lost(service_account):
    toks = fcm_tokens(20_000)

    async def main() -> pushwire.Results:
        async with server.client(max_in_flight=500) as client:
            sending = asyncio.ensure_future(client.send_to_tokens(MESSAGE, toks))
            await asyncio.sleep(0.05)
            assert not sending.done()
            server.expire_oauth_tokens()  # the mock expires the token mid-run
            return await sending

    with MockFCM(credentials=service_account) as server:
        results = asyncio.run(main())
        assert all(r.delivered for r in results)
        assert server.oauth_tokens_issued == 2
        # Rejected (401) once at most, then delivered: never more than two receptions.
        assert all(server.received(t) <= 2 for t in toks)


def test_short_lived_tokens_are_refreshed_in_the_background(service_account):
    async def main() -> int:
        async with server.client() as client:
            for batch in range(4):
                results = await client.send_to_tokens(MESSAGE, fcm_tokens(200, f"b{batch}"))
                assert all(r.delivered for r in results)
                await asyncio.sleep(0.4)
            return client.token_refreshes

    # 1 s tokens, refreshed 300 s before expiry = always due: every send call refreshes in
    # the background while sends go on with the current token.
    with MockFCM(credentials=service_account, token_lifetime=1.0) as server:
        refreshes = asyncio.run(main())
    assert refreshes >= 2


@pytest.mark.parametrize(
    ("behavior", "status", "reason", "action"),
    [
        ("unregistered", 404, "UNREGISTERED", Action.DROP_TOKEN),
        ("bad-token", 400, "INVALID_ARGUMENT", Action.DROP_TOKEN),
        ("invalid-argument", 400, "INVALID_ARGUMENT", Action.FIX_PAYLOAD),
        ("sender-mismatch", 403, "SENDER_ID_MISMATCH", Action.DROP_TOKEN),
        ("third-party-auth", 401, "THIRD_PARTY_AUTH_ERROR", Action.FIX_CONFIG),
        ("500", 500, "INTERNAL", Action.RETRY),
        ("503", 503, "UNAVAILABLE", Action.RETRY),
        ("429", 429, "QUOTA_EXCEEDED", Action.RETRY),
        ("unspecified", 500, "UNSPECIFIED_ERROR", Action.RETRY),
    ],
)
def test_every_error_code_is_classified_from_real_shaped_bodies(
    service_account, behavior, status, reason, action
):
    token = fcm_tokens(1, "err")[0]

    async def main() -> pushwire.Result:
        async with server.client(retry=None) as client:
            return await client.send(Notification(token, MESSAGE))

    with MockFCM(credentials=service_account, rules={"err": behavior}) as server:
        r = asyncio.run(main())
    assert (r.outcome, r.status, r.reason) == (Outcome.REJECTED, status, reason)
    assert r.action is action


def test_quota_exhaustion_slows_sends_and_never_retries_early(service_account):
    toks = fcm_tokens(300)
    policy = RetryPolicy(max_attempts=5, max_delay=5.0)

    async def main() -> pushwire.Results:
        async with server.client(retry=policy) as client:
            return await client.send_to_tokens(MESSAGE, toks)

    with MockFCM(credentials=service_account, quota_per_window=100, quota_window=1.0) as server:
        start = time.monotonic()
        results = asyncio.run(main())
        elapsed = time.monotonic() - start
        assert all(r.delivered for r in results)
        assert all(server.received(t) == r.attempts for t, r in zip(toks, results, strict=True))
        # 100 per 1 s window: three windows at least, and each 429'd message waited for its
        # Retry-After: retrying early would have drawn more 429s (200 in the first window,
        # then 100 in the second).
        assert elapsed >= 2.0
        assert server.quota_rejections == 300


def test_topic_and_condition_messages_and_dry_runs(service_account):
    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return [
                await client.send(FCMMessage(topic="news", data={"k": "v"})),
                await client.send(FCMMessage(condition="'a' in topics && 'b' in topics")),
                await client.send(Notification(fcm_tokens(1)[0], FCMMessage(validate_only=True))),
            ]

    with MockFCM(credentials=service_account) as server:
        results = asyncio.run(main())
        assert all(r.delivered for r in results), [r.body for r in results]
        assert server.dry_runs == 1
        assert results[2].message_id.endswith("fake_message_id")


def test_bad_input_is_refused_before_anything_is_sent(service_account):
    async def main() -> None:
        async with server.client() as client:
            with pytest.raises(pushwire.PayloadError) as info:
                await client.send_many([Notification("has space", MESSAGE)])
            assert info.value.field == "token"
            with pytest.raises(pushwire.PayloadError, match="no target"):
                await client.send(FCMMessage(data={"k": "v"}))

    with MockFCM(credentials=service_account) as server:
        asyncio.run(main())
        assert server.total_received == 0


def test_a_refused_grant_is_a_clear_credentials_error(service_account):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = pushwire.ServiceAccountCredentials(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key": other_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            "client_email": service_account.client_email,
        }
    )

    async def main() -> None:
        async with pushwire.FCMClient(
            impostor, base_url=server.url, token_uri=server.token_uri, ca_file=server.ca_file
        ) as client:
            with pytest.raises(pushwire.CredentialsError, match="refused") as info:
                await client.send(Notification(fcm_tokens(1)[0], MESSAGE))
            assert "assertion" not in str(info.value).lower() or "ey" not in str(info.value)

    with MockFCM(credentials=service_account) as server:
        asyncio.run(main())
        assert server.total_received == 0


def test_sync_fcm_client(service_account):
    with MockFCM(credentials=service_account) as server, server.sync_client() as client:
        results = client.send_to_tokens(MESSAGE, fcm_tokens(50))
        assert all(r.delivered for r in results)
