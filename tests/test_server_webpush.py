"""`pushwire serve` and Web Push: a browser registers its subscription with an app key (a
problem document naming the request's field for each bad one, nothing written), reads the
VAPID public key, unregisters; sends to a user reach the browser through mock push services
that decrypt every message, and a gone subscription is disabled."""

from __future__ import annotations

import base64

import pytest

from pushwire.store import Store
from pushwire.testing import MockWebPush
from pushwire.vapid import VapidKey
from support.server import client, close_clients, create_key, is_problem, running_server

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


@pytest.fixture(scope="module")
def push_services():
    with MockWebPush(services=2, rules={"dead": "unregistered"}) as mock:
        yield mock


@pytest.fixture(scope="module")
def env(tmp_path_factory, push_services):
    directory = tmp_path_factory.mktemp("serve-webpush")
    db = f"sqlite:///{directory}/store.db"
    vapid = VapidKey.generate()
    key_file = directory / "vapid.pem"
    key_file.write_bytes(vapid.private_pem())
    with Store.open(db) as store:
        store.put_application(
            "web",
            provider="webpush",
            credentials_ref=f"vapid:{key_file}?subject=mailto:ops@example.com",
        )
        store.put_application("ios", provider="apns", topic="com.example.app")
    keys = {
        "web": create_key(db, "web-app", "app", "web"),
        "ios": create_key(db, "ios-app", "app", "ios"),
        "sender": create_key(db, "sender", "sender"),
    }
    extra = ["--ca-file", str(push_services.ca_file), "--sync-send-limit", "10"]
    with running_server(db, *extra, log=directory / "server.log") as server:
        yield {"db": db, "keys": keys, "server": server, "vapid": vapid}


def api(env, who):
    return client(env["server"], env["keys"][who])


def browser_json(sub) -> dict:
    return {
        "endpoint": sub.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
    }


def endpoint_count(db: str) -> int:
    with Store.open(db) as store:
        return sum(1 for _ in store.endpoints())


def test_the_page_reads_the_vapid_public_key(env):
    answer = api(env, "web").get("/v1/webpush/web/vapid-public-key")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"application": "web", "public_key": env["vapid"].public_key}
    assert "PRIVATE" not in answer.text
    is_problem(api(env, "ios").get("/v1/webpush/web/vapid-public-key"), 403, "application")
    is_problem(api(env, "sender").get("/v1/webpush/ios/vapid-public-key"), 422, "application")


def test_a_browser_registers_is_sent_to_and_a_gone_one_is_disabled(env, push_services):
    web, sender = api(env, "web"), api(env, "sender")
    laptop = push_services.subscription("srv-laptop", service=0)
    gone = push_services.subscription("dead-srv", service=1)
    for sub in (laptop, gone):
        body = {"application": "web", "subscription": browser_json(sub), "user_id": "u9"}
        answer = web.post("/v1/webpush/subscriptions", json=body)
        assert answer.status_code == 200, answer.text
        device = answer.json()
        assert device["provider"] == "webpush" and device["token"] == sub.endpoint
        assert sub.auth not in answer.text  # the secret is kept, not echoed
    again = web.post(
        "/v1/webpush/subscriptions",
        json={"application": "web", "subscription": browser_json(laptop)},
    )
    assert again.status_code == 200 and again.json()["user_id"] == "u9"  # idempotent
    sent = sender.post("/v1/sends", json={"message": {"title": "Hi"}, "user_id": "u9"})
    assert sent.status_code == 200, sent.text
    report = sent.json()["report"]
    assert report["total"] == 2 and report["delivered"] == 1 and report["tokens_disabled"] == 1
    assert push_services.received(laptop) == 1 and push_services.received(gone) == 1
    assert push_services.messages(laptop) == [b'{"notification":{"title":"Hi"}}']
    with Store.open(env["db"]) as store:
        assert store.get("web", laptop.endpoint).enabled
        assert store.get("web", gone.endpoint).disabled_reason == "Unregistered"
    # The browser unsubscribed: gone from the store; a second time is a 404.
    params = {"application": "web", "endpoint": laptop.endpoint}
    assert web.delete("/v1/webpush/subscriptions", params=params).status_code == 204
    with Store.open(env["db"]) as store:
        assert store.find("web", laptop.endpoint) is None
    is_problem(web.delete("/v1/webpush/subscriptions", params=params), 404)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("who", "change", "status", "field"),
    [
        ("web", {"endpoint": "http://push.example.net/wp/x"}, 422, "subscription.endpoint"),
        ("web", {"p256dh": b64(b"\x04" + b"\x01" * 20)}, 422, "subscription.keys.p256dh"),
        ("web", {"p256dh": b64(b"\x04" + b"\x01" * 64)}, 422, "subscription.keys.p256dh"),
        ("web", {"auth": b64(b"x" * 8)}, 422, "subscription.keys.auth"),
        ("web", {"auth": 5}, 400, "subscription.keys.auth"),
        ("web", {"keys": None}, 400, "subscription.keys"),
        ("web", {"application": "ios"}, 403, "application"),
        ("sender", {"application": "ios"}, 422, "application"),
        ("web", {"colour": "red"}, 400, "colour"),
    ],
)
def test_bad_subscriptions_are_problem_documents_naming_the_field(
    env, push_services, who, change, status, field
):
    before = endpoint_count(env["db"])
    sub = browser_json(push_services.subscription("srv-bad"))
    body: dict = {"application": "web", "subscription": sub}
    for name in ("p256dh", "auth"):
        if name in change:
            sub["keys"][name] = change[name]
    if "endpoint" in change:
        sub["endpoint"] = change["endpoint"]
    if "keys" in change:
        sub["keys"] = change["keys"]
    body.update({k: v for k, v in change.items() if k in ("application", "colour")})
    is_problem(api(env, who).post("/v1/webpush/subscriptions", json=body), status, field)
    assert endpoint_count(env["db"]) == before
