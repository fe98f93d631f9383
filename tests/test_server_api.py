"""`pushwire serve` over real HTTP: the server runs as its own process on 127.0.0.1 (the
`pushwire serve` command), an httpx client calls it, a mock APNs server receives the sends.
Every endpoint, every scope boundary, bad input of every kind (a problem document naming the
field, and nothing written)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pushwire.store import Store
from pushwire.testing import MockAPNs
from support.server import (
    apns_token,
    client,
    close_clients,
    create_key,
    is_problem,
    running_server,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


@pytest.fixture(scope="module")
def mock():
    with MockAPNs(rules={"dead": "unregistered"}) as server:
        yield server


@pytest.fixture(scope="module")
def env(tmp_path_factory, mock, p8_key):
    directory = tmp_path_factory.mktemp("serve")
    db = f"sqlite:///{directory}/store.db"
    key_file = directory / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    ref = f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456"
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic="com.example.app", credentials_ref=ref)
        store.put_application(
            "other", provider="apns", topic="com.example.other", credentials_ref=ref
        )
    keys = {
        "admin": create_key(db, "admin", "admin"),
        "sender": create_key(db, "sender", "sender"),
        "app": create_key(db, "ios-app", "app", "ios"),
        "other_app": create_key(db, "other-app", "app", "other"),
        "slow": create_key(db, "slow", "sender", rate_limit=1),
    }
    log = directory / "server.log"
    extra = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file), "--sync-send-limit", "5"]
    with running_server(db, *extra, log=log) as server:
        yield {"db": db, "keys": keys, "server": server, "log": log}


def counts(db: str) -> tuple[int, int]:
    """(endpoints, last event id): what a refused request must leave as it was."""
    with Store.open(db) as store:
        endpoints = sum(1 for _ in store.endpoints())
        events = store.events(limit=1_000_000)
        return endpoints, events[-1].id if events else 0


def api(env, who: str | None):
    return client(env["server"], env["keys"][who] if who else None)


# -- health, docs, metrics ----------------------------------------------------------------------


def test_health_ready_metrics_and_docs_without_a_cdn(env):
    c = api(env, None)
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json()["status"] == "ready"
    docs = c.get("/docs/")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    schema = c.get("/docs/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    for path in ("/v1/devices", "/v1/sends", "/v1/jobs/{job_id}", "/v1/kpis", "/v1/events"):
        assert path in schema["paths"], path
    metrics = c.get("/metrics").text
    assert 'pushwire_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics


# -- devices ------------------------------------------------------------------------------------


def test_register_is_idempotent_re_enables_and_updates(env):
    c = api(env, "app")
    token = apns_token(1)
    first = c.post(
        "/v1/devices",
        json={"application": "ios", "token": token, "user_id": "u1", "attributes": {"plan": "pro"}},
    )
    assert first.status_code == 200, first.text
    assert first.json()["enabled"] and first.json()["user_id"] == "u1"
    again = c.post("/v1/devices", json={"application": "ios", "token": token.upper()})
    assert again.status_code == 200 and again.json()["token"] == token
    assert again.json()["attributes"] == {"plan": "pro"}  # absent fields unchanged
    with Store.open(env["db"]) as store:
        store.disable("ios", token, reason="Unregistered")
    revived = c.post("/v1/devices", json={"application": "ios", "token": token})
    assert revived.json()["enabled"] is True
    changed = c.patch(
        f"/v1/devices/ios/{token}", json={"user_id": "u2", "attributes": {"lang": "fr"}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user_id"] == "u2"
    assert changed.json()["attributes"] == {"plan": "pro", "lang": "fr"}
    sender = api(env, "sender")
    assert sender.get(f"/v1/devices/ios/{token}").json()["user_id"] == "u2"
    mine = sender.get("/v1/users/u2/devices").json()["devices"]
    assert [d["token"] for d in mine] == [token]
    found = sender.get("/v1/devices", params={"segment": "app=ios lang=fr"}).json()["devices"]
    assert [d["token"] for d in found] == [token]
    detached = c.patch(f"/v1/devices/ios/{token}", json={"detach_user": True})
    assert detached.json()["user_id"] is None
    history = sender.get("/v1/events", params={"token": token, "application": "ios"})
    kinds = [e["kind"] for e in history.json()["events"]]
    assert kinds[0] == "created" and "disabled" in kinds and "re_enabled" in kinds


def test_unregister_deletes_and_then_404(env):
    c = api(env, "app")
    token = apns_token(2)
    assert c.post("/v1/devices", json={"application": "ios", "token": token}).status_code == 200
    assert c.delete(f"/v1/devices/ios/{token}").status_code == 204
    is_problem(api(env, "sender").get(f"/v1/devices/ios/{token}"), 404, "token")
    is_problem(c.delete(f"/v1/devices/ios/{token}"), 404, "token")


def test_events_are_paged(env):
    c = api(env, "app")
    for i in range(5):
        c.post("/v1/devices", json={"application": "ios", "token": apns_token(100 + i)})
    sender = api(env, "sender")
    seen, after = [], None
    while True:
        params = {"limit": 2, "application": "ios"}
        if after is not None:
            params["after"] = after
        page = sender.get("/v1/events", params=params).json()
        seen += [e["id"] for e in page["events"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 5


# -- scopes -------------------------------------------------------------------------------------


def test_scope_boundaries(env):
    db = env["db"]
    before = counts(db)
    app = api(env, "app")
    token = apns_token(3)
    # An app key cannot register for another application, read devices, send, or admin.
    is_problem(
        app.post("/v1/devices", json={"application": "other", "token": token}), 403, "application"
    )
    is_problem(app.patch(f"/v1/devices/other/{token}", json={"user_id": "x"}), 403)
    is_problem(app.delete(f"/v1/devices/other/{token}"), 403)
    is_problem(app.get(f"/v1/devices/ios/{token}"), 403)
    is_problem(app.get("/v1/users/u1/devices"), 403)
    is_problem(app.get("/v1/devices"), 403)
    is_problem(app.post("/v1/sends", json={"message": {"title": "x"}, "user_id": "u1"}), 403)
    is_problem(app.get("/v1/kpis"), 403)
    is_problem(app.get("/v1/events"), 403)
    is_problem(app.get("/v1/keys"), 403)
    sender = api(env, "sender")
    is_problem(sender.get("/v1/keys"), 403)
    is_problem(sender.post("/v1/keys", json={"name": "x", "scope": "admin"}), 403)
    is_problem(sender.put("/v1/applications/new", json={"provider": "apns"}), 403)
    # No key, a malformed header, a made-up key.
    is_problem(api(env, None).get("/v1/me"), 401)
    bad = client(env["server"])
    is_problem(bad.get("/v1/me", headers={"Authorization": "Basic abc"}), 401, "Authorization")
    made_up = "pw_aaaaaaaaaaaa_" + "A" * 43
    is_problem(bad.get("/v1/me", headers={"Authorization": f"Bearer {made_up}"}), 401)
    # A key with the right id and a wrong secret.
    real = env["keys"]["sender"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    is_problem(bad.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    assert counts(db) == before


def test_revocation_is_immediate_through_the_api_and_the_cli(env):
    db = env["db"]
    admin = api(env, "admin")
    created = admin.post("/v1/keys", json={"name": "temp", "scope": "sender"})
    assert created.status_code == 201
    secret, key_id = created.json()["secret"], created.json()["key"]["key_id"]
    temp = client(env["server"], secret)
    assert temp.get("/v1/me").json()["scope"] == "sender"
    assert admin.delete(f"/v1/keys/{key_id}").status_code == 200
    is_problem(temp.get("/v1/me"), 401)
    listed = admin.get("/v1/keys").json()["keys"]
    assert key_id not in [k["key_id"] for k in listed]
    assert all("secret" not in k for k in listed)
    # Revoked from another process (the CLI): refused at the next request too.
    other = create_key(db, "temp2", "sender")
    temp2 = client(env["server"], other)
    assert temp2.get("/v1/me").status_code == 200
    revoke = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pushwire.cli import main; main()",
            "keys",
            "revoke",
            other[3:15],
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    is_problem(temp2.get("/v1/me"), 401)


def test_rate_limit_answers_429_with_retry_after(env):
    c = api(env, "slow")  # 1 request/s
    answers = [c.get("/v1/me") for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    problem = is_problem(limited[0], 429)
    assert int(limited[0].headers["retry-after"]) >= 1 and "per second" in problem["detail"]


def test_no_cors_unless_configured(env):
    c = api(env, "sender")
    origin = {"Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in c.get("/v1/me", headers=origin).headers
    pre = c.options("/v1/devices", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


# -- bad input ----------------------------------------------------------------------------------

BAD_BODIES = [
    # (body bytes, status, field)
    (b'{"application": "ios", "token": ', 400, None),  # truncated JSON
    (b"not json", 400, None),
    (b"[1, 2]", 400, None),
    (b'{"application": "ios", "token": 7}', 400, "token"),  # wrong type
    (b'{"application": "ios", "token": "ab", "extra": 1}', 400, "extra"),  # unknown field
    (b'{"application": "ios"}', 400, "token"),  # missing field
    (b'{"application": "ios", "token": "ab", "attributes": {"a": 5}}', 400, None),
    (b'{"application": "ios", "token": "not-hex!"}', 422, "token"),  # bad token
    (b'{"application": "ios", "token": "abc"}', 422, "token"),  # odd length
    (b'{"application": "nope", "token": "ab"}', 404, "application"),
    (b'{"application": "ios", "token": "ab", "user_id": ""}', 422, "user_id"),
    (b'{"application": "ios", "token": "ab", "attributes": {"": "x"}}', 422, None),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
def test_bad_registrations_are_problems_and_write_nothing(env, body, status, field):
    before = counts(env["db"])
    answer = api(env, "admin").post(
        "/v1/devices", content=body, headers={"content-type": "application/json"}
    )
    is_problem(answer, status, field)
    assert counts(env["db"]) == before


BAD_SENDS = [
    ({"message": {"title": "x"}}, 422, "tokens"),  # no target
    ({"message": {"title": "x"}, "user_id": "u1", "segment": "all"}, 422, "segment"),
    ({"message": {"title": "x"}, "tokens": ["ab"]}, 422, "application"),
    ({"message": {"title": "x"}, "application": "ios", "tokens": []}, 422, "tokens"),
    ({"message": {"title": "x"}, "application": "ios", "tokens": ["zz"]}, 422, "token"),
    ({"message": {"badge": "one"}, "user_id": "u1"}, 422, "badge"),
    ({"message": {"nope": 1}, "user_id": "u1"}, 422, "message"),
    ({"message": "hi", "user_id": "u1"}, 400, "message"),
    ({"message": {"title": "x"}, "segment": "app=ios bad attr=x=y"}, 422, None),
    ({"message": {"title": "x"}, "user_id": "u1", "mode": "later"}, 400, "mode"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_SENDS)
def test_bad_sends_are_problems_and_send_nothing(env, mock, body, status, field):
    before, received = counts(env["db"]), mock.total_received
    problem = is_problem(api(env, "sender").post("/v1/sends", json=body), status)
    if field is not None:
        assert field in (problem.get("field") or ""), problem
    assert counts(env["db"]) == before and mock.total_received == received


def test_oversize_body_is_413_and_writes_nothing(env):
    before = counts(env["db"])
    big = b'{"application": "ios", "token": "' + b"a" * (2 << 20) + b'"}'
    answer = api(env, "admin").post(
        "/v1/devices", content=big, headers={"content-type": "application/json"}
    )
    is_problem(answer, 413)
    assert counts(env["db"]) == before


def test_unknown_routes_and_methods_are_problems(env):
    c = api(env, "admin")
    is_problem(c.get("/v1/nothing-here"), 404)
    is_problem(c.put("/v1/sends", json={}), 405)
    is_problem(c.get("/v1/jobs/j-unknown"), 404, "job_id")


# -- sends --------------------------------------------------------------------------------------


def test_small_sends_answer_with_their_report(env, mock):
    app, sender = api(env, "app"), api(env, "sender")
    live, dead = apns_token(7, "a1"), apns_token(8, "dead")
    for token in (live, dead):
        app.post("/v1/devices", json={"application": "ios", "token": token, "user_id": "u7"})
    one = sender.post(
        "/v1/sends", json={"message": {"title": "Hi"}, "application": "ios", "tokens": [live]}
    )
    assert one.status_code == 200, one.text
    report = one.json()["report"]
    assert one.json()["kind"] == "report" and report["delivered"] == 1
    assert mock.received(live) == 1
    user = sender.post("/v1/sends", json={"message": {"title": "Hi"}, "user_id": "u7"}).json()
    assert user["report"]["total"] == 2 and user["report"]["delivered"] == 1
    assert user["report"]["tokens_disabled"] == 1
    assert mock.received(live) == 2 and mock.received(dead) == 1
    device = sender.get(f"/v1/devices/ios/{dead}").json()
    assert device["enabled"] is False and device["disabled_reason"] == "Unregistered"
    kpis = sender.get("/v1/kpis", params={"application": "ios"}).json()["kpis"]
    assert sum(k["sent"] for k in kpis) >= 3 and sum(k["tokens_disabled"] for k in kpis) >= 1


def test_large_sends_become_jobs_with_progress(env, mock):
    app, sender = api(env, "app"), api(env, "sender")
    tokens = [apns_token(i, "b2") for i in range(40)]
    for token in tokens:
        app.post(
            "/v1/devices",
            json={"application": "ios", "token": token, "attributes": {"cohort": "b2"}},
        )
    answer = sender.post(
        "/v1/sends", json={"message": {"title": "All"}, "segment": "app=ios cohort=b2"}
    )
    assert answer.status_code == 200 and answer.json()["kind"] == "job", answer.text
    job_id = answer.json()["job_id"]
    deadline = time.monotonic() + 60
    while True:
        status = sender.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in ("complete", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status["state"] == "complete", status
    assert status["total"] == status["recorded"] == 40
    assert status["by_outcome"] == {"delivered": 40} and status["run_id"]
    assert all(mock.received(t) == 1 for t in tokens)
    listing = sender.get("/v1/jobs").json()["jobs"]
    assert job_id in [j["job_id"] for j in listing]
    tokens_job = sender.post(
        "/v1/sends", json={"message": {"title": "T"}, "application": "ios", "tokens": tokens[:6]}
    )
    assert tokens_job.json()["kind"] == "job"  # 6 > --sync-send-limit 5


def test_application_admin_and_credentials_rotation(env, mock, p8_key, tmp_path):
    admin = api(env, "admin")
    is_problem(admin.put("/v1/applications/web", json={"provider": "mqtt"}), 400, "provider")
    made = admin.put("/v1/applications/news", json={"provider": "apns", "topic": "com.news"})
    assert made.status_code == 200 and made.json()["credentials_ref"] is None
    token = apns_token(1, "c3")
    admin.post("/v1/devices", json={"application": "news", "token": token})
    send = {"message": {"title": "x"}, "application": "news", "tokens": [token]}
    is_problem(admin.post("/v1/sends", json=send), 409, "credentials_ref")
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    ref = f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456"
    fixed = admin.put(
        "/v1/applications/news",
        json={"provider": "apns", "topic": "com.news", "credentials_ref": ref},
    )
    assert fixed.status_code == 200
    # The new credentials are used at once, without a restart.
    assert admin.post("/v1/sends", json=send).json()["report"]["delivered"] == 1
    names = [a["name"] for a in admin.get("/v1/applications").json()["applications"]]
    assert {"ios", "other", "news"} <= set(names)


# -- console session ----------------------------------------------------------------------------


def test_console_login_sets_a_strict_httponly_session(env):
    c = client(env["server"])
    assert c.get("/console").status_code == 200
    is_problem(c.post("/console/login", json={"key": env["keys"]["admin"]}), 403)
    headers = {"X-Pushwire-Console": "1"}
    is_problem(
        c.post("/console/login", json={"key": env["keys"]["sender"]}, headers=headers), 401, "key"
    )
    login = c.post("/console/login", json={"key": env["keys"]["admin"]}, headers=headers)
    assert login.status_code == 200, login.text
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert env["keys"]["admin"] not in login.text
    assert c.get("/v1/me").json()["scope"] == "session"
    # A cookie-authenticated change without the console header: refused (CSRF).
    token = apns_token(9, "d4")
    is_problem(c.post("/v1/devices", json={"application": "ios", "token": token}), 403)
    ok = c.post("/v1/devices", json={"application": "ios", "token": token}, headers=headers)
    assert ok.status_code == 200
    assert c.post("/console/logout", headers=headers).status_code == 204
    is_problem(c.get("/v1/me"), 401)


def test_secrets_never_reach_the_log(env):
    text = env["log"].read_text(errors="replace")
    for secret in env["keys"].values():
        assert secret not in text and secret[16:] not in text  # pw_<12-char id>_<secret>
