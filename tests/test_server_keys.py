"""API keys and rate limits of `pushwire serve`, below HTTP: only hashes are stored, a revoked
or expired key (or a session of a revoked key) is refused at once, the per-key token bucket
follows its clock. On SQLite and PostgreSQL (schema step 2 on both)."""

from __future__ import annotations

import pytest

from pushwire.server import ApiKeys, Scope
from pushwire.server.auth import RateLimiter
from pushwire.server.errors import KeyInputError, UnknownKeyError
from pushwire.store import UnknownApplicationError
from pushwire.store.clock import system_clock
from support.store import BACKENDS, open_store


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with open_store(request.param, tmp_path) as store:
        store.put_application("ios", provider="apns", topic="com.example.app")
        yield store


def test_keys_are_stored_hashed_and_verified(store):
    keys = ApiKeys(store)
    created = keys.create("backend", "sender", rate_limit=50)
    assert created.secret.startswith(f"pw_{created.key.key_id}_")
    assert created.secret not in repr(created) and "hidden" in repr(created)
    rows = store.database.read(lambda c: c.query("SELECT secret_hash, name FROM api_keys"))
    assert created.secret not in str(rows) and len(rows[0][0]) == 64  # a SHA-256, hex
    verified = keys.verify(created.secret)
    assert verified is not None and verified.scope is Scope.SENDER and verified.rate_limit == 50
    assert keys.verify(created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")) is None
    assert keys.verify("pw_" + "a" * 12 + "_" + "b" * 43) is None
    assert keys.verify("not a key") is None
    assert [k.key_id for k in keys.list()] == [created.key.key_id]


def test_revocation_and_expiry_are_immediate(store):
    keys = ApiKeys(store)
    admin = keys.create("ops", "admin")
    session = keys.create(
        "session-ops", Scope.SESSION, parent=admin.key.id, expires_at=system_clock() + 60_000
    )
    expired = keys.create("old", Scope.SESSION, parent=admin.key.id, expires_at=system_clock() - 1)
    assert keys.verify(session.secret) is not None and keys.verify(expired.secret) is None
    keys.revoke(admin.key.key_id)
    assert keys.verify(admin.secret) is None
    assert keys.verify(session.secret) is None  # the admin key's sessions end with it
    assert keys.list() == [] and len(keys.list(include_revoked=True)) == 1
    with pytest.raises(UnknownKeyError):
        keys.revoke("nosuchkey123")


def test_bad_key_requests_are_refused_by_field(store):
    keys = ApiKeys(store)
    for kwargs, field in [
        ({"name": "a", "scope": "root"}, "scope"),
        ({"name": "a", "scope": "app"}, "application"),
        ({"name": "a", "scope": "sender", "application": "ios"}, "application"),
        ({"name": "a", "scope": "sender", "rate_limit": 0}, "rate_limit"),
        ({"name": "", "scope": "sender"}, "name"),
    ]:
        with pytest.raises(Exception) as caught:
            keys.create(**kwargs)
        assert getattr(caught.value, "field", None) == field, (kwargs, caught.value)
    with pytest.raises(UnknownApplicationError):
        keys.create("a", "app", application="android")
    with pytest.raises(KeyInputError):
        keys.create("a", "sender", rate_limit=-5)
    assert keys.list() == []


def test_rate_limiter_follows_its_clock():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("k", 2) for _ in range(2)] == [0.0, 0.0]  # a burst of `rate`
    assert limiter.take("k", 2) == pytest.approx(0.5)  # one more in half a second
    assert limiter.take("other", 2) == 0.0  # buckets are per key
    now[0] += 0.5
    assert limiter.take("k", 2) == 0.0
    assert limiter.take("k", 2) > 0
    now[0] += 10  # idle time refills up to the burst, not beyond
    assert [limiter.take("k", 2) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.take("k", 2) > 0


def test_verify_many_answers_each_as_verify_would_in_one_read(store):
    keys = ApiKeys(store)
    good = keys.create("backend", "sender").secret
    app = keys.create("ios-app", "app", application="ios").secret
    gone = keys.create("old", "sender")
    keys.revoke(gone.key.key_id)
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    presented = [
        good,
        app,
        gone.secret,
        forged,
        "not a key",
        good,
        "pw_" + "a" * 12 + "_" + "b" * 43,
    ]
    reads = []
    read = store.database.read

    def counting(work):
        reads.append(work)
        return read(work)

    store.database.read = counting  # type: ignore[method-assign]
    try:
        answers = keys.verify_many(presented)
    finally:
        store.database.read = read  # type: ignore[method-assign]
    assert len(reads) == 1
    assert [a.name if a else None for a in answers] == [
        "backend", "ios-app", None, None, None, "backend", None
    ]  # fmt: skip
    assert answers == [keys.verify(p) for p in presented]
    keys.revoke(answers[0].key_id)  # the same rows, read again: the revocation is seen at once
    assert keys.verify_many([good, app])[0] is None
