"""Live Activity broadcast channels end to end against the mock: channel management, broadcasts,
every error case, the local checks, push-to-start to a segment and faults (issue 19)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

import pushwire
from pushwire import Action, BroadcastMessage, Outcome, PayloadError, payload
from pushwire.testing import MockAPNs
from support.util import tokens

BUNDLE = "com.example.scores"
OTHER_BUNDLE = "com.example.other"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def update(score: str = "1-0", **options: Any) -> BroadcastMessage:
    body = {"aps": {"event": "update", "timestamp": 1, "content-state": {"score": score}}}
    return BroadcastMessage(body, **options)


@pytest.fixture
def mock(credentials: pushwire.TokenCredentials) -> Any:
    with MockAPNs(credentials=credentials) as server:
        yield server


# --- channel management ----------------------------------------------------------------------


def test_create_read_list_delete(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            none_stored = await client.create_channel(0)
            kept = await client.create_channel(storage_policy=1)
            for created in (none_stored, kept):
                assert created.status == 201 and created.outcome is Outcome.DELIVERED
                assert created.channel_id and created.request_id
            assert created.action is Action.DELIVERED
            assert mock.broadcast_channels(BUNDLE) == {
                none_stored.channel_id: 0,
                kept.channel_id: 1,
            }
            read = await client.read_channel(kept.channel_id)
            assert read.status == 200
            assert msgspec.json.decode(read.body) == {
                "message-storage-policy": 1,
                "push-type": "LiveActivity",
            }
            listed = await client.list_channels()
            assert sorted(pushwire.channel_ids(listed)) == sorted(
                [none_stored.channel_id, kept.channel_id]
            )
            deleted = await client.delete_channel(none_stored.channel_id)
            assert deleted.status == 204 and deleted.delivered
            again = await client.delete_channel(none_stored.channel_id)
            assert (again.status, again.reason) == (400, "ChannelNotRegistered")
            assert again.action is Action.FIX_CONFIG
            gone = await client.read_channel(none_stored.channel_id)
            assert gone.reason == "ChannelNotRegistered"
            assert pushwire.channel_ids(await client.list_channels()) == [kept.channel_id]
        # Channels belong to one app.
        async with mock.broadcast_client(OTHER_BUNDLE) as other:
            assert pushwire.channel_ids(await other.list_channels()) == []
            foreign = await other.read_channel(kept.channel_id)
            assert foreign.reason == "ChannelNotRegistered"

    run(main())


def test_the_channel_limit_is_10000_per_app(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            created = await asyncio.gather(*(client.create_channel() for _ in range(10_000)))
            assert all(r.status == 201 for r in created)
            assert len({r.channel_id for r in created}) == 10_000
            over = await client.create_channel()
            assert (over.status, over.reason) == (400, "CannotCreateChannelConfig")
            assert over.action is Action.FIX_CONFIG
            assert len(pushwire.channel_ids(await client.list_channels())) == 10_000
            # Another app still has its own 10,000.
            async with mock.broadcast_client(OTHER_BUNDLE) as other:
                assert (await other.create_channel()).status == 201
            # Deleting one makes room for one.
            assert (await client.delete_channel(created[0].channel_id)).status == 204
            assert (await client.create_channel()).status == 201

    run(main())


def test_management_refuses_bad_input_locally(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            with pytest.raises(PayloadError) as policy:
                await client.create_channel(2)  # type: ignore[arg-type]
            assert policy.value.field == "message-storage-policy"
            for bad in ("", "not base64!"):
                with pytest.raises(PayloadError) as bad_id:
                    await client.read_channel(bad)
                assert bad_id.value.field == "apns-channel-id"
        assert mock.total_received == 0

    run(main())


def test_management_errors_from_the_server(mock: MockAPNs) -> None:
    """Requests our client never sends, written by hand: the mock answers like APNs."""

    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            cases = [
                ("POST", b'{"message-storage-policy": 0}', None, "MissingPushType"),
                ("POST", b'{"push-type": "LiveActivity"}', None, "MissingChannelQueueSize"),
                (
                    "POST",
                    b'{"message-storage-policy": 0, "push-type": "LiveActivity", "x": 1}',
                    None,
                    "BadRequestParams",
                ),
                ("POST", b"{not json", None, "BadRequestPayload"),
                ("GET", b"", None, "MissingChannelId"),
                ("DELETE", b"", "%%%", "BadChannelId"),
            ]
            for method, body, channel, reason in cases:
                result = await client._manage(
                    method, client._channels_path, "raw", body=body, channel_id=channel
                )
                assert (result.status, result.reason) == (400, reason), (method, body)
                assert result.action is not Action.DELIVERED
                assert result.request_id  # echoed or generated on errors too

    run(main())


# --- broadcasts ------------------------------------------------------------------------------


def test_broadcast_is_one_request_with_apns_ids(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            channel = (await client.create_channel(1)).channel_id
            assert channel is not None
            result = await client.broadcast(channel, update("2-1", expiration=2_000_000_000))
            assert result.status == 200 and result.delivered
            assert result.request_id and result.unique_id
            assert result.token == channel
            assert mock.received_broadcasts(channel) == 1
            stored = mock.stored_broadcast(channel)
            assert stored is not None and b'"2-1"' in stored
            # A payload.live_activity_update Message is accepted as is (no topic suffix sent).
            message = payload.live_activity_update(
                BUNDLE, content_state={"score": "3-1"}, timestamp=2, priority=5
            )
            assert (await client.broadcast(channel, message)).delivered
            end = payload.live_activity_end(BUNDLE, content_state={"score": "3-1"}, timestamp=3)
            assert (await client.broadcast(channel, end)).delivered
            assert mock.received_broadcasts(channel) == 3

    run(main())


def test_storage_policy_0_refuses_an_expiration_before_sending(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            channel = (await client.create_channel(0)).channel_id
            assert channel is not None
            later = int(time.time()) + 3600
            with pytest.raises(PayloadError) as refused:
                await client.broadcast(channel, update(expiration=later))
            assert refused.value.field == "apns-expiration"
            assert mock.received_broadcasts(channel) == 0
            # A client that never saw the channel can be told its policy...
            async with mock.broadcast_client(BUNDLE) as fresh:
                with pytest.raises(PayloadError):
                    await fresh.broadcast(channel, update(expiration=later), storage_policy=0)
                # ...and without it, APNs (here the mock) refuses.
                sent = await fresh.broadcast(channel, update(expiration=later))
                assert (sent.status, sent.reason) == (400, "BadExpirationDate")
            assert (await client.broadcast(channel, update(expiration=0))).delivered

    run(main())


def test_broadcast_local_checks(mock: MockAPNs, credentials: pushwire.TokenCredentials) -> None:
    start = {"aps": {"event": "start", "timestamp": 1, "content-state": {}}}
    with pytest.raises(PayloadError) as start_refused:
        BroadcastMessage(start)
    assert start_refused.value.field == "aps.event"
    big = {"aps": {"event": "update", "timestamp": 1, "content-state": {"x": "y" * 5100}}}
    with pytest.raises(PayloadError) as too_big:
        BroadcastMessage(big)
    assert too_big.value.field == "payload"
    # 4096 < size <= 5120 is fine for a broadcast.
    fits = {"aps": {"event": "update", "timestamp": 1, "content-state": {"x": "y" * 4500}}}
    assert 4096 < len(BroadcastMessage(fits).payload) <= 5120
    with pytest.raises(PayloadError) as priority:
        update(priority=7)
    assert priority.value.field == "apns-priority"
    with pytest.raises(PayloadError) as alert_type:
        BroadcastMessage.from_message(pushwire.Message({"aps": {}}, topic=BUNDLE))
    assert alert_type.value.field == "apns-push-type"
    for suffixed in (BUNDLE + ".push-type.liveactivity", "", "a/b"):
        with pytest.raises(pushwire.ConfigurationError) as topic:
            pushwire.BroadcastClient(
                credentials, bundle_id=suffixed, base_url=mock.url, management_url=mock.url
            )
        assert topic.value.field == "bundle_id"

    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            for bad in ("", "***"):
                with pytest.raises(PayloadError) as channel:
                    await client.broadcast(bad, update())
                assert channel.value.field == "apns-channel-id"
        assert mock.total_received == 0

    run(main())


def _raw_broadcast(client: pushwire.BroadcastClient, headers: list[tuple[str, str]], body: bytes):
    template = pushwire._core.Template.fixed(
        client._broadcast_path, headers, body, keep_headers=["apns-request-id"]
    )
    return client.send(("raw", template, None))


def test_broadcast_errors_from_the_server(mock: MockAPNs) -> None:
    async def main() -> None:
        async with mock.broadcast_client(BUNDLE, retry=None) as client:
            channel = (await client.create_channel(0)).channel_id
            assert channel is not None
            unknown = "AAAAAAAAAAAAAAAAAAAAAA=="
            result = await client.broadcast(unknown, update())
            assert (result.status, result.reason) == (400, "ChannelNotRegistered")
            assert result.action is Action.FIX_CONFIG
            body = update().payload
            base = [
                ("apns-push-type", "liveactivity"),
                ("apns-priority", "10"),
                ("apns-expiration", "0"),
            ]
            cases = [
                (base, body, "MissingChannelId", 400),
                ([*base, ("apns-channel-id", "%%%")], body, "BadChannelId", 400),
                ([("apns-channel-id", channel), *base[1:]], body, "MissingPushType", 400),
                (
                    [("apns-channel-id", channel), ("apns-topic", "com.else"), *base],
                    body,
                    "TopicMismatch",
                    403,
                ),
                ([("apns-channel-id", channel), *base], b"{nope", "BadRequestPayload", 400),
                (
                    [("apns-channel-id", channel), *base],
                    b'{"aps":{"event":"start"}}',
                    "BadRequestParams",
                    400,
                ),
            ]
            for headers, payload_bytes, reason, status in cases:
                got = await _raw_broadcast(client, headers, payload_bytes)
                assert (got.status, got.reason) == (status, reason)
                assert got.action is not Action.DELIVERED
            mock.set_rules({channel[:12]: "503"})
            unavailable = await client.broadcast(channel, update())
            assert (unavailable.status, unavailable.reason) == (503, "Service Unavailable")
            assert unavailable.action is Action.RETRY
            mock.set_rules([])
            mock.disable_broadcast(BUNDLE)
            disabled = await client.broadcast(channel, update())
            assert (disabled.status, disabled.reason) == (400, "FeatureNotEnabled")
            assert disabled.action is Action.FIX_CONFIG
            # Only valid broadcasts count: the 503 one reached the channel's queue.
            assert mock.received_broadcasts(channel) == 1

    run(main())


def test_every_broadcast_reason_has_an_action() -> None:
    from pushwire import APNS_TABLE, Reason

    for reason, status in [
        (Reason.MISSING_CHANNEL_ID, 400),
        (Reason.BAD_CHANNEL_ID, 400),
        (Reason.CHANNEL_NOT_REGISTERED, 400),
        (Reason.CANNOT_CREATE_CHANNEL_CONFIG, 400),
        (Reason.BAD_REQUEST_PARAMS, 400),
        (Reason.BAD_REQUEST_PAYLOAD, 400),
        (Reason.MISSING_PUSH_TYPE, 400),
        (Reason.TOPIC_MISMATCH, 403),
        (Reason.FEATURE_NOT_ENABLED, 400),
        (Reason.SERVICE_UNAVAILABLE_BROADCAST, 503),
    ]:
        action, description = APNS_TABLE[(status, reason)]
        assert action in Action and description


# --- faults: one outcome per broadcast, never a silent resend ----------------------------------


@pytest.mark.parametrize("fault", ["goaway", "hang", "blackhole", "close"])
def test_broadcast_under_faults_one_outcome_no_silent_resend(mock: MockAPNs, fault: str) -> None:
    async def main() -> None:
        # A short PING cycle finds a blackholed connection dead (as in test_fault_matrix).
        options = {"request_timeout": 3.0, "ping_interval": 0.3, "ping_timeout": 0.5}
        async with mock.broadcast_client(BUNDLE, **options) as client:
            channel = (await client.create_channel(0)).channel_id
            assert channel is not None
            mock.set_rules({channel[:12]: fault})
            result = await client.broadcast(channel, update())
            assert result.outcome in (Outcome.FAILED, Outcome.TIMEOUT)
            # The server had it: the result says it may have been processed, and the engine
            # did not send it again on its own.
            assert result.maybe_delivered
            assert mock.received_broadcasts(channel) == 1
            mock.set_rules([])
            after = await client.broadcast(channel, update("2-0"))
            assert after.delivered
            assert mock.received_broadcasts(channel) == 2

    run(main())


# --- the whole flow ----------------------------------------------------------------------------


def test_push_to_start_10000_then_20_broadcasts_end_and_delete(mock: MockAPNs) -> None:
    segment = tokens(10_000, prefix="19")

    async def main() -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            channel = (await client.create_channel(0)).channel_id
            assert channel is not None
            start = payload.live_activity_start(
                BUNDLE,
                attributes_type="MatchAttributes",
                attributes={"home": "Lions", "away": "Tigers"},
                content_state={"score": "0-0"},
                timestamp=1,
                alert=pushwire.Alert(title="Kick-off", body="Lions v Tigers"),
                input_push_channel=channel,
            )
            started = await client.send_to_tokens(start, segment)
            assert all(r.delivered for r in started)
            before = mock.total_received
            for minute in range(20):
                result = await client.broadcast(channel, update(f"{minute}-0"))
                assert result.delivered and result.unique_id
            end = payload.live_activity_end(BUNDLE, content_state={"score": "20-0"}, timestamp=99)
            assert (await client.broadcast(channel, end)).delivered
            # 21 requests, not 210,000.
            assert mock.total_received - before == 21
            assert mock.received_broadcasts(channel) == 21
            assert (await client.delete_channel(channel)).status == 204
            assert mock.broadcast_channels(BUNDLE) == {}
        assert all(mock.received(t) == 1 for t in segment)

    run(main())


def test_an_expired_jwt_on_a_management_call_is_fixed_and_the_call_resent_once(
    p8_key: bytes,
) -> None:
    """Channel management shares the APNs JWT: a stale one (a laptop woke up) gets 403
    ExpiredProviderToken; the client mints a new one and resends the call once, on the
    management origin, as it does for notifications."""
    calls = 0

    def stale_then_real() -> float:
        nonlocal calls
        calls += 1
        return time.time() - 7200 if calls == 1 else time.time()

    credentials = pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=stale_then_real
    )

    async def main(mock: MockAPNs) -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            created = await client.create_channel(1)
            assert (created.status, created.outcome) == (201, Outcome.DELIVERED), created
            assert mock.broadcast_channels(BUNDLE) == {created.channel_id: 1}
            listed = await client.list_channels()
            assert pushwire.channel_ids(listed) == [created.channel_id]

    with MockAPNs(credentials=credentials) as mock:
        run(main(mock))
    assert credentials.mints == 2


def test_a_management_call_rejected_again_after_the_fix_reports_the_rejection(
    p8_key: bytes,
) -> None:
    # The clock is stuck two hours back: the new JWT is expired too; no endless resending.
    credentials = pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=lambda: time.time() - 7200
    )

    async def main(mock: MockAPNs) -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            created = await client.create_channel(1)
            assert (created.status, created.reason) == (403, "ExpiredProviderToken")
            assert mock.broadcast_channels(BUNDLE) == {}

    with MockAPNs(credentials=credentials) as mock:
        run(asyncio.wait_for(main(mock), 30))
