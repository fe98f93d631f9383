"""Web Push subscriptions in the endpoint store, on SQLite and PostgreSQL: registration and
its checks, the schema step that adds them, the neutral message rendered for browsers, and
segment and user sends against mock push services that decrypt every message, with dead
subscriptions disabled in the store (counted on the services' side)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushwire import Outcome, PayloadError, PushwireError, Result
from pushwire.jobs import ClientOptions, Queue, Worker, WorkerSettings
from pushwire.store import (
    ClickAction,
    EventKind,
    InvalidSubscriptionError,
    PushMessage,
    Registration,
    SegmentFilter,
    Store,
    StoreInputError,
    WebPushOverride,
    client_for,
)
from pushwire.store import schema as schema_module
from pushwire.store.segments import token_pages
from pushwire.store.subscriptions import sendable_pages
from pushwire.testing import MockAPNs, MockWebPush
from pushwire.vapid import VapidKey
from pushwire.webpush import MAX_TTL, WebPushSubscription
from support.campaigns import FakeClock, utc
from support.store import BACKENDS, apns_token, database_url, open_store

MESSAGE = PushMessage(title="Hi", body="there", data={"campaign": "spring"})
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_keys() -> tuple[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64(point), b64(os.urandom(16))


def browser_json(endpoint: str = "https://push.example.net/wp/abc") -> dict[str, object]:
    p256dh, auth = browser_keys()
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": p256dh, "auth": auth}}


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with open_store(request.param, tmp_path) as opened:
        opened.put_application("web", provider="webpush")
        opened.put_application("ios", provider="apns", topic="com.example.app")
        yield opened


# -- registration -----------------------------------------------------------------------------


def test_a_subscription_is_an_endpoint_with_its_keys(store):
    sub = browser_json()
    endpoint = store.register_subscription("web", sub, user_id="u1", attributes={"plan": "pro"})
    assert endpoint.provider.value == "webpush" and endpoint.token == sub["endpoint"]
    assert (endpoint.p256dh, endpoint.auth) == (sub["keys"]["p256dh"], sub["keys"]["auth"])
    assert endpoint.subscription == WebPushSubscription(
        sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"]
    )
    assert sub["keys"]["auth"] not in repr(endpoint)
    # Idempotent; the same from JSON text or a WebPushSubscription; lookups by endpoint URL.
    again = store.register_subscription("web", json.dumps(sub), user_id="u1")
    assert again.id == endpoint.id and again.created_at == endpoint.created_at
    assert store.register_subscription("web", endpoint.subscription).id == endpoint.id
    assert store.get("web", sub["endpoint"]).p256dh == sub["keys"]["p256dh"]
    assert [e.token for e in store.endpoints_of_user("u1")] == [sub["endpoint"]]
    assert [e.token for e in store.endpoints(SegmentFilter(providers=["webpush"]))] == [
        sub["endpoint"]
    ]
    assert [e.kind for e in store.events(application="web")] == [EventKind.CREATED]
    # New keys (the browser subscribed again): updated, recorded without the keys.
    p256dh, auth = browser_keys()
    renewed = store.register_subscription(
        "web", {"endpoint": sub["endpoint"], "keys": {"p256dh": p256dh, "auth": auth}}
    )
    assert (renewed.p256dh, renewed.auth) == (p256dh, auth)
    last = store.events(application="web")[-1]
    assert last.kind is EventKind.UPDATED and last.details == {"keys": True}
    assert auth not in json.dumps(last.details)
    store.unregister_subscription("web", sub["endpoint"])
    assert store.find("web", sub["endpoint"]) is None
    assert store.events(application="web")[-1].kind is EventKind.DELETED


def test_re_registering_a_disabled_subscription_enables_it(store):
    sub = browser_json()
    store.register_subscription("web", sub)
    store.disable("web", sub["endpoint"], reason="SubscriptionGone")
    assert not store.get("web", sub["endpoint"]).enabled
    assert store.register_subscription("web", sub).enabled
    assert store.events(application="web")[-1].kind is EventKind.RE_ENABLED


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"endpoint": "http://push.example.net/wp/1"}, "endpoint", "https://"),
        ({"endpoint": "https://push.example.net"}, "endpoint", "path"),
        ({"endpoint": 42}, "endpoint", "https://"),
        ({"keys": None}, "keys", "keys"),
        ({"p256dh": b64(b"\x04" + b"\x01" * 63)}, "p256dh", "64 bytes"),
        ({"p256dh": b64(b"\x04" + b"\x01" * 64)}, "p256dh", "P-256"),
        ({"p256dh": b64(b"\x02" + b"\x01" * 64)}, "p256dh", "P-256"),
        ({"p256dh": "not base64!"}, "p256dh", "base64url"),
        ({"auth": b64(b"a" * 15)}, "auth", "15 bytes"),
        ({"auth": None}, "auth", "base64url"),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(store, change, field, words):
    sub, change = browser_json(), dict(change)
    keys = dict(sub["keys"])  # type: ignore[arg-type]
    for name in ("p256dh", "auth"):
        if name in change:
            keys[name] = change.pop(name)
    sub = {**sub, "keys": keys, **change}
    with pytest.raises(InvalidSubscriptionError) as info:
        store.register_subscription("web", sub)
    assert info.value.field == field and words in str(info.value)
    assert isinstance(info.value, PushwireError)
    assert list(store.endpoints()) == []


def test_keys_belong_to_web_push_applications_only(store):
    p256dh, auth = browser_keys()
    with pytest.raises(StoreInputError) as info:
        store.register("ios", apns_token(1), p256dh=p256dh, auth=auth)
    assert info.value.field == "p256dh"
    with pytest.raises(StoreInputError) as info:
        store.register_subscription("ios", browser_json())
    assert info.value.field == "application"
    # A web registration without keys cannot be sent to: refused.
    with pytest.raises(InvalidSubscriptionError) as info:
        store.register("web", "https://push.example.net/wp/1")
    assert info.value.field == "p256dh"
    # Import rows carry the keys too; a bad row (index) writes nothing.
    good = browser_json("https://push.example.net/wp/good")
    rows = [
        Registration("web", good["endpoint"], **good["keys"]),  # type: ignore[arg-type]
        Registration("web", "https://push.example.net/wp/bad", p256dh=p256dh, auth="x"),
    ]
    with pytest.raises(InvalidSubscriptionError) as info:
        store.register_many(rows)
    assert (info.value.field, info.value.index) == ("auth", 1)
    assert list(store.endpoints()) == []
    assert store.register_many(rows[:1]).created == 1
    with pytest.raises(StoreInputError) as info:
        store.put_application("web2", provider="webpush", topic="com.example")
    assert info.value.field == "topic"


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_5_migrates_a_version_4_database_keeping_ids(backend, monkeypatch, tmp_path):
    with database_url(backend, tmp_path) as url:
        before = tuple(m for m in schema_module.MIGRATIONS if m.version <= 4)
        monkeypatch.setattr(schema_module, "MIGRATIONS", before)
        monkeypatch.setattr(schema_module, "LATEST_VERSION", 4)
        with Store.open(url) as old:
            old.put_application("a", provider="apns", topic="t")
            old.put_application("b", provider="apns", topic="t")
            old.delete_application("b")
            ios_id = old.put_application("ios", provider="fcm").id
            # Written as version 4 wrote it (today's code writes the new columns).
            old.database.write(
                lambda c: c.execute(
                    "INSERT INTO endpoints (application_id, token, user_id, enabled, data, "
                    "attributes, created_at, updated_at, last_registered_at) "
                    "VALUES (?, 'tok1', 'u1', TRUE, '{}', '{}', 0, 0, 0)",
                    (ios_id,),
                )
            )
        monkeypatch.undo()
        with Store.open(url) as store:
            assert store.application("ios").id == ios_id
            assert store.get("ios", "tok1").user_id == "u1"
            web = store.put_application("web", provider="webpush")
            assert web.id == ios_id + 1  # the id of the deleted "b" is not reused
            store.register_subscription("web", browser_json())
            applied = store.database.read(
                lambda c: [r[0] for r in c.query("SELECT version FROM pushwire_schema")]
            )
            assert sorted(applied) == [1, 2, 3, 4, 5]
            with pytest.raises(PushwireError):  # the foreign key still holds
                store.database.write(
                    lambda c: c.execute(
                        "INSERT INTO endpoints (application_id, token, enabled, data, "
                        "attributes, created_at, updated_at, last_registered_at) "
                        "VALUES (9999, 'x', TRUE, '{}', '{}', 0, 0, 0)"
                    )
                )


# -- rendering --------------------------------------------------------------------------------


def test_the_neutral_message_renders_for_browsers():
    message = PushMessage(
        title="Sale",
        body="20% off",
        data={"campaign": "spring"},
        image_url="https://cdn.example.com/a.png",
        badge=3,
        action=ClickAction.URL,
        url="https://example.com/sale",
    )
    rendered = message.render_webpush()
    assert rendered.ttl == MAX_TTL and rendered.urgency is None
    assert json.loads(rendered.payload) == {
        "notification": {
            "title": "Sale",
            "body": "20% off",
            "image": "https://cdn.example.com/a.png",
            "app_badge": 3,
            "navigate": "https://example.com/sale",
            "data": {"campaign": "spring", "action": "url", "url": "https://example.com/sale"},
        }
    }
    declarative = PushMessage(
        title="Hi",
        body="there",
        action="url",
        url="https://example.com/x",
        webpush=WebPushOverride(declarative=True, mutable=True, ttl=60, urgency="high", tag="t1"),
    ).render_webpush()
    assert (declarative.ttl, declarative.urgency) == (60, "high")
    assert json.loads(declarative.payload) == {
        "web_push": 8030,
        "notification": {
            "title": "Hi",
            "body": "there",
            "navigate": "https://example.com/x",
            "tag": "t1",
            "data": {"action": "url", "url": "https://example.com/x"},
        },
        "mutable": True,
    }
    silent = PushMessage(silent=True, data={"sync": "1"}).render_webpush()
    assert json.loads(silent.payload) == {"data": {"sync": "1"}}
    # The override round-trips through the JSON form (send runs, jobs, --message FILE).
    again = PushMessage.from_dict(json.loads(json.dumps(message.to_dict())))
    assert again == message
    with_override = PushMessage(body="x", webpush=WebPushOverride(topic="t", ttl=5))
    assert PushMessage.from_dict(with_override.to_dict()) == with_override


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (PushMessage(body="x", webpush=WebPushOverride(declarative=True)), "message.title"),
        (
            PushMessage(title="x", webpush=WebPushOverride(declarative=True)),
            "message.webpush.navigate",
        ),
        (
            PushMessage(title="x", webpush=WebPushOverride(navigate="myapp://x")),
            "message.webpush.navigate",
        ),
        (
            PushMessage(silent=True, webpush=WebPushOverride(declarative=True)),
            "message.webpush.declarative",
        ),
        (
            PushMessage(body="x", webpush=WebPushOverride(topic="no spaces")),
            "message.webpush.topic",
        ),
        (PushMessage(body="x", webpush=WebPushOverride(ttl=-1)), "message.webpush.ttl"),
        (PushMessage(body="x" * 4000), "message"),
    ],
)
def test_messages_browsers_cannot_take_are_refused(message, field):
    with pytest.raises(PayloadError) as info:
        message.render_webpush()
    assert info.value.field == field


# -- sending ----------------------------------------------------------------------------------


def register_mock_subscriptions(store, mock, ids, **fields):
    # Registered well before the send: a gone verdict is dated by the send, conservatively
    # (the batch's first arrival minus each result's latency), and must come after this.
    fields.setdefault("registered_at", T0)
    rows = []
    for n, sub_id in enumerate(ids):
        sub = mock.subscription(sub_id, service=n % len(mock.urls))
        rows.append(Registration("web", sub.endpoint, p256dh=sub.p256dh, auth=sub.auth, **fields))
    store.register_many(rows)
    return [mock.subscription(sub_id, service=n % len(mock.urls)) for n, sub_id in enumerate(ids)]


def test_segment_send_reaches_subscriptions_and_disables_dead_ones(store):
    ids = [f"ok{i}" for i in range(12)] + ["dead1", "dead2", "gone1"]
    with MockWebPush(services=3, rules={"dead": "unregistered", "gone": "bad-token"}) as mock:
        subs = register_mock_subscriptions(store, mock, ids, attributes={"plan": "pro"})
        store.register_subscription("web", mock.subscription("free1"), attributes={"plan": "free"})

        async def main():
            async with mock.client() as web:
                return await store.send_to_segment(
                    "plan=pro", MESSAGE, clients={"web": web}, actor="tester"
                )

        report = asyncio.run(main())
        # Exactly once each, counted by the push services; decrypted, the rendered JSON.
        assert [mock.received(s) for s in subs] == [1] * len(subs)
        assert mock.received(mock.subscription("free1")) == 0
        (plaintext,) = mock.messages(subs[0])
        assert json.loads(plaintext)["notification"]["title"] == "Hi"
    assert report.total == 15 and report.delivered == 12
    tally = report.applications["web"]
    assert tally.invalid_tokens == 3 and tally.tokens_disabled == 3
    for sub in subs:
        endpoint = store.get("web", sub.endpoint)
        dead = "/wp/dead" in sub.endpoint or "/wp/gone" in sub.endpoint
        assert endpoint.enabled is not dead
    assert store.get("web", subs[-1].endpoint).disabled_reason == "BadDeviceToken"  # 404
    assert store.get("web", subs[-2].endpoint).disabled_reason == "Unregistered"


def test_user_send_reaches_browser_and_phone(store, credentials):
    with MockWebPush(services=1) as web_mock, MockAPNs(credentials=credentials) as apns:
        sub = web_mock.subscription("u1-laptop")
        store.register_subscription("web", sub, user_id="u1")
        store.register("ios", apns_token(1), user_id="u1")

        async def main():
            async with web_mock.client() as web, apns.client() as ios:
                return await store.send_to_user("u1", MESSAGE, clients={"web": web, "ios": ios})

        report = asyncio.run(main())
        assert web_mock.received(sub) == 1 and apns.received(apns_token(1)) == 1
    assert report.delivered == 2
    # A web application needs a WebPushClient.
    with MockAPNs(credentials=credentials) as apns:

        async def wrong():
            async with apns.client() as ios:
                await store.send_to_user("u1", MESSAGE, clients={"web": ios, "ios": ios})

        with pytest.raises(StoreInputError, match="WebPushClient"):
            asyncio.run(wrong())


def test_a_subscription_registered_after_the_410_stays_enabled(store):
    """The timestamp rule of endpoints: a gone verdict speaks about the moment it was sent;
    a registration after that moment wins, whatever order they reach the store in."""
    with MockWebPush(services=1, rules={"dead": "unregistered"}) as mock:
        late, early = mock.subscription("dead-late"), mock.subscription("dead-early")
        for sub in (late, early):
            store.register_subscription("web", sub, registered_at=T0)

        async def main():
            async with mock.client() as web:
                return await web.send_to_subscriptions(MESSAGE.render_webpush(), [late, early])

        results = asyncio.run(main())
        assert [r.status for r in results] == [410, 410]
    sent_at = datetime.now(timezone.utc)
    # The browser subscribed again (same endpoint) after the send, before its result landed.
    store.register_subscription("web", late, registered_at=sent_at + timedelta(seconds=5))
    report = store.apply_results("web", results, received_at=sent_at)
    assert report.disabled == [early.endpoint]
    assert store.get("web", late.endpoint).enabled
    assert not store.get("web", early.endpoint).enabled


def test_send_to_tokens_takes_endpoint_urls_and_client_for_reads_vapid(store, tmp_path):
    key = VapidKey.generate()
    path = tmp_path / "vapid.pem"
    path.write_bytes(key.private_pem())
    app = store.put_application(
        "web", provider="webpush", credentials_ref=f"vapid:{path}?subject=mailto:ops@example.com"
    )
    with MockWebPush(services=2) as mock:
        subs = [mock.subscription(f"t{i}", service=i % 2) for i in range(4)]
        for sub in subs:
            store.register_subscription("web", sub)

        async def main():
            async with client_for(app, ca_file=mock.ca_file, base_url="ignored") as web:
                assert web.vapid_public_key == key.public_key
                return await store.send_to_tokens(
                    "web", [s.endpoint for s in subs[:3]], MESSAGE, clients={"web": web}
                )

        report = asyncio.run(main())
        assert [mock.received(s) for s in subs] == [1, 1, 1, 0]
    assert report.delivered == 3
    with pytest.raises(PushwireError) as info:
        client_for(
            store.put_application("web", provider="webpush", credentials_ref=f"vapid:{path}")
        )
    assert info.value.field == "credentials_ref" and "subject" in str(info.value)


def test_2000_subscriptions_over_3_services_one_outcome_each(store):
    """A segment of 2,000 subscriptions over 3 push services, 100 dead: one outcome each
    (counted by the services, which decrypt every message), the dead ones disabled."""
    n, dead_every = 2000, 20
    ids = [f"dead{i}" if i % dead_every == 0 else f"ok{i}" for i in range(n)]
    with MockWebPush(services=3, rules={"dead": "unregistered"}) as mock:
        subs = register_mock_subscriptions(store, mock, ids)

        async def main():
            async with mock.client() as web:
                return await store.send_to_segment(
                    SegmentFilter(applications=["web"]),
                    MESSAGE,
                    clients={"web": web},
                    page_size=300,
                )

        report = asyncio.run(main())
        assert mock.total_received == n
        assert {mock.received(s) for s in subs} == {1}
    assert report.total == n and report.delivered == n - n // dead_every
    assert report.applications["web"].tokens_disabled == n // dead_every
    disabled = {e.token for e in store.endpoints(enabled=False)}
    assert disabled == {s.endpoint for s in subs if "/wp/dead" in s.endpoint}


def test_10k_subscriptions_stream_with_their_keys_and_410s_disable_them(store):
    """The store side at scale (the push services' decryption, not the store, bounds a 10k
    send through the mock): 10,000 subscriptions registered, read back a page at a time with
    their keys, and 10,000 results applied, the 500 gone ones disabled."""
    n = 10_000
    keys = [browser_keys() for _ in range(8)]
    endpoints = [f"https://push.example.net/wp/s{i:05d}" for i in range(n)]
    for start in range(0, n, 2500):
        store.register_many(
            Registration("web", e, p256dh=keys[i % 8][0], auth=keys[i % 8][1], registered_at=T0)
            for i, e in enumerate(endpoints[start : start + 2500], start)
        )
    app = store.application("web")
    pages = token_pages(store.database, app, SegmentFilter(applications=["web"]), 1000)
    subs = [s for page in sendable_pages(store.database, app, pages) for s in page]
    assert [s.endpoint for s in subs] == endpoints
    assert all((s.p256dh, s.auth) == keys[i % 8] for i, s in enumerate(subs))
    results = [
        result_of(e, i, 410 if i % 20 == 0 else 201, "Unregistered" if i % 20 == 0 else None)
        for i, e in enumerate(endpoints)
    ]
    report = store.apply_results("web", results)
    assert len(report.disabled) == n // 20
    assert sum(1 for _ in store.endpoints(enabled=False)) == n // 20
    assert sum(1 for _ in store.endpoints(enabled=True)) == n - n // 20


def result_of(token: str, index: int, status: int, reason: str | None) -> Result:
    outcome = Outcome.DELIVERED if status == 201 else Outcome.REJECTED
    return Result(
        index, token, outcome, status, reason, None, None, None, 1, 1, 0.01, 1, None, False, None
    )


def test_a_campaign_reaches_web_subscriptions_and_disables_dead_ones(tmp_path):
    clock = FakeClock(utc(2026, 12, 1, 8, 0))
    with (
        open_store("sqlite", tmp_path, clock=clock) as store,
        MockWebPush(services=2, rules={"dead": "unregistered"}) as mock,
    ):
        store.put_application("web", provider="webpush")
        ids = [f"c{i}" for i in range(40)] + ["dead-c1", "dead-c2"]
        subs = register_mock_subscriptions(
            store, mock, ids, attributes={"plan": "pro"}, registered_at=None
        )
        campaigns = store.campaigns
        campaigns.schedule(campaigns.create("web", segment="plan=pro", message=MESSAGE).id)
        clock.advance(timedelta(minutes=1))  # sent after the registrations

        async def main():
            async with mock.client() as web:
                return await campaigns.scheduler(clients={"web": web}, page_size=16).tick()

        (report,) = asyncio.run(main())
        assert [mock.received(s) for s in subs] == [1] * len(subs)
        assert report.sent == len(subs)
        (kpi,) = campaigns.kpis("web")
        assert (kpi.successful_deliveries, kpi.tokens_disabled) == (40, 2)
        assert [store.get("web", s.endpoint).enabled for s in subs[-2:]] == [False, False]


def test_a_queued_job_reaches_web_subscriptions_through_a_worker(
    redis_url, stream, key_prefix, tmp_path
):
    """Jobs carry endpoint URLs; the worker reads the keys from its store."""
    key_path = tmp_path / "vapid.pem"
    key_path.write_bytes(VapidKey.generate().private_pem())
    db = f"sqlite:///{tmp_path}/jobs.db"
    with MockWebPush(services=3, rules={"dead": "unregistered"}) as mock:
        with Store.open(db) as store:
            store.put_application(
                "web",
                provider="webpush",
                credentials_ref=f"vapid:{key_path}?subject=mailto:ops@example.com",
            )
            ids = [f"j{i}" for i in range(250)] + [f"dead-j{i}" for i in range(10)]
            subs = register_mock_subscriptions(store, mock, ids)

        async def main():
            with Store.open(db) as store:
                worker = Worker(
                    WorkerSettings(
                        redis_url=redis_url, stream=stream, key_prefix=key_prefix, consumer="w1"
                    ),
                    store=store,
                    options=ClientOptions(ca_file=mock.ca_file),
                )
                task = asyncio.ensure_future(worker.run())
                try:
                    async with Queue(redis_url, stream=stream, chunk_size=100) as q:
                        job = await q.enqueue_segment(store, "app=web", MESSAGE)
                        return await q.wait(job, timeout=60, poll=0.05)
                finally:
                    worker.stop()
                    await asyncio.wait_for(task, 60)

        status = asyncio.run(main())
        assert [mock.received(s) for s in subs] == [1] * len(subs)
        (plaintext,) = mock.messages(subs[0])
        assert json.loads(plaintext)["notification"]["body"] == "there"
    assert status.complete and status.total == status.recorded == len(subs)
    assert status.by_outcome == {"delivered": 250, "rejected": 10}
    with Store.open(db) as store:
        assert [store.get("web", s.endpoint).enabled for s in subs[-11:]] == [True] + [False] * 10
