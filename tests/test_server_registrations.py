"""Group commit of registrations: `Store.register_each` (one transaction, each row answered
as `Store.register` would answer it) and the server's batcher under concurrent requests over
real HTTP (every device stored once, a bad request refused alone, re-enabling kept)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pushwire.store import Registration, Store
from pushwire.store.errors import InvalidTokenError, UnknownApplicationError
from support.server import apns_token, close_clients, create_key, running_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


def test_register_each_answers_every_row_as_register_would(tmp_path):
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        store.put_application("ios", provider="apns", topic="t")
        dead = apns_token(9)
        store.register("ios", dead, user_id="old")
        store.disable("ios", dead, reason="Unregistered")
        a = apns_token(1)
        answers = store.register_each(
            [
                Registration("ios", a, user_id="u1"),
                Registration("ios", "not-hex"),
                Registration("nowhere", apns_token(2)),
                Registration("ios", a.upper(), user_id="u2"),  # the same token again
                Registration("ios", dead),
            ]
        )
        assert answers[0].user_id == "u1" and answers[3].user_id == "u2"  # state after its row
        assert isinstance(answers[1], InvalidTokenError)
        assert isinstance(answers[2], UnknownApplicationError)
        assert answers[4].enabled and answers[4].user_id == "old"  # re-enabled, kept
        assert store.get("ios", a).user_id == "u2"
        kinds = [e.kind.value for e in store.events(token=a)]
        assert kinds == ["created", "updated"]
        assert [e.kind.value for e in store.events(token=dead)][-1] == "re_enabled"
        assert sum(1 for _ in store.endpoints()) == 2


def test_concurrent_registrations_are_each_stored_once_and_answered_alone(tmp_path):
    db = f"sqlite:///{tmp_path}/store.db"
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic="t")
    key = create_key(db, "app", "app", "ios", rate_limit=1_000_000)
    tokens = [apns_token(i, "ab") for i in range(400)]
    bodies = [{"application": "ios", "token": t, "user_id": f"u{i}"} for i, t in enumerate(tokens)]
    bodies += [{"application": "ios", "token": t} for t in tokens[:50]]  # again: idempotent
    bodies.insert(123, {"application": "ios", "token": "zz-not-hex"})

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, limits=limits, timeout=30
        ) as c:
            return await asyncio.gather(*(c.post("/v1/devices", json=b) for b in bodies))

    with running_server(db) as server:
        answers = asyncio.run(main())
    statuses = [r.status_code for r in answers]
    assert statuses.count(422) == 1 and statuses[123] == 422
    assert answers[123].json()["field"] == "token"
    assert statuses.count(200) == len(bodies) - 1
    for body, answer in zip(bodies, answers, strict=True):
        if answer.status_code == 200:
            assert answer.json()["token"] == body["token"]
    with Store.open(db) as store:
        stored = {e.token: e for e in store.endpoints()}
        assert set(stored) == set(tokens)
        assert all(stored[t].user_id == f"u{i}" for i, t in enumerate(tokens))
        created = store.events(kinds=["created"], limit=10_000)
        assert len(created) == len(tokens)
