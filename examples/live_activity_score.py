"""A match-score Live Activity: started on a segment by push-to-start, updated by broadcast.

Runs against the in-process mock (no Apple account needed)::

    python examples/live_activity_score.py --watchers 1000 --goals 5

Against APNs, build ``BroadcastClient(TokenCredentials.from_file(...), bundle_id=...,
environment="sandbox")`` instead of ``mock.broadcast_client(...)`` and use real push-to-start
tokens (ActivityKit ``pushToStartTokenUpdates``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import pushwire
from pushwire import Alert, BroadcastMessage, payload
from pushwire.testing import MockAPNs

BUNDLE = "com.example.scores"


def throwaway_credentials() -> pushwire.TokenCredentials:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pushwire.TokenCredentials(key, key_id="ABC123DEFG", team_id="TEAM123456")


def score_update(home: int, away: int, minute: int) -> BroadcastMessage:
    state = {"home": home, "away": away, "minute": minute}
    # expiration=0: the channel stores nothing (policy 0), late devices get the next update.
    return BroadcastMessage.from_message(
        payload.live_activity_update(
            BUNDLE, content_state=state, timestamp=int(time.time()), priority=5
        )
    )


async def run_match(mock: MockAPNs, watchers: list[str], goals: int) -> dict[str, int]:
    async with mock.broadcast_client(BUNDLE) as client:
        created = await client.create_channel(storage_policy=0)
        channel = created.channel_id
        if channel is None:
            raise SystemExit(f"could not create a channel: {created.status} {created.reason}")

        # 1. Push-to-start on the segment: one push per device, each activity subscribes to
        #    the channel (iOS 18: input-push-channel).
        start = payload.live_activity_start(
            BUNDLE,
            attributes_type="MatchAttributes",
            attributes={"home": "Lions", "away": "Tigers"},
            content_state={"home": 0, "away": 0, "minute": 0},
            timestamp=int(time.time()),
            alert=Alert(title="Kick-off", body="Lions v Tigers has started"),
            input_push_channel=channel,
        )
        started = await client.send_to_tokens(start, watchers)
        started_ok = sum(r.delivered for r in started)

        # 2. Every goal is ONE broadcast request, whatever the number of watchers.
        updates_ok = 0
        for goal in range(1, goals + 1):
            result = await client.broadcast(channel, score_update(goal, 0, goal * 10))
            updates_ok += result.delivered

        # 3. Full time: an end event on the channel, then the channel is deleted.
        final = payload.live_activity_end(
            BUNDLE,
            content_state={"home": goals, "away": 0, "minute": 90},
            timestamp=int(time.time()),
            dismissal_date=int(time.time()) + 3600,
        )
        ended = await client.broadcast(channel, final)
        deleted = await client.delete_channel(channel)
        return {
            "started": started_ok,
            "updates": updates_ok,
            "ended": int(ended.delivered),
            "deleted": int(deleted.status == 204),
            "broadcast_requests": mock.received_broadcasts(channel),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--goals", type=int, default=5)
    args = parser.parse_args()
    watchers = [os.urandom(32).hex() for _ in range(args.watchers)]
    credentials = throwaway_credentials()
    with MockAPNs(credentials=credentials) as mock:
        summary = asyncio.run(run_match(mock, watchers, args.goals))
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
