"""Each program in examples/ runs against the mock APNs, as its docstring says to run it, and
every notification it sends reaches the server exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import make_p8
from pushwire.testing import MockAPNs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY_ID, TEAM_ID = "ABC123DEFG", "DEF123GHIJ"
DEAD = "dead" + "0" * 60


def token(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture
def mock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockAPNs]:
    """The mock APNs, and the environment the examples read their settings from."""
    import pushwire

    key = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key.write_bytes(make_p8())
    credentials = pushwire.TokenCredentials(key, key_id=KEY_ID, team_id=TEAM_ID)
    with MockAPNs(credentials=credentials, rules={"dead": "unregistered"}) as server:
        for name, value in {
            "PUSHWIRE_APNS_KEY_FILE": str(key),
            "PUSHWIRE_APNS_KEY_ID": KEY_ID,
            "PUSHWIRE_APNS_TEAM_ID": TEAM_ID,
            "PUSHWIRE_BASE_URL": server.url,
            "PUSHWIRE_CA_FILE": str(server.ca_file),
            "APNS_TOPIC": "com.example.app",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.syspath_prepend(str(EXAMPLES))
        yield server


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def test_fastapi_lifespan_client(mock: MockAPNs) -> None:
    import fastapi_app

    app = fastapi_app.app
    tokens = [token(i) for i in range(50)] + [DEAD]

    async def serve() -> None:
        # What an ASGI server does: the lifespan around the requests.
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                body = {"tokens": tokens, "title": "Hi", "body": "there"}
                answer = await http.post("/push", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"delivered": 50, "drop": [DEAD]}
            assert not app.state.apns.closed
        assert app.state.apns.closed

    asyncio.run(serve())
    assert [mock.received(t) for t in tokens] == [1] * len(tokens)


def test_flask_threads_share_one_sync_client(mock: MockAPNs) -> None:
    import flask_app

    def requests_of(thread: int) -> list[str]:
        http = flask_app.app.test_client()
        outcomes = []
        for i in range(25):
            answer = http.post(f"/push/{token(thread * 100 + i)}", json={"title": "a", "body": "b"})
            assert answer.status_code == 200, answer.text
            outcomes.append(answer.json["outcome"])
        return outcomes

    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = [o for os_ in pool.map(requests_of, range(8)) for o in os_]
        assert outcomes == ["delivered"] * 200
        assert flask_app._client is not None  # one client served all eight threads
    finally:
        flask_app.stop_client()
    sent = [token(t * 100 + i) for t in range(8) for i in range(25)]
    assert [mock.received(t) for t in sent] == [1] * 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gunicorn_preload_workers_create_their_clients_after_fork(mock: MockAPNs) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
         f"127.0.0.1:{port}", "flask_app:app"],
        cwd=EXAMPLES, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn died"
                time.sleep(0.1)

        def push(i: int) -> dict[str, object]:
            answer = httpx.post(f"{url}/push/{token(i)}", json={"title": "a", "body": "b"})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(push, range(80)))
        assert {a["outcome"] for a in answers} == {"delivered"}
        assert server.pid not in {a["pid"] for a in answers}  # workers answered, not the master
    finally:
        server.send_signal(signal.SIGTERM)
        log, _ = server.communicate(timeout=30)
    assert server.returncode == 0, log
    assert "forked child" not in log and "Traceback" not in log, log
    assert [mock.received(token(i)) for i in range(80)] == [1] * 80


def test_celery_task_sends_from_prefork_workers(mock: MockAPNs, redis_url: str, monkeypatch):
    queue = f"pushes-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setenv("CELERY_QUEUE", queue)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "prefork",
         "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "WARNING"],
        cwd=EXAMPLES, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        import celery_tasks

        batches = [[token(b * 10 + i) for i in range(10)] for b in range(6)] + [[DEAD]]
        pending = [celery_tasks.send_alert.delay(tokens, "Hi", "there") for tokens in batches]
        outcomes = [p.get(timeout=60) for p in pending]
        assert outcomes == [{"delivered": 10, "drop": []}] * 6 + [{"delivered": 0, "drop": [DEAD]}]
    finally:
        worker.send_signal(signal.SIGTERM)
        log, _ = worker.communicate(timeout=60)
    assert "Traceback" not in log, log
    sent = [t for tokens in batches for t in tokens]
    assert [mock.received(t) for t in sent] == [1] * len(sent)


def test_every_example_is_run_by_a_test() -> None:
    programs = {p.name for p in EXAMPLES.glob("*.py")}
    # live_activity_score.py is run by tests/test_example_live_activity.py.
    assert programs == {
        "fastapi_app.py",
        "flask_app.py",
        "gunicorn.conf.py",
        "celery_tasks.py",
        "live_activity_score.py",
    }
