"""The fast registration route (pushwire/server/fast_registration.py): it answers well-formed,
allowed ``POST /v1/devices`` itself and hands everything else, body intact, to the Litestar
application, writing nothing first. In-process (the ASGI callable with a stand-in for the
Litestar app that records what reaches it), then over real HTTP: the same answers with the
fast route on and off, and a revoked key refused at its next registration."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pushwire.server import ApiKeys, ServerSettings
from pushwire.server.fast_registration import FastRegistrations
from pushwire.server.observability import HttpMetrics
from pushwire.server.services import Services
from pushwire.store import Store
from support.server import apns_token, client, close_clients, create_key, is_problem, running_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


class Framework:
    """Stands for the Litestar app: records each request that reaches it, with the body it
    reads, and answers 299."""

    def __init__(self, services: Services, registry: CollectorRegistry) -> None:
        self.state = SimpleNamespace(services=services, http_metrics=HttpMetrics(registry))
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def setup(tmp_path):
    db = f"sqlite:///{tmp_path}/s.db"
    with Store.open(db) as seed:
        seed.put_application("ios", provider="apns", topic="t")
        seed.put_application("other", provider="apns", topic="o")
    keys = {
        "app": create_key(db, "app", "app", "ios"),
        "other": create_key(db, "other", "app", "other"),
        "admin": create_key(db, "admin", "admin"),
        "slow": create_key(db, "slow", "app", "ios", rate_limit=1),
    }
    store = Store.open(db)
    registry = CollectorRegistry()
    services = Services(ServerSettings(db=db, max_body=4096), store, registry)
    framework = Framework(services, registry)
    yield SimpleNamespace(
        store=store, services=services, framework=framework, keys=keys, registry=registry
    )
    services.close()
    store.close()


def call(
    app: FastRegistrations,
    body: bytes,
    key: str | None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/v1/devices",
    method: str = "POST",
    query: bytes = b"",
    chunks: int = 1,
) -> list[dict[str, Any]]:
    """One request through the ASGI callable; the messages it sent."""
    raw = [(b"content-type", b"application/json")] if headers is None else headers
    if key is not None:
        raw = [*raw, (b"authorization", f"Bearer {key}".encode())]
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": raw,
    }
    size = -(-len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def registration(token: str, application: str = "ios", **extra: Any) -> bytes:
    return json.dumps({"application": application, "token": token, **extra}).encode()


def endpoints(store: Store) -> int:
    return sum(1 for _ in store.endpoints())


def test_a_well_formed_registration_is_answered_without_the_framework(setup):
    fast = FastRegistrations(setup.framework, setup.services.settings)  # type: ignore[arg-type]
    token = apns_token(1)
    sent = call(
        fast, registration(token, user_id="u1", attributes={"plan": "pro"}), setup.keys["app"]
    )
    assert setup.framework.seen == []
    start, body = sent
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert int(dict(start["headers"])[b"content-length"]) == len(body["body"])
    answer = json.loads(body["body"])
    stored = setup.store.get("ios", token)
    assert answer["token"] == token and answer["user_id"] == "u1" == stored.user_id
    assert (
        answer["attributes"] == {"plan": "pro"}
        and answer["created_at"] == stored.created_at.isoformat()
    )
    assert [e.kind.value for e in setup.store.events(token=token)] == ["created"]
    counted = setup.registry.get_sample_value(
        "pushwire_http_requests_total", {"method": "POST", "route": "/v1/devices", "status": "200"}
    )
    assert counted == 1.0


def test_a_row_the_store_refuses_is_a_problem_document_naming_the_field(setup):
    fast = FastRegistrations(setup.framework, setup.services.settings)  # type: ignore[arg-type]
    start, body = call(fast, registration("not-hex!"), setup.keys["app"])
    assert setup.framework.seen == []
    assert start["status"] == 422
    assert dict(start["headers"])[b"content-type"] == b"application/problem+json"
    problem = json.loads(body["body"])
    assert problem["field"] == "token" and problem["type"] == "urn:pushwire:problem:invalid-value"
    start, body = call(fast, registration(apns_token(2), "nowhere"), setup.keys["admin"])
    assert start["status"] == 404 and json.loads(body["body"])["field"] == "application"
    assert endpoints(setup.store) == 0


def test_every_refusal_goes_to_the_framework_with_its_body_and_nothing_written(setup):
    fast = FastRegistrations(setup.framework, setup.services.settings)  # type: ignore[arg-type]
    app_key, token = setup.keys["app"], apns_token(3)
    good = registration(token)
    revoked = create_key(setup.services.settings.db, "gone", "app", "ios")
    ApiKeys(setup.store).revoke(revoked[3:15])
    cases: list[tuple[bytes, str | None, dict[str, Any]]] = [
        (good, None, {}),  # no key
        (good, app_key[:-2] + "xx", {}),  # a forged secret
        (good, revoked, {}),  # a revoked key
        (good, "pw_notakey", {}),
        (registration(token, "other"), app_key, {}),  # an app key for another application
        (b'{"application": "ios", "token": ', app_key, {}),  # truncated JSON
        (good[:-1] + b', "extra": 1}', app_key, {}),  # an unknown field
        (b'{"application": "ios", "token": 7}', app_key, {}),  # a wrong type
        (registration(token, user_id="a\x00b"), app_key, {}),  # NUL
        (good, app_key, {"query": b"x=1"}),
        (good, app_key, {"path": "/v1/devices/"}),
        (good, app_key, {"method": "PUT"}),
        (good, app_key, {"headers": [(b"content-type", b"text/plain")]}),
        (good, app_key, {"headers": [(b"content-type", b"application/json"), (b"cookie", b"a=b")]}),
        (good, None, {"headers": [(b"authorization", f"Basic {app_key}".encode())]}),
        (good + b" " * 5000, app_key, {"chunks": 3}),  # over max_body (4096)
    ]
    for body, key, options in cases:
        before = len(setup.framework.seen)
        sent = call(fast, body, key, **options)
        assert sent[0]["status"] == 299, (body, key, options)
        assert setup.framework.seen[before:] == [(options.get("path", "/v1/devices"), body)]
    assert endpoints(setup.store) == 0


def test_a_rate_limited_key_goes_to_the_framework_which_answers_429(setup):
    fast = FastRegistrations(setup.framework, setup.services.settings)  # type: ignore[arg-type]
    first = call(fast, registration(apns_token(4)), setup.keys["slow"])  # 1 request/s
    second = call(fast, registration(apns_token(5)), setup.keys["slow"])
    assert first[0]["status"] == 200 and second[0]["status"] == 299
    assert endpoints(setup.store) == 1


def test_switched_off_or_with_cors_everything_goes_to_the_framework(setup):
    for settings in (
        ServerSettings(db="x", fast_registrations=False),
        ServerSettings(db="x", cors_origins=("https://app.example",)),
    ):
        fast = FastRegistrations(setup.framework, settings)  # type: ignore[arg-type]
        assert call(fast, registration(apns_token(6)), setup.keys["app"])[0]["status"] == 299
    assert endpoints(setup.store) == 0


# -- over HTTP ----------------------------------------------------------------------------------

_TIMES = re.compile(rb'"(created_at|updated_at|last_registered_at|disabled_at)":"[^"]*"')


def _answers(db: str, keys: dict[str, str], *extra: str) -> list[tuple[int, str, bytes]]:
    """The answers of one server to the same registrations, timestamps blanked."""
    requests: list[tuple[bytes, str | None]] = [
        (registration(apns_token(7), user_id="u1"), keys["app"]),
        (registration(apns_token(7), data={"k": "v"}), keys["app"]),  # refreshed
        (registration(apns_token(8)), keys["admin"]),
        (registration(apns_token(9), "other"), keys["app"]),
        (registration("zz"), keys["app"]),
        (registration(apns_token(10), "nowhere"), keys["admin"]),
        (b'{"application": "ios", "token": 7}', keys["app"]),
        (b'{"application": "ios"', keys["app"]),
        (registration(apns_token(11), extra=1), keys["app"]),
        (registration(apns_token(12), user_id="x\x00"), keys["app"]),
        (registration(apns_token(13)), None),
        (registration(apns_token(14)), keys["app"][:-3] + "abc"),
    ]
    out = []
    with running_server(db, *extra) as server:
        for body, key in requests:
            c = client(server, key)
            answer = c.post(
                "/v1/devices", content=body, headers={"content-type": "application/json"}
            )
            blanked = _TIMES.sub(rb'"\1":"-"', answer.content)
            out.append((answer.status_code, answer.headers["content-type"], blanked))
    return out


def test_the_same_answers_with_the_fast_route_on_and_off(tmp_path):
    answers = []
    for name, extra in (("on", ()), ("off", ("--no-fast-registrations",))):
        db = f"sqlite:///{tmp_path}/{name}.db"
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="t")
            store.put_application("other", provider="apns", topic="o")
        keys = {"app": create_key(db, "app", "app", "ios"), "admin": create_key(db, "a", "admin")}
        answers.append(_answers(db, keys, *extra))
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [
        200, 200, 200, 403, 422, 404, 400, 400, 400, 422, 401, 401
    ]  # fmt: skip


def test_a_key_revoked_by_another_process_is_refused_at_its_next_registration(tmp_path):
    db = f"sqlite:///{tmp_path}/s.db"
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic="t")
    key = create_key(db, "app", "app", "ios")
    with running_server(db) as server:
        c = client(server, key)
        assert (
            c.post(
                "/v1/devices",
                content=registration(apns_token(1)),
                headers={"content-type": "application/json"},
            ).status_code
            == 200
        )
        revoke = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pushwire.cli import main; main()",
                "keys",
                "revoke",
                key[3:15],
                "--db",
                db,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert revoke.returncode == 0, revoke.stderr
        refused = c.post(
            "/v1/devices",
            content=registration(apns_token(2)),
            headers={"content-type": "application/json"},
        )
        is_problem(refused, 401)
    with Store.open(db) as store:
        assert [e.token for e in store.endpoints()] == [apns_token(1)]
