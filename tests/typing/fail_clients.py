"""Mistakes a type checker must catch: every line marked ``# E: code`` must get a ``mypy
--strict`` error with that code, and no other line any error (tests/test_typing.py). Never
executed."""

from __future__ import annotations

from pushwire import (
    APNsClient,
    Message,
    Notification,
    SyncAPNsClient,
    SyncWebPushClient,
    TokenCredentials,
    VapidKey,
    WebPushClient,
    WebPushMessage,
)


async def mistakes(credentials: TokenCredentials, message: Message) -> None:
    async with APNsClient(credentials) as client:
        await client.send(12345)  # E: arg-type
        await client.send("a token")  # E: arg-type
        await client.send_many([12345])  # E: list-item
        result = await client.send(Notification("ab" * 32, message))
        result.status.upper()  # E: attr-defined
        print(result.no_such_field)  # E: attr-defined
    APNsClient(credentials, max_conections=3)  # E: call-arg
    APNsClient(credentials, ping_timeout="5")  # E: arg-type


def sync_mistakes(credentials: TokenCredentials) -> None:
    with SyncAPNsClient(credentials) as client:
        client.send(12345)  # E: arg-type


async def webpush_mistakes(key: VapidKey, message: Message, web: WebPushMessage) -> None:
    async with WebPushClient(key, subject="mailto:ops@example.com") as client:
        await client.send(Notification("ab" * 32, message))  # E: arg-type
        await client.send_to_subscriptions(web, ["https://push.example.net/x"])  # E: list-item
    WebPushClient(key)  # E: call-arg
    with SyncWebPushClient(key, subject="mailto:ops@example.com") as sync:
        sync.send_to_tokens(message, [])  # E: call-overload
    SyncAPNsClient(max_conections=3)  # E: call-arg
