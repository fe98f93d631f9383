"""`pushwire serve` on PostgreSQL, and with --redis: large sends become Redis Streams jobs that
a `pushwire worker` process sends, followed through the same /v1/jobs API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from pushwire.server import ApiKeys
from pushwire.store import Store
from pushwire.testing import MockAPNs
from support.server import (
    PACKAGE_PARENT,
    apns_token,
    client,
    close_clients,
    create_key,
    is_problem,
    running_server,
)
from support.store import postgres_schema

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


def wait_complete(c, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get(f"/v1/jobs/{job_id}").json()
        if status["state"] == "complete":
            return status
        time.sleep(0.1)
    raise AssertionError(f"job not complete: {status}")


def test_the_api_on_postgresql(tmp_path, p8_key):
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    ref = f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456"
    with postgres_schema() as db, MockAPNs(rules={"dead": "unregistered"}) as mock:
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="com.x", credentials_ref=ref)
        app_key = create_key(db, "app", "app", "ios")
        sender_key = create_key(db, "sender", "sender")
        extra = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file), "--sync-send-limit", "3"]
        with running_server(db, *extra) as server:
            app, sender = client(server, app_key), client(server, sender_key)
            tokens = [apns_token(1, "a0"), apns_token(2, "dead")]
            for token in tokens:
                answer = app.post(
                    "/v1/devices", json={"application": "ios", "token": token, "user_id": "u1"}
                )
                assert answer.status_code == 200, answer.text
            is_problem(
                app.post("/v1/devices", json={"application": "ios", "token": "zz"}), 422, "token"
            )
            report = sender.post("/v1/sends", json={"message": {"title": "x"}, "user_id": "u1"})
            assert report.json()["report"]["delivered"] == 1, report.text
            job = sender.post(
                "/v1/sends", json={"message": {"title": "x"}, "segment": "all", "mode": "job"}
            ).json()
            status = wait_complete(sender, job["job_id"])
            assert status["by_outcome"] == {"delivered": 1}  # the dead token is disabled now
            events = sender.get("/v1/events", params={"kind": "disabled"}).json()["events"]
            assert [e["token"] for e in events] == [tokens[1]]
        with Store.open(db) as store:
            assert sum(1 for _ in store.endpoints()) == 2


def test_large_sends_go_to_the_redis_workers(tmp_path, p8_key, redis_url):
    db = f"sqlite:///{tmp_path}/store.db"
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    ref = f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456"
    tokens = [apns_token(i, "b1") for i in range(30)]
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic="com.x", credentials_ref=ref)
        for token in tokens:
            store.register("ios", token)
    sender_key = create_key(db, "sender", "sender")
    stream = f"test-serve-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        PUSHWIRE_STREAM=stream,
        PYTHONPATH=str(PACKAGE_PARENT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    with MockAPNs() as mock:
        options = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file)]
        os.environ["PUSHWIRE_STREAM"] = stream
        try:
            with running_server(db, "--redis", redis_url, *options) as server:
                sender = client(server, sender_key)
                answer = sender.post(
                    "/v1/sends", json={"message": {"title": "x"}, "segment": "all", "mode": "job"}
                ).json()
                assert answer["kind"] == "job"
                queued = sender.get(f"/v1/jobs/{answer['job_id']}").json()
                assert queued["backend"] == "redis" and queued["total"] == 30
                assert queued["state"] == "queued" and mock.total_received == 0
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "from pushwire.cli import main; main()",
                        "worker",
                        "--db",
                        db,
                        "--redis",
                        redis_url,
                        *options,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    status = wait_complete(sender, answer["job_id"])
                finally:
                    worker.terminate()
                    worker.wait(30)
                assert status["recorded"] == 30 and status["by_outcome"] == {"delivered": 30}
                assert answer["job_id"] in [
                    j["job_id"] for j in sender.get("/v1/jobs").json()["jobs"]
                ]
                assert sender.get("/readyz").json()["jobs"] == "redis"
            assert all(mock.received(t) == 1 for t in tokens)
        finally:
            del os.environ["PUSHWIRE_STREAM"]


NUL_BODIES = [
    ("/v1/devices", {"application": "ios", "token": "ab", "data": {"x": "a\u0000b"}}, "data.x"),
    (
        "/v1/devices",
        {"application": "ios", "token": "ab", "attributes": {"x": "\u0000"}},
        "attributes.x",
    ),
    ("/v1/devices", {"application": "ios\u0000", "token": "ab"}, "application"),
    ("/v1/keys", {"name": "n", "scope": "app", "application": "a\u0000"}, "application"),
]


def test_nul_characters_are_refused_before_postgresql_sees_them():
    """PostgreSQL cannot store NUL in text or JSONB: the API refuses them as bad input (a 4xx
    naming the field), never as a database failure, and writes nothing."""
    with postgres_schema() as db:
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="com.x")
        admin = create_key(db, "admin", "admin")
        with running_server(db) as server:
            c = client(server, admin)
            for path, body, field in NUL_BODIES:
                is_problem(c.post(path, json=body), 422, field)
            for params in ({"application": "i\u0000"}, {"token": "a\u0000"}, {"user_id": "\u0000"}):
                is_problem(c.get("/v1/events", params=params), 400)
            is_problem(c.get("/v1/devices", params={"segment": "plan=a\u0000"}), 400)
            is_problem(c.get("/v1/users/a%00b/devices"), 400)
        with Store.open(db) as store:
            assert list(store.endpoints()) == [] and len(ApiKeys(store).list()) == 1
