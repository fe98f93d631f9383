"""Helpers shared by the job-queue tests (no tests here): the Redis test server, a store with
an APNs application, worker processes.

Redis: ``$PUSHWIRE_TEST_REDIS_URL`` if set (scripts/test.sh starts a server with
scripts/redis.sh); otherwise a throwaway server is started here with the same script (which
installs redis-server from Debian if it is missing and we are root) and stopped when the test
process exits. The tests are skipped only when ``PUSHWIRE_NO_REDIS=1`` says so; a server that
is expected but cannot be reached or started fails them.

Each test gets streams and key prefixes of its own, so tests never see each other's jobs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pushwire.store import Store
from support.util import ThrowawayServer

URL_VARIABLE = "PUSHWIRE_TEST_REDIS_URL"
NO_REDIS_VARIABLE = "PUSHWIRE_NO_REDIS"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis.sh"
CLI = [sys.executable, "-m", "pushwire.cli"]
KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.app"


def _ping(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    finally:
        client.close()


_REDIS = ThrowawayServer("Redis", URL_VARIABLE, NO_REDIS_VARIABLE, SCRIPT, _ping)


def redis_server_url() -> str:
    """The test server's URL; skips only on PUSHWIRE_NO_REDIS=1, fails otherwise."""
    return _REDIS.url()


def unique_stream() -> str:
    """A stream of one test's own."""
    return f"test:{uuid.uuid4().hex[:12]}"


def unique_prefix() -> str:
    """Shared-credential keys of one test's own."""
    return f"pwtest:{uuid.uuid4().hex[:12]}"


def make_store(directory: Path, p8_key: bytes, *, app: str = "ios") -> str:
    """A SQLite store with APNs application ``app`` (token auth, key in ``directory``)."""
    p8 = directory / f"AuthKey_{KEY_ID}.p8"
    p8.write_bytes(p8_key)
    url = f"sqlite:///{directory}/store.db"
    with Store.open(url) as store:
        store.put_application(
            app,
            provider="apns",
            topic=TOPIC,
            environment="production",
            credentials_ref=f"p8:{p8}?key_id={KEY_ID}&team_id={TEAM_ID}",
        )
    return url


def worker_args(
    redis_url: str, stream: str, db: str, server: Any, consumer: str, *extra: str
) -> list[str]:
    """`pushwire worker` against ``server``; the shared credentials live under the stream's
    own prefix, so tests never share a JWT."""
    return [
        *CLI,
        "worker",
        "--redis", redis_url,
        "--stream", stream,
        "--key-prefix", stream + ":shared",
        "--db", db,
        "--apns-url", server.url,
        "--ca-file", str(server.ca_file),
        "--consumer", consumer,
        "--no-apply-results",
        *extra,
    ]  # fmt: skip


def start_worker(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    try:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> list[int]:
    """SIGTERM each, wait; kill what is left. The exit codes."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sync_redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def outcome_indexes(client: Any, stream: str, job: str) -> Iterator[int]:
    for key in client.hscan_iter(f"{stream}:job:{job}:outcomes", count=5000):
        yield int(key[0])
