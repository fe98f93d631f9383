"""The store's Live Activity state on SQLite and PostgreSQL: push-to-start tokens per endpoint
and activity type, update tokens per activity (retired when it ends, a 410 disables that token
only), broadcast channels with their lifecycle, and the whole flow against the mock."""

from __future__ import annotations

import asyncio

import pytest

import pushwire
from pushwire import BroadcastMessage, Outcome, payload
from pushwire.store.errors import StoreInputError
from pushwire.store.live_activities import LiveActivities
from pushwire.testing import MockAPNs
from support.store import BACKENDS, apns_token, open_store

BUNDLE = "com.example.app"


@pytest.fixture(params=BACKENDS)
def live(request, tmp_path):
    with open_store(request.param, tmp_path) as store:
        store.put_application("ios", provider="apns", topic=BUNDLE)
        yield store, LiveActivities(store)


def result(token: str, status: int, reason: str | None = None) -> pushwire.Result:
    outcome = Outcome.DELIVERED if status == 200 else Outcome.REJECTED
    return pushwire.Result(
        0, token, outcome, status, reason, None, None, None, 1, 1, 0.01, 1, None, False
    )


def test_push_to_start_tokens_per_endpoint_and_type(live) -> None:
    _, la = live
    la.put_push_to_start_token("ios", "dev1", "Match", "p1")
    la.put_push_to_start_token("ios", "dev1", "Delivery", "q1")
    la.put_push_to_start_token("ios", "dev2", "Match", "p2")
    assert la.push_to_start_tokens("ios", "Match") == {"dev1": "p1", "dev2": "p2"}
    # A new token for (endpoint, type) replaces the old one.
    la.put_push_to_start_token("ios", "dev1", "Match", "p1b")
    assert la.push_to_start_tokens("ios", "Match") == {"dev1": "p1b", "dev2": "p2"}
    assert la.push_to_start_tokens("ios", "Match", ["dev2", "dev9"]) == {"dev2": "p2"}
    assert la.push_to_start_tokens("ios", "Delivery") == {"dev1": "q1"}
    with pytest.raises(StoreInputError) as bad:
        la.put_push_to_start_token("ios", "dev1", "", "p")
    assert bad.value.field == "activity_type"


def test_update_tokens_rotate_retire_on_end_and_410_disables_only_that_token(live) -> None:
    _, la = live
    la.put_push_to_start_token("ios", "dev1", "Match", "start1")
    la.put_update_token("ios", "dev1", "Match", "act-1", "u1")
    la.put_update_token("ios", "dev2", "Match", "act-2", "u2")
    la.put_update_token("ios", "dev3", "Match", "act-3", "u3")
    # ActivityKit rotated act-1's token: the old one is retired.
    la.put_update_token("ios", "dev1", "Match", "act-1", "u1b")
    assert la.update_tokens("ios", "act-1") == ["u1b"]
    disabled = la.apply_update_results(
        "ios", [result("u2", 410, "Unregistered"), result("u3", 400, "BadDeviceToken")]
    )
    assert disabled == 1
    assert la.update_tokens("ios", "act-2") == []
    assert la.update_tokens("ios", "act-3") == ["u3"]
    # The endpoint's push-to-start token is untouched.
    assert la.push_to_start_tokens("ios", "Match") == {"dev1": "start1"}
    assert la.end_activity("ios", "act-1") == 1
    assert la.update_tokens("ios", "act-1") == []
    assert la.end_activity("ios", "act-1") == 0


def test_a_410_disables_a_push_to_start_token_unless_it_registered_again_since(live) -> None:
    import time

    import msgspec

    _, la = live
    la.put_push_to_start_token("ios", "dev1", "Match", "p1")
    la.put_push_to_start_token("ios", "dev2", "Match", "p2")
    la.put_update_token("ios", "dev1", "Match", "act-1", "p1")  # same string, other kind
    later = int(time.time() * 1000) + 60_000
    gone = msgspec.structs.replace(result("p1", 410, "Unregistered"), timestamp_ms=later)
    # APNs saw p2 go in 1970: the registration the store holds is newer, so it is kept.
    stale = msgspec.structs.replace(result("p2", 410, "Unregistered"), timestamp_ms=1)
    assert la.apply_push_to_start_results("ios", [gone, stale]) == 1
    assert la.push_to_start_tokens("ios", "Match") == {"dev2": "p2"}
    assert la.update_tokens("ios", "act-1") == ["p1"]
    with pytest.raises(ValueError, match="kind"):
        la.apply_results("ios", "start", [gone])


def test_channel_lifecycle(live) -> None:
    _, la = live
    opened = la.add_channel("ios", "final-2026", "Y2hhbm5lbA==", 0)
    assert (opened.state, opened.storage_policy, opened.event) == ("open", 0, "final-2026")
    la.add_channel("ios", "semi-2026", "c2VtaQ==", 1)
    assert [c.channel_id for c in la.channels("ios", state="open")] == [
        "Y2hhbm5lbA==",
        "c2VtaQ==",
    ]
    ended = la.end_channel("Y2hhbm5lbA==")
    assert ended.state == "ended" and ended.ended_at is not None
    with pytest.raises(StoreInputError):
        la.end_channel("Y2hhbm5lbA==")
    deleted = la.channel_deleted("Y2hhbm5lbA==")
    assert deleted.state == "deleted" and deleted.deleted_at is not None
    assert [c.event for c in la.channels("ios", event="final-2026")] == ["final-2026"]
    assert [c.channel_id for c in la.channels("ios", state="open")] == ["c2VtaQ=="]
    with pytest.raises(StoreInputError) as policy:
        la.add_channel("ios", "x", "eA==", 2)
    assert policy.value.field == "storage_policy"
    with pytest.raises(StoreInputError):
        la.channel("bm9uZQ==")


def test_flow_from_the_store(live, credentials: pushwire.TokenCredentials) -> None:
    """Segment's push-to-start tokens from the store, channel recorded per event, broadcast
    updates, end, delete: the store ends with the channel deleted."""
    _, la = live
    devices = [apns_token(i) for i in range(200)]
    for i, device in enumerate(devices):
        la.put_push_to_start_token("ios", device, "Match", apns_token(i, prefix="5"))

    async def main(mock: MockAPNs) -> None:
        async with mock.broadcast_client(BUNDLE) as client:
            created = await client.create_channel(0)
            assert created.channel_id is not None
            channel = la.add_channel("ios", "final", created.channel_id, 0).channel_id
            segment = la.push_to_start_tokens("ios", "Match", devices[:150])
            start = payload.live_activity_start(
                BUNDLE,
                attributes_type="Match",
                attributes={},
                content_state={"score": "0-0"},
                timestamp=1,
                alert=pushwire.Alert(title="Kick-off"),
                input_push_channel=channel,
            )
            started = await client.send_to_tokens(start, list(segment.values()))
            assert len(started) == 150 and all(r.delivered for r in started)
            for minute in range(3):
                body = {"aps": {"event": "update", "timestamp": 2 + minute, "content-state": {}}}
                assert (await client.broadcast(channel, BroadcastMessage(body))).delivered
            end = {"aps": {"event": "end", "timestamp": 9, "content-state": {}}}
            assert (await client.broadcast(channel, BroadcastMessage(end))).delivered
            la.end_channel(channel)
            assert (await client.delete_channel(channel)).status == 204
            la.channel_deleted(channel)
            assert mock.received_broadcasts(channel) == 4

    with MockAPNs(credentials=credentials) as mock:
        asyncio.run(main(mock))
    assert [c.state for c in la.channels("ios")] == ["deleted"]
