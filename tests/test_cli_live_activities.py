"""``pushwire live-activities``: channels create/list/delete, start on a segment through
push-to-start with input-push-channel, broadcast an update, end — against the mock, with the
store keeping channels and push-to-start tokens."""

from __future__ import annotations

import pytest

from pushwire.store import Store
from pushwire.store.live_activities import LiveActivities
from pushwire.testing import MockAPNs
from support.cli import invoke
from support.store import apns_token

BUNDLE = "com.example.app"


@pytest.fixture
def setup(tmp_path, credentials, p8_key):
    key = tmp_path / "AuthKey_ABC123DEFG.p8"
    key.write_bytes(p8_key)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic=BUNDLE)
        live = LiveActivities(store)
        for i in range(30):
            device = apns_token(i)
            store.register("ios", device, attributes={"plan": "pro" if i < 20 else "free"})
            live.put_push_to_start_token("ios", device, "Match", apns_token(i, prefix="7"))
    with MockAPNs(credentials=credentials) as mock:
        common = [
            "live-activities",
            "--bundle-id", BUNDLE,
            "--p8", str(key),
            "--team-id", "TEAM123456",
            "--base-url", mock.url,
            "--management-url", mock.url,
            "--ca-file", str(mock.ca_file),
        ]  # fmt: skip
        yield mock, common, db


def test_the_whole_flow_from_the_command_line(setup) -> None:
    mock, common, db = setup
    created = invoke(
        [*common, "channels", "create", "--event", "final", "--app", "ios", "--db", db]
    )
    assert created.exit_code == 0, created.output
    channel = created.stdout.strip()
    assert mock.broadcast_channels(BUNDLE) == {channel: 0}
    listed = invoke([*common, "channels", "list"])
    assert listed.stdout.split() == [channel]
    started = invoke(
        [
            *common,
            "start",
            "--channel",
            channel,
            "--app",
            "ios",
            "--activity-type",
            "Match",
            "--attributes",
            '{"home": "Lions"}',
            "--content-state",
            '{"score": "0-0"}',
            "--title",
            "Kick-off",
            "--segment",
            "plan=pro",
            "--db",
            db,
        ]
    )
    assert started.exit_code == 0, started.output
    assert started.stdout.strip() == "started=20 failed=0 disabled=0"
    assert sum(mock.received(apns_token(i, prefix="7")) for i in range(30)) == 20
    for score in ("1-0", "2-0"):
        sent = invoke(
            [*common, "broadcast", "--channel", channel, "--content-state", f'{{"s": "{score}"}}']
        )
        assert sent.exit_code == 0, sent.output
        assert sent.stdout.startswith("request_id=")
    refused = invoke([*common, "broadcast", "--channel", channel, "--content-state", "{}",
                      "--expiration", "2000000000", "--db", db])  # fmt: skip
    assert refused.exit_code == 2 and "apns-expiration" in refused.stderr
    ended = invoke([*common, "end", "--channel", channel, "--content-state", "{}", "--db", db])
    assert ended.exit_code == 0, ended.output
    assert mock.received_broadcasts(channel) == 3
    deleted = invoke([*common, "channels", "delete", channel, "--db", db])
    assert deleted.exit_code == 0, deleted.output
    with Store.open(db) as store:
        assert [c.state for c in LiveActivities(store).channels("ios")] == ["deleted"]


def test_errors_are_one_line_and_exit_codes(setup) -> None:
    mock, common, _db = setup
    unknown = invoke([*common, "broadcast", "--channel", "AAAAAAAAAAAAAAAAAAAAAA==",
                      "--content-state", "{}"])  # fmt: skip
    assert unknown.exit_code == 1
    assert "ChannelNotRegistered" in unknown.stderr
    stored = invoke([*common, "channels", "create"])
    channel = stored.stdout.strip()
    expiring = invoke([*common, "broadcast", "--channel", channel, "--content-state", "{}",
                       "--expiration", "2000000000"])  # fmt: skip
    assert expiring.exit_code == 1  # the store was not told the policy: APNs refuses it
    assert "BadExpirationDate" in expiring.stderr
    bad_json = invoke([*common, "broadcast", "--channel", channel, "--content-state", "[1]"])
    assert bad_json.exit_code == 2 and "--content-state" in bad_json.stderr
    half = invoke([*common, "channels", "create", "--event", "x"])
    assert half.exit_code == 2
    assert mock.received_broadcasts(channel) == 0


def test_help_needs_no_options_and_missing_ones_are_named() -> None:
    assert invoke(["live-activities", "start", "--help"]).exit_code == 0
    missing = invoke(["live-activities", "channels", "list"])
    assert missing.exit_code == 2
    assert "--bundle-id" in missing.stderr
    no_key = invoke(["live-activities", "--bundle-id", BUNDLE, "channels", "list"])
    assert no_key.exit_code == 2 and "--p8" in no_key.stderr
