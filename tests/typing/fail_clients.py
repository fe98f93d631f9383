"""Mistakes a type checker must catch: every line marked ``# E: code`` must get a ``mypy
--strict`` error with that code, and no other line any error (tests/test_typing.py). Never
executed."""

from __future__ import annotations

from pushwire import APNsClient, Message, Notification, SyncAPNsClient, TokenCredentials


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
