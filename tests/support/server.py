"""Helpers for the `pushwire serve` tests (no tests here): the server as a real process on
127.0.0.1 (started with the `pushwire serve` command, stopped with SIGTERM), keys and
applications seeded straight into its store, an httpx client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import pushwire
from pushwire.server import ApiKeys
from pushwire.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: Where the pushwire under test is installed (the source tree in an editable install,
#: site-packages otherwise: only there does it have its compiled _core).
PACKAGE_PARENT = Path(pushwire.__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(db: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from pushwire.cli import main; main()",
        "serve",
        "--db",
        db,
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]


@dataclass
class ServerProcess:
    db: str
    port: int
    extra: Sequence[str] = ()
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    logs: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(PACKAGE_PARENT) + os.pathsep + env.get("PYTHONPATH", "")
        if self.log is not None:
            with open(self.log, "ab") as out:
                self.process = subprocess.Popen(
                    server_command(self.db, self.port, *self.extra),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        else:
            self.process = subprocess.Popen(
                server_command(self.db, self.port, *self.extra),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pushwire serve exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("pushwire serve did not answer /healthz in time")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait: the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


@contextmanager
def running_server(db: str, *extra: str, log: Path | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(db, free_port(), extra, log)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()


def create_key(
    db: str, name: str, scope: str, application: str | None = None, rate_limit: int | None = None
) -> str:
    with Store.open(db) as store:
        return (
            ApiKeys(store)
            .create(name, scope, application=application, rate_limit=rate_limit)
            .secret
        )


_OPEN: list[httpx.Client] = []


def client(server: ServerProcess, key: str | None = None) -> httpx.Client:
    """A client with ``key``; closed by :func:`close_clients` (an autouse fixture)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    c = httpx.Client(base_url=server.url, headers=headers, timeout=30)
    _OPEN.append(c)
    return c


def close_clients() -> None:
    while _OPEN:
        _OPEN.pop().close()


def is_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """Assert an RFC 9457 problem document with ``status`` (and ``field``); return it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"], problem
    assert problem["type"].startswith("urn:pushwire:problem:"), problem
    if field is not None:
        assert problem.get("field") == field, problem
    return problem


def apns_token(i: int, prefix: str = "") -> str:
    width = 64 - len(prefix)
    return prefix + format(i, f"0{width}x")


# -- load: many concurrent clients registering devices ------------------------------------------


@dataclass
class LoadResult:
    registered: int
    seconds: float
    latencies: list[float]
    retries: int

    @property
    def rate(self) -> float:
        return self.registered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def register_devices(
    url: str,
    key: str,
    application: str,
    tokens: Sequence[str],
    *,
    concurrency: int = 200,
    on_progress: object = None,
) -> LoadResult:
    """POST every token to /v1/devices from ``concurrency`` clients at once; a request that
    fails for want of a server (connection refused or reset, 503) is retried until it is
    answered 200, as a device retries its registration."""
    import asyncio

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    retries = 0
    done = 0
    next_index = 0

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:

        async def worker() -> None:
            nonlocal next_index, retries, done
            while next_index < len(tokens):
                token = tokens[next_index]
                next_index += 1
                body = f'{{"application":"{application}","token":"{token}"}}'.encode()
                while True:
                    start = time.perf_counter()
                    try:
                        answer = await c.post("/v1/devices", content=body)
                    except httpx.TransportError:
                        retries += 1
                        await asyncio.sleep(0.05)
                        continue
                    if answer.status_code in (502, 503):
                        retries += 1
                        await asyncio.sleep(0.05)
                        continue
                    if answer.status_code != 200:
                        raise AssertionError(f"{token}: {answer.status_code} {answer.text}")
                    latencies.append(time.perf_counter() - start)
                    done += 1
                    if callable(on_progress):
                        on_progress(done)
                    break

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return LoadResult(len(latencies), seconds, latencies, retries)


def register_across_restart(
    server: ServerProcess, key: str, application: str, tokens: Sequence[str], concurrency: int = 200
) -> tuple[LoadResult, list[int]]:
    """:func:`register_devices` while the server gets SIGTERM and is started again (same
    port, same store) once half the tokens are registered; the result and the exit status of
    the stopped server."""
    import asyncio
    import threading

    halfway = threading.Event()
    exit_codes: list[int] = []

    def progress(done: int) -> None:
        if done >= len(tokens) // 2:
            halfway.set()

    async def restart() -> None:
        await asyncio.to_thread(halfway.wait)
        exit_codes.append(await asyncio.to_thread(server.stop))
        await asyncio.to_thread(server.start)

    async def main() -> LoadResult:
        restarting = asyncio.ensure_future(restart())
        result = await register_devices(
            server.url, key, application, tokens, concurrency=concurrency, on_progress=progress
        )
        await restarting
        return result

    return asyncio.run(main()), exit_codes
