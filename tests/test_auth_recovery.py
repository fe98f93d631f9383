"""APNs auth lifecycle through the client: ExpiredProviderToken is fixed once and the
notifications resent once; nothing is lost or reported twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pushwire
from pushwire import Notification, Outcome
from pushwire.testing import MockAPNs
from support.util import tokens


class StaleThenRealClock:
    """Mints the first JWT two hours in the past (as after a laptop sleep), then real time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return time.time() - 7200 if self.calls == 1 else time.time()


def test_expired_provider_token_is_refreshed_and_each_notification_resent_once(p8_key, message):
    creds = pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=StaleThenRealClock()
    )
    toks = tokens(2_000)

    async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], pushwire.Result]:
        async with server.client() as client:
            many = await client.send_many([Notification(t, message) for t in toks[:1000]])
            streamed = [
                r async for r in client.stream(Notification(t, message) for t in toks[1000:])
            ]
            one = await client.send(Notification(tokens(1, "ab")[0], message))
            return many, streamed, one

    with MockAPNs(credentials=creds) as server:
        many, streamed, one = asyncio.run(main())
        assert Counter(r.outcome for r in many + streamed) == {Outcome.DELIVERED: 2000}
        assert one.delivered
        # The stale JWT was rejected, one new JWT minted, and no notification received
        # more than twice (once rejected, once delivered).
        assert creds.mints == 2
        assert all(server.received(t) <= 2 for t in toks)
        assert sorted(r.index for r in streamed) == list(range(1000))


def test_a_second_expired_rejection_is_reported_not_retried_forever(p8_key, message):
    # The clock is stuck two hours back: every JWT is expired, the refresh cannot help.
    creds = pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=lambda: time.time() - 7200
    )

    async def main() -> list[pushwire.Result]:
        async with server.client() as client:
            return await client.send_many([Notification(t, message) for t in tokens(20)])

    with MockAPNs(credentials=creds) as server:
        results = asyncio.run(main())
        assert all(
            (r.outcome, r.status, r.reason) == (Outcome.REJECTED, 403, "ExpiredProviderToken")
            for r in results
        )
        assert all(server.received(r.token) == 2 for r in results)


def test_key_rotation_moves_to_fresh_connections_on_unrelated_key_id(p8_key, message):
    """APNs binds a connection to the first key used on it: after switching keys, the old
    connections answer UnrelatedKeyIdInToken; the client retires them and resends once."""
    from conftest import make_p8

    old = pushwire.TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456")
    new = pushwire.TokenCredentials(make_p8(), key_id="NEW123DEFG", team_id="TEAM123456")

    async def main() -> tuple[pushwire.Results, pushwire.Results, dict[str, int]]:
        async with server.client(max_connections=2) as client:
            first = await client.send_many([Notification(t, message) for t in tokens(500)])
            opened = client.stats()["connections_opened"]
            client._credentials = new  # the operator rotated the signing key
            second = await client.send_many([Notification(t, message) for t in tokens(500, "bb")])
            stats = client.stats()
            stats["before_rotation"] = opened
            return first, second, stats

    with MockAPNs(credentials=old, trusted_keys=[new]) as server:
        first, second, stats = asyncio.run(main())
        assert all(r.delivered for r in first + second)
        assert stats["connections_opened"] > stats["before_rotation"]
        assert all(server.received(r.token) <= 2 for r in second)
