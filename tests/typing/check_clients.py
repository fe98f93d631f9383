"""The documented patterns, as a type checker sees them: ``mypy --strict`` must accept this
file and infer exactly these types (tests/test_typing.py runs it). Never executed."""

from __future__ import annotations

from typing_extensions import assert_type

import pushwire
from pushwire import (
    Action,
    APNsClient,
    BulkReport,
    FCMClient,
    FCMMessage,
    Message,
    Notification,
    Outcome,
    PoolOptions,
    Result,
    Results,
    Summary,
    SyncAPNsClient,
    SyncWebPushClient,
    VapidKey,
    WebPushClient,
    WebPushMessage,
    WebPushNotification,
    WebPushSubscription,
)


async def apns(credentials: pushwire.TokenCredentials, tokens: list[str]) -> None:
    message = Message({"aps": {"alert": "Hello"}}, topic="com.example.app")
    async with APNsClient(credentials, environment="sandbox", max_retries=2) as client:
        assert_type(client, APNsClient)
        result = await client.send(Notification(tokens[0], message))
        assert_type(result, Result)
        assert_type(result.outcome, Outcome)
        assert_type(result.status, int)
        assert_type(result.reason, str | None)
        assert_type(result.latency, float)
        assert_type(result.delivered, bool)
        assert_type(result.action, Action)
        results = await client.send_to_tokens(message, tokens)
        assert_type(results, Results)
        assert_type(results.summary(), Summary)
        assert_type(await client.send_many([Notification(t, message) for t in tokens]), Results)
        async for streamed in client.stream(Notification(t, message) for t in tokens):
            assert_type(streamed, Result)
        assert_type(client.pool_options, PoolOptions)
        # Bulk sends that keep only the problems as Results.
        report = await client.send_to_tokens(message, tokens, keep="problems")
        assert_type(report, BulkReport)
        assert_type(report.delivered, int)
        assert_type(report.problems, Results)
        assert_type(report.counts(), dict[Outcome, int])
        assert_type(report.summary(), Summary)
        for index, message_id in report.message_ids.items():
            assert_type(index, int)
            assert_type(message_id, str)
        many = [Notification(t, message) for t in tokens]
        assert_type(await client.send_many(many, keep="problems"), BulkReport)
        assert_type(await client.send_many(many, keep="all"), Results)
        assert_type(await client.send_stream(Notification(t, message) for t in tokens), BulkReport)
        try:
            await client.send_stream(many)
        except pushwire.SendInterruptedError as e:
            assert_type(e.report, BulkReport)


async def fcm(account: pushwire.ServiceAccountCredentials, tokens: list[str]) -> None:
    async with FCMClient(account) as client:
        assert_type(client, FCMClient)
        assert_type(await client.send(FCMMessage(topic="news", data={"k": "v"})), Result)
        template = FCMMessage(data={"k": "v"})
        assert_type(await client.send(Notification(tokens[0], template)), Result)
        assert_type(await client.send_to_tokens(template, tokens), Results)


def sync(credentials: pushwire.TokenCredentials, token: str) -> None:
    message = Message({"aps": {"alert": "Hello"}}, topic="com.example.app")
    with SyncAPNsClient(credentials) as client:
        assert_type(client, SyncAPNsClient)
        result = client.send(Notification(token, message))
        assert_type(result, Result)
        assert_type(result.timestamp_ms, int | None)
        assert_type(client.send_to_tokens(message, [token], keep="problems"), BulkReport)
        assert_type(client.send_to_tokens(message, [token]), Results)
        assert_type(client.send_stream([Notification(token, message)]), BulkReport)


def sync_fcm(account: pushwire.ServiceAccountCredentials) -> None:
    with pushwire.SyncFCMClient(account) as client:
        assert_type(client, pushwire.SyncFCMClient)
        assert_type(client.send(FCMMessage(topic="news", data={"k": "v"})), Result)


async def webpush(key: VapidKey, subscriptions: list[WebPushSubscription]) -> None:
    message = WebPushMessage({"title": "Hi"}, ttl=3600)
    async with WebPushClient(key, subject="mailto:ops@example.com") as client:
        assert_type(client, WebPushClient)
        assert_type(client.vapid_public_key, str)
        assert_type(await client.send(WebPushNotification(subscriptions[0], message)), Result)
        assert_type(await client.send((subscriptions[0], message)), Result)
        assert_type(await client.send_to_subscriptions(message, subscriptions), Results)
        assert_type(await client.send_to_tokens(message, subscriptions), Results)
        async for streamed in client.stream(WebPushNotification(s, message) for s in subscriptions):
            assert_type(streamed, Result)


def sync_webpush(key: VapidKey, subscription: WebPushSubscription) -> None:
    message = WebPushMessage.declarative(title="Hi", navigate="https://example.com/", ttl=60)
    with SyncWebPushClient(key, subject="https://example.com/contact", max_connections=1) as client:
        assert_type(client, SyncWebPushClient)
        assert_type(client.send(WebPushNotification(subscription, message)), Result)
        assert_type(client.send_to_subscriptions(message, [subscription]), Results)
        for streamed in client.stream([WebPushNotification(subscription, message)]):
            assert_type(streamed, Result)
