"""Throughput benchmark: pushwire (APNs and FCM) and aioapns against the same mock server.

    python benches/throughput.py --quick        # smoke run, about ten seconds
    python benches/throughput.py                # full run, writes benches/RESULTS.md
    python benches/throughput.py --scenario bulk --scenario fcm-bulk

Scenarios: ``bulk`` (pushwire and aioapns, APNs), ``fcm-bulk`` (pushwire FCM v1 with OAuth2),
``hang`` (pushwire APNs, 1% of tokens never answered, ``request_timeout=2``) and
``stream-1m`` (pushwire APNs ``stream()``, bounded memory); ``all`` runs them all.

The parent process starts the mock (the Rust ``pushwire-mock`` binary, built with cargo, or
the same server through ``pushwire._core.MockServer`` in a separate Python process as a
fallback) once for every scenario, then runs every measurement in a fresh child process
(``--child``) so peak RSS and CPU time are per tool and per scenario and never include the
server. Children print one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import select
import shlex
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
MOCK_BIN = REPO / "target" / "release" / "pushwire-mock"
DEFAULT_OUT = REPO / "benches" / "RESULTS.md"

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.bench"
PAYLOAD = {"aps": {"alert": {"title": "Bench", "body": "Hello from the benchmark"}}}
# FCM: a service account with a fresh RSA key; the mock checks its RS256 OAuth2 assertions.
FCM_PROJECT = "bench-project"
FCM_EMAIL = f"bench@{FCM_PROJECT}.iam.gserviceaccount.com"
FCM_NOTIFICATION = {"title": "Bench", "body": "Hello from the benchmark"}
FCM_DATA = {"k": "v"}
# hang: every HANG_EVERY-th token starts with HANG_PREFIX, which the mock never answers.
HANG_PREFIX = "dead"
HANG_EVERY = 100
HANG_REQUEST_TIMEOUT = 2.0

CHILD_TIMEOUT = 600.0
MOCK_START_TIMEOUT = 30.0
BUILD_TIMEOUT = 1800.0
MAX_CONNECTIONS = 4
PUSHWIRE_MAX_IN_FLIGHT = 10_000
AIOAPNS_CONCURRENCY = 1000
# Warm-up opens connections and mints the JWT outside the timed window; its tokens are distinct.
WARMUP = 1000
WARMUP_TOKEN_BASE = 0xF << 252
# Stream latencies are sampled so percentile maths never costs more memory than the stream.
STREAM_LATENCY_SAMPLES = 100_000
RSS_GOAL_MB = 200
# Other processes' average load (cores) above which the report warns that rates are depressed.
BUSY_MACHINE_CORES = 0.25

SCENARIOS = ["bulk", "fcm-bulk", "hang", "stream-1m"]
FULL_SIZES = {
    "n": 100_000,
    "aioapns_n": 20_000,
    "fcm_n": 100_000,
    "hang_n": 100_000,
    "stream_n": 1_000_000,
    "repeats": 3,
}
QUICK_SIZES = {
    "n": 5_000,
    "aioapns_n": 2_000,
    "fcm_n": 5_000,
    "hang_n": 5_000,
    "stream_n": 50_000,
    "repeats": 1,
}


def device_token(i: int) -> str:
    return f"{i:064x}"


def hangs(i: int) -> bool:
    return i % HANG_EVERY == 0


def hang_scenario_token(i: int) -> str:
    """1 token in HANG_EVERY hangs; the others are the bulk tokens (they start with 0s)."""
    return f"{HANG_PREFIX}{i:060x}" if hangs(i) else device_token(i)


def fcm_token(i: int, kind: str = "tok") -> str:
    """A registration-token-shaped string (163 characters), distinct per ``i`` and ``kind``."""
    return f"{kind}{i:09d}:APA91b" + "x" * 140


# ---------------------------------------------------------------------------------------------
# Child side: one measurement, one JSON line on stdout.
# ---------------------------------------------------------------------------------------------


class Meter:
    """Wall time and CPU (user+sys, all threads) of the timed window; peak RSS at its end."""

    def __enter__(self) -> Meter:
        self._ru = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_s = (ru.ru_utime - self._ru.ru_utime) + (ru.ru_stime - self._ru.ru_stime)


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile_ms(sorted_seconds: list[float], q: float) -> float | None:
    if not sorted_seconds:
        return None
    index = min(len(sorted_seconds) - 1, round(q * (len(sorted_seconds) - 1)))
    return sorted_seconds[index] * 1000


def measurement(
    spec: dict[str, Any],
    meter: Meter,
    outcomes: Counter[str],
    seen: bytearray,
    latencies: Any,
    expected: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The child's report; ``ok`` only if every notification got exactly one result and the
    outcome counts are ``expected`` (default: all delivered)."""
    n = spec["n"]
    expected = {"delivered": n} if expected is None else expected
    missing = seen.count(0)
    duplicated = n - missing - seen.count(1)
    errors = []
    if missing or duplicated:
        errors.append(f"{missing} without a result, {duplicated} with several")
    if {k: v for k, v in outcomes.items() if v} != {k: v for k, v in expected.items() if v}:
        errors.append(f"expected {dict(expected)}, got {dict(outcomes)}")
    ordered = sorted(latencies)
    return {
        "tool": spec["tool"],
        "scenario": spec["scenario"],
        "n": n,
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "wall_s": meter.wall_s,
        "rate": n / meter.wall_s,
        "cpu_s": meter.cpu_s,
        "p50_ms": percentile_ms(ordered, 0.50),
        "p99_ms": percentile_ms(ordered, 0.99),
        "latency_samples": len(ordered),
        "outcomes": dict(outcomes),
        "loop": type(asyncio.get_running_loop()).__module__,
    }


def pushwire_client(spec: dict[str, Any], request_timeout: float = 10) -> Any:
    import pushwire

    creds = pushwire.TokenCredentials(spec["key_file"], key_id=KEY_ID, team_id=TEAM_ID)
    return pushwire.APNsClient(
        creds,
        base_url=spec["url"],
        ca_file=spec["ca_file"],
        request_timeout=request_timeout,
        max_connections=MAX_CONNECTIONS,
        max_in_flight=PUSHWIRE_MAX_IN_FLIGHT,
    )


def fcm_client(spec: dict[str, Any]) -> Any:
    import pushwire

    service_account = pushwire.ServiceAccountCredentials(
        {
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key": Path(spec["sa_key_file"]).read_text(),
            "client_email": FCM_EMAIL,
        }
    )
    return pushwire.FCMClient(
        service_account,
        base_url=spec["url"],
        token_uri=spec["token_uri"],
        ca_file=spec["ca_file"],
        request_timeout=10,
        max_connections=MAX_CONNECTIONS,
        max_in_flight=PUSHWIRE_MAX_IN_FLIGHT,
    )


async def pushwire_warm_up(client: Any, message: Any, tokens: list[str] | None = None) -> None:
    if tokens is None:
        tokens = [device_token(WARMUP_TOKEN_BASE + i) for i in range(WARMUP)]
    results = await client.send_to_tokens(message, tokens)
    bad = [r for r in results if not r.delivered]
    if bad:
        raise RuntimeError(f"warm-up failed: {len(bad)} not delivered, first: {bad[0]!r}")


def positions_seen(results: list[Any], n: int) -> bytearray:
    """Results come back in input order: a shifted index would mean a lost or doubled one."""
    seen = bytearray(n)
    for position, r in enumerate(results):
        if position < n and r.index == position:
            seen[position] += 1
    return seen


def list_report(
    spec: dict[str, Any],
    meter: Meter,
    results: list[Any],
    expected: Mapping[str, int] | None = None,
    latencies: list[float] | None = None,
) -> dict[str, Any]:
    n = spec["n"]
    outcomes = Counter(r.outcome.value for r in results)
    if latencies is None:
        latencies = [r.latency for r in results]
    report = measurement(spec, meter, outcomes, positions_seen(results, n), latencies, expected)
    if len(results) != n:
        report["ok"] = False
        report["error"] = f"{len(results)} results for {n} notifications"
    return report


async def pushwire_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    import pushwire

    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    tokens = [device_token(i) for i in range(spec["n"])]
    async with pushwire_client(spec) as client:
        await pushwire_warm_up(client, message)
        with Meter() as meter:
            results = await client.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        connections = client.stats()["connections_opened"]
    report = list_report(spec, meter, results)
    return report | {"maxrss_mb": rss, "connections": connections}


async def pushwire_fcm_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    """FCM v1 through the OAuth2 flow; the access token is granted during the warm-up."""
    import pushwire

    message = pushwire.FCMMessage(
        notification=pushwire.FCMNotification(**FCM_NOTIFICATION), data=FCM_DATA
    )
    tokens = [fcm_token(i) for i in range(spec["n"])]
    async with fcm_client(spec) as client:
        await pushwire_warm_up(client, message, [fcm_token(i, "warm") for i in range(WARMUP)])
        with Meter() as meter:
            results = await client.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        connections = client.stats()["connections_opened"]
        grants = client.token_refreshes
    report = list_report(spec, meter, results)
    errors = [report["error"]] if report["error"] else []
    name_prefix = f"projects/{FCM_PROJECT}/messages/"
    unnamed = sum(
        1 for r in results if r.delivered and not (r.message_id or "").startswith(name_prefix)
    )
    if unnamed:
        errors.append(f"{unnamed} delivered without a message name {name_prefix}...")
    if grants != 1:
        errors.append(f"{grants} OAuth2 access tokens obtained, expected 1")
    report |= {"ok": report["ok"] and not errors, "error": "; ".join(errors) or None}
    return report | {"maxrss_mb": rss, "connections": connections, "oauth_grants": grants}


class AnswerClock:
    """When the last answer of a batch reached the event loop.

    ``send_to_tokens`` hands back every result at once, after the last timeout, so the time
    the answered notifications were done is read where outcome batches arrive: pushwire's
    (private) ``Dispatcher.deliver``, wrapped only inside the timed window of this child.
    """

    def __init__(self) -> None:
        self.answered = 0
        self.last_answer_at: float | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[AnswerClock]:
        from pushwire import _dispatch

        original = _dispatch.Dispatcher.deliver
        clock = self

        def deliver(dispatcher: Any, batch: list[tuple[Any, ...]]) -> None:
            # Engine outcome tuples: (id, token, outcome, ...).
            answered = sum(1 for raw in batch if raw[2] == "delivered")
            if answered:
                clock.answered += answered
                clock.last_answer_at = time.perf_counter()
            original(dispatcher, batch)

        _dispatch.Dispatcher.deliver = deliver  # type: ignore[method-assign]
        try:
            yield self
        finally:
            _dispatch.Dispatcher.deliver = original  # type: ignore[method-assign]


async def pushwire_hang(spec: dict[str, Any]) -> dict[str, Any]:
    """1 token in HANG_EVERY never answered: those, and only those, must time out."""
    import pushwire

    n = spec["n"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    tokens = [hang_scenario_token(i) for i in range(n)]
    hung = sum(1 for i in range(n) if hangs(i))
    clock = AnswerClock()
    async with pushwire_client(spec, request_timeout=HANG_REQUEST_TIMEOUT) as client:
        await pushwire_warm_up(client, message)
        before = client.stats()
        with clock.watching(), Meter() as meter:
            results = await client.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        after = client.stats()
    answered_latencies = [r.latency for r in results if r.delivered]
    timeout_latencies = [r.latency for r in results if r.outcome.value == "timeout"]
    expected = {"delivered": n - hung, "timeout": hung}
    report = list_report(spec, meter, results, expected, answered_latencies)
    errors = [report["error"]] if report["error"] else []
    wrong = [
        r.index
        for r in results
        if (r.outcome.value == "timeout") != hangs(r.index)
        or (hangs(r.index) and not r.token.startswith(HANG_PREFIX))
    ]
    if wrong:
        errors.append(f"{len(wrong)} results where timeout != hung token, first index {wrong[0]}")
    answered_s = None
    if clock.last_answer_at is not None and clock.answered == n - hung:
        answered_s = clock.last_answer_at - meter.t0
    else:
        errors.append(f"the answer clock saw {clock.answered} answers, expected {n - hung}")
    engine = {
        key: after[key] - before[key] for key in ("timeouts", "dead_by_timeouts", "late_answers")
    }
    if engine["timeouts"] != hung:
        errors.append(f"the engine counted {engine['timeouts']} timeouts for {hung} hung tokens")
    report |= {"ok": report["ok"] and not errors, "error": "; ".join(errors) or None}
    return report | {
        "maxrss_mb": rss,
        "connections": after["connections_opened"],
        "hung": hung,
        "answered": n - hung,
        "answered_s": answered_s,
        "answered_rate": None if not answered_s else (n - hung) / answered_s,
        "tail_s": None if answered_s is None else meter.wall_s - answered_s,
        "timeout_latency_min_s": min(timeout_latencies, default=None),
        "timeout_latency_max_s": max(timeout_latencies, default=None),
        "engine": engine,
    }


async def pushwire_stream(spec: dict[str, Any]) -> dict[str, Any]:
    import pushwire

    n = spec["n"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    # A generator: the full list of notifications never exists.
    notifications = (pushwire.Notification(device_token(i), message) for i in range(n))
    stride = max(1, n // STREAM_LATENCY_SAMPLES)
    outcomes: Counter[str] = Counter()
    seen = bytearray(n)
    latencies = array.array("d")
    async with pushwire_client(spec) as client:
        await pushwire_warm_up(client, message)
        with Meter() as meter:
            async for r in client.stream(notifications):
                outcomes[r.outcome.value] += 1
                if 0 <= r.index < n:
                    seen[r.index] += 1
                if r.index % stride == 0:
                    latencies.append(r.latency)
        rss = peak_rss_mb()
        connections = client.stats()["connections_opened"]
    report = measurement(spec, meter, outcomes, seen, latencies)
    return report | {"maxrss_mb": rss, "connections": connections}


def zeros(n: int) -> array.array[float]:
    return array.array("d", bytes(8 * n))


def point_aioapns_at(url: str) -> None:
    """aioapns has no base_url: its protocol classes carry the host and port as class
    attributes, so the child patches them (the installed package is left untouched)."""
    from aioapns import connection

    parts = urlsplit(url)
    for cls in (connection.APNsProductionClientProtocol, connection.APNsDevelopmentClientProtocol):
        cls.APNS_SERVER = parts.hostname
        cls.APNS_PORT = parts.port


async def aioapns_send_all(
    client: Any, tokens: list[str], seen: bytearray, latencies: array.array[float]
) -> Counter[str]:
    """Send with AIOAPNS_CONCURRENCY workers pulling from one iterator (a bounded gather)."""
    from aioapns import NotificationRequest, PushType

    outcomes: Counter[str] = Counter()
    work = iter(enumerate(tokens))

    async def worker() -> None:
        for i, token in work:
            request = NotificationRequest(
                device_token=token, message=PAYLOAD, push_type=PushType.ALERT
            )
            started = time.perf_counter()
            try:
                response = await client.send_notification(request)
            except Exception as e:  # a failure is a result here, not a crash
                outcomes[f"exception {type(e).__name__}"] += 1
            else:
                latencies[i] = time.perf_counter() - started
                ok = response.is_successful
                outcomes["delivered" if ok else f"{response.status} {response.description}"] += 1
            seen[i] += 1

    await asyncio.gather(*(worker() for _ in range(min(AIOAPNS_CONCURRENCY, len(tokens)))))
    return outcomes


async def aioapns_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    from aioapns import APNs

    point_aioapns_at(spec["url"])
    # What aioapns builds by default (create_default_context), plus trust in the mock's CA.
    context = ssl.create_default_context(cafile=spec["ca_file"])
    client = APNs(
        key=Path(spec["key_file"]).read_text(),
        key_id=KEY_ID,
        team_id=TEAM_ID,
        topic=TOPIC,
        use_sandbox=False,
        max_connections=MAX_CONNECTIONS,
        max_connection_attempts=3,
        ssl_context=context,
    )
    n = spec["n"]
    try:
        warm = [device_token(WARMUP_TOKEN_BASE + i) for i in range(WARMUP)]
        warm_outcomes = await aioapns_send_all(client, warm, bytearray(WARMUP), zeros(WARMUP))
        if warm_outcomes.get("delivered", 0) != WARMUP:
            raise RuntimeError(f"warm-up failed: {dict(warm_outcomes)}")
        tokens = [device_token(i) for i in range(n)]
        seen = bytearray(n)
        latencies = zeros(n)
        with Meter() as meter:
            outcomes = await aioapns_send_all(client, tokens, seen, latencies)
        rss = peak_rss_mb()
        connections = len(client.pool.connections)
    finally:
        client.pool.close()
    if outcomes.get("delivered", 0) != n:
        latencies = array.array("d")  # latencies of failed sends are not measured
    report = measurement(spec, meter, outcomes, seen, latencies)
    return report | {"maxrss_mb": rss, "connections": connections}


CHILD_RUNNERS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("pushwire", "bulk"): pushwire_bulk,
    ("pushwire", "fcm-bulk"): pushwire_fcm_bulk,
    ("pushwire", "hang"): pushwire_hang,
    ("pushwire", "stream-1m"): pushwire_stream,
    ("aioapns", "bulk"): aioapns_bulk,
}


def run_event_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def child_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    runner = CHILD_RUNNERS[(spec["tool"], spec["scenario"])]
    report = run_event_loop(runner(spec))
    print(json.dumps(report), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent side: mock server, child processes, summary.
# ---------------------------------------------------------------------------------------------


@dataclass
class Mock:
    proc: subprocess.Popen[bytes]
    url: str
    ca_file: str
    token_uri: str
    kind: str


@dataclass
class Run:
    repeat: int
    tool: str
    scenario: str
    n: int
    report: dict[str, Any] | None
    error: str | None
    mock_cpu_s: float | None
    #: CPU used by processes other than the child and the mock, per wall second (in cores).
    other_cores: float | None

    @property
    def ok(self) -> bool:
        return self.report is not None and bool(self.report["ok"])


@dataclass
class Config:
    scenarios: list[str]
    n: int
    aioapns_n: int
    fcm_n: int
    hang_n: int
    stream_n: int
    repeats: int
    out: Path
    command: str
    load_before: str = ""
    notes: list[str] = field(default_factory=list)


def write_keypair(directory: Path) -> tuple[Path, Path]:
    """A fresh P-256 key: .p8 (PKCS#8 PEM) for the clients, SPKI PEM for the mock."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"AuthKey_{KEY_ID}.p8"
    public = directory / "bench-pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def write_service_account_key(directory: Path) -> tuple[Path, Path]:
    """A fresh RSA-2048 service-account key: PKCS#8 PEM for the client, SPKI PEM for the mock."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "service-account.pem"
    public = directory / "service-account-pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def ensure_mock_binary(notes: list[str]) -> bool:
    """Build the mock (a no-op when it is up to date: a stale binary may lack FCM)."""
    print("cargo build --release -p pushwire-mock ...", file=sys.stderr)
    try:
        build = subprocess.run(
            ["cargo", "build", "--release", "-p", "pushwire-mock"],
            cwd=REPO,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        failure = f"could not build pushwire-mock ({e})"
    else:
        if build.returncode == 0 and MOCK_BIN.exists():
            return True
        failure = "cargo build of pushwire-mock failed"
    if MOCK_BIN.exists():
        notes.append(f"{failure}; used the existing (possibly stale) {MOCK_BIN.name} binary")
        return True
    notes.append(f"{failure}; used the Python-hosted mock server instead")
    return False


# The same Rust server, hosted in a Python process (pushwire's extension module).
PYTHON_MOCK = """
import json, sys
from pushwire import _core
options = json.loads(sys.argv[1])
server = _core.MockServer(
    jwt_keys=[tuple(k) for k in options["jwt_keys"]],
    fcm_service_accounts=[tuple(a) for a in options["fcm_service_accounts"]],
    rules=options["rules"],
)
print(f"url={server.url}", flush=True)
print(f"ca_file={server.ca_file}", flush=True)
print(f"token_uri={server.token_uri}", flush=True)
sys.stdin.read()
server.stop()
"""
ANNOUNCED = ("url", "ca_file", "token_uri")


def read_announcement(proc: subprocess.Popen[bytes]) -> dict[str, str]:
    """The mock's ``url=``, ``ca_file=`` and ``token_uri=`` lines, within MOCK_START_TIMEOUT.

    Raw ``os.read`` on the pipe: a buffered readline could swallow the second line where
    ``select`` no longer sees it.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + MOCK_START_TIMEOUT
    text = ""
    found: dict[str, str] = {}
    while not all(key in found for key in ANNOUNCED):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise RuntimeError(f"the mock did not announce {'=, '.join(ANNOUNCED)}= in time")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"the mock exited early (code {proc.wait()})")
        text += chunk.decode()
        for line in text.splitlines()[: text.count("\n")]:
            key, _, value = line.strip().partition("=")
            found[key] = value
    return found


def start_mock(pub_file: Path, sa_pub_file: Path, use_binary: bool) -> Mock:
    """One server for every scenario: APNs (ES256 JWTs), FCM v1 and its OAuth2 endpoint
    (RS256 assertions of the bench service account), and the hang rule (no other token
    starts with HANG_PREFIX)."""
    rule = f"{HANG_PREFIX}=hang"
    if use_binary:
        argv = [
            str(MOCK_BIN),
            "--jwt-key",
            f"{KEY_ID}:{TEAM_ID}:{pub_file}",
            "--fcm-service-account",
            f"{FCM_EMAIL}:{sa_pub_file}",
            "--rule",
            rule,
        ]
        kind = "Rust binary target/release/pushwire-mock"
    else:
        options = {
            "jwt_keys": [[KEY_ID, TEAM_ID, pub_file.read_text()]],
            "fcm_service_accounts": [[FCM_EMAIL, sa_pub_file.read_text()]],
            "rules": [rule],
        }
        argv = [sys.executable, "-c", PYTHON_MOCK, json.dumps(options)]
        kind = "pushwire._core.MockServer in a separate Python process"
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        found = read_announcement(proc)
    except BaseException:
        stop_mock(proc)
        raise
    return Mock(proc, found["url"], found["ca_file"], found["token_uri"], kind)


def stop_mock(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class CpuSnapshot:
    """CPU seconds at one instant: the mock's, finished children's, and the whole machine's."""

    at: float
    mock: float | None
    children: float
    machine_busy: float | None

    @classmethod
    def take(cls, mock_pid: int) -> CpuSnapshot:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            import psutil
        except ImportError:
            mock_cpu, busy = None, None
        else:
            times = psutil.Process(mock_pid).cpu_times()
            mock_cpu = times.user + times.system
            machine = psutil.cpu_times()
            busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return cls(time.monotonic(), mock_cpu, ru.ru_utime + ru.ru_stime, busy)


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float | None, float | None]:
    """(mock CPU seconds, other processes' load in cores) between two snapshots.

    The machine is shared: a busy neighbour explains an outlier, so it is measured.
    """
    if before.mock is None or after.mock is None:
        return None, None
    mock = after.mock - before.mock
    if before.machine_busy is None or after.machine_busy is None:
        return mock, None
    child = after.children - before.children
    other = (after.machine_busy - before.machine_busy) - mock - child
    return mock, max(0.0, other) / max(after.at - before.at, 1e-9)


def run_child(spec: dict[str, Any], mock: Mock, repeat: int) -> Run:
    """One measurement in a fresh interpreter, bounded by CHILD_TIMEOUT."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    before = CpuSnapshot.take(mock.proc.pid)
    report, error = None, None
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        error = f"timed out after {CHILD_TIMEOUT:.0f} s"
    else:
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            report = json.loads(lines[-1])
            error = report["error"]
        else:
            tail = done.stderr.strip().splitlines()[-2:]
            error = f"exit code {done.returncode}: " + " | ".join(tail)
    mock_cpu, other = cpu_between(before, CpuSnapshot.take(mock.proc.pid))
    return Run(repeat, spec["tool"], spec["scenario"], spec["n"], report, error, mock_cpu, other)


def planned_runs(config: Config) -> list[tuple[str, str, int]]:
    """(tool, scenario, n) for one repeat; tools alternate so drift hits both alike, and the
    pushwire bulk run sits between the two runs compared with it (fcm-bulk, hang), so a
    neighbour's burst of load is less likely to fall on one side of a ratio only."""
    plan = []
    if "fcm-bulk" in config.scenarios:
        plan.append(("pushwire", "fcm-bulk", config.fcm_n))
    if "bulk" in config.scenarios:
        plan.append(("pushwire", "bulk", config.n))
    if "hang" in config.scenarios:
        plan.append(("pushwire", "hang", config.hang_n))
    if "bulk" in config.scenarios:
        plan.append(("aioapns", "bulk", config.aioapns_n))
    if "stream-1m" in config.scenarios:
        plan.append(("pushwire", "stream-1m", config.stream_n))
    return plan


def run_all(config: Config, mock: Mock, key_file: Path, sa_key_file: Path) -> list[Run]:
    runs = []
    for repeat in range(1, config.repeats + 1):
        for tool, scenario, n in planned_runs(config):
            spec = {
                "tool": tool,
                "scenario": scenario,
                "n": n,
                "url": mock.url,
                "ca_file": mock.ca_file,
                "token_uri": mock.token_uri,
                "key_file": str(key_file),
                "sa_key_file": str(sa_key_file),
            }
            print(f"[{repeat}/{config.repeats}] {scenario} {tool} n={n:,} ...", file=sys.stderr)
            run = run_child(spec, mock, repeat)
            runs.append(run)
            print("    " + describe_run(run), file=sys.stderr)
            if mock.proc.poll() is not None:
                raise RuntimeError(f"the mock died (exit code {mock.proc.returncode})")
    return runs


def describe_run(run: Run) -> str:
    load = f"mock cpu {fmt(run.mock_cpu_s, '.2f')} s, other load {fmt(run.other_cores, '.2f')}"
    if run.report is None:
        return f"FAILED: {run.error}; {load}"
    r = run.report
    status = "ok" if r["ok"] else f"FAILED: {r['error']}"
    hang = f"answered {fmt(r.get('answered_rate'))}/s, " if "answered_rate" in r else ""
    return (
        f"{r['rate']:,.0f}/s, {hang}{r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, "
        f"rss {r['maxrss_mb']:.0f} MB, {load} cores, {status}"
    )


def runs_table(runs: list[Run]) -> str:
    """Every repeat, raw, so outliers can be told apart from a busy machine."""
    lines = [
        "| repeat | scenario | tool | N | notifications/s | wall s | CPU s | peak RSS MB | "
        "connections | mock CPU s | other load (cores) | status |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        r = run.report or {}
        status = "ok" if run.ok else f"FAILED: {run.error}"
        if run.ok and run.scenario == "hang":
            retired = r["engine"]["dead_by_timeouts"]
            status += (
                f" ({r['hung']:,} timeouts; {r['answered']:,} answered in "
                f"{fmt(r['answered_s'], '.2f')} s = {fmt(r['answered_rate'])}/s"
                + (f"; {retired} connections retired as dead by timeouts" if retired else "")
                + ")"
            )
        lines.append(
            f"| {run.repeat} | {run.scenario} | {run.tool} | {run.n:,} | {fmt(r.get('rate'))} | "
            f"{fmt(r.get('wall_s'), '.2f')} | {fmt(r.get('cpu_s'), '.2f')} | "
            f"{fmt(r.get('maxrss_mb'), '.1f')} | {r.get('connections', '—')} | "
            f"{fmt(run.mock_cpu_s, '.2f')} | "
            f"{fmt(run.other_cores, '.2f')} | {status} |"
        )
    return "\n".join(lines) + "\n"


# -- summary ----------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    tool: str
    n: int
    runs: list[Run]

    def values(self, key: str) -> list[float]:
        return [r.report[key] for r in self.runs if r.ok and r.report[key] is not None]

    def median(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.median(values) if values else None

    @property
    def failed(self) -> list[Run]:
        return [r for r in self.runs if not r.ok]

    def cpu_per_million(self) -> float | None:
        cpu = self.median("cpu_s")
        return None if cpu is None else cpu / self.n * 1e6

    def mock_cpu_per_million(self) -> float | None:
        # The mock also served the warm-up: count it in the denominator.
        values = [r.mock_cpu_s for r in self.runs if r.ok and r.mock_cpu_s is not None]
        if not values:
            return None
        return statistics.median(values) / (self.n + WARMUP) * 1e6

    def peak_rss(self) -> float | None:
        values = self.values("maxrss_mb")
        return max(values) if values else None

    def best(self, key: str) -> float | None:
        """The largest value over repeats (for rates: the least disturbed repeat)."""
        return max(self.values(key), default=None)

    def other_load(self) -> float | None:
        loads = [r.other_cores for r in self.runs if r.ok and r.other_cores is not None]
        return statistics.median(loads) if loads else None


def build_rows(runs: list[Run]) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    for run in runs:
        key = (run.scenario, run.tool)
        rows.setdefault(key, Row(run.scenario, run.tool, run.n, []))
        rows[key].runs.append(run)
    return list(rows.values())


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def times(value: float | None, spec: str) -> str:
    return "—" if value is None else f"{value:{spec}}x"


def row_status(row: Row) -> str:
    if row.failed:
        first = row.failed[0]
        return f"**FAILED** {len(row.failed)}/{len(row.runs)}: {first.error}"
    status = "ok"
    if row.scenario == "hang":
        hung = {r.report["hung"] for r in row.runs if r.report is not None}
        status += f"; exactly the {', '.join(f'{h:,}' for h in hung)} hung tokens timed out"
    if row.scenario == "fcm-bulk":
        status += "; 1 OAuth2 grant per child, in the warm-up"
    if row.scenario == "stream-1m":
        rss = row.peak_rss()
        met = rss is not None and rss < RSS_GOAL_MB
        status += f"; RSS goal < {RSS_GOAL_MB} MB {'met' if met else '**NOT met**'}"
    return status


def scenario_table(rows: list[Row]) -> str:
    header = (
        "| tool | N | notifications/s (median) | min | max | p50 ms | p99 ms | "
        "peak RSS MB | CPU s / 1M | mock CPU s / 1M | vs aioapns (rate) | status |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    baseline = next((r.median("rate") for r in rows if r.tool == "aioapns"), None)
    lines = []
    for row in rows:
        rates = row.values("rate")
        versus = times(ratio(row.median("rate"), baseline), ".1f")
        tool = f"{row.tool} (FCM v1)" if row.scenario == "fcm-bulk" else row.tool
        lines.append(
            f"| {tool} | {row.n:,} | {fmt(row.median('rate'))} | "
            f"{fmt(min(rates) if rates else None)} | {fmt(max(rates) if rates else None)} | "
            f"{fmt(row.median('p50_ms'), '.2f')} | {fmt(row.median('p99_ms'), '.2f')} | "
            f"{fmt(row.peak_rss(), '.1f')} | {fmt(row.cpu_per_million(), '.1f')} | "
            f"{fmt(row.mock_cpu_per_million(), '.1f')} | {versus} | {row_status(row)} |"
        )
    return header + "\n".join(lines) + "\n"


def ratio_line(rows: list[Row]) -> str | None:
    by_tool = {r.tool: r for r in rows}
    if "pushwire" not in by_tool or "aioapns" not in by_tool:
        return None
    pw, aio = by_tool["pushwire"], by_tool["aioapns"]
    parts = [
        f"throughput {times(ratio(pw.median('rate'), aio.median('rate')), '.1f')}",
        f"CPU per notification {times(ratio(pw.cpu_per_million(), aio.cpu_per_million()), '.2f')}",
        f"peak RSS {times(ratio(pw.peak_rss(), aio.peak_rss()), '.2f')} (at each tool's N)",
    ]
    note = ""
    if pw.n != aio.n:
        note = f" N differs (pushwire {pw.n:,}, aioapns {aio.n:,}): rates are per second."
    return "pushwire / aioapns: " + ", ".join(parts) + "." + note


def contention_note(runs: list[Run]) -> str | None:
    """A warning, from the measured load, when neighbours competed for the cores."""
    loads = [r.other_cores for r in runs if r.other_cores is not None]
    if not loads or statistics.mean(loads) < BUSY_MACHINE_CORES:
        return None
    return (
        f"The machine was not idle: other processes used {min(loads):.2f}-{max(loads):.2f} "
        f"cores (mean {statistics.mean(loads):.2f} of {os.cpu_count()}) while the children ran "
        "(see Every run). Rates and latencies are depressed and noisy; CPU s / 1M (CPU actually "
        "consumed per notification) is the steadier comparison."
    )


def load_caveat(rows: dict[str, Row]) -> str:
    """A warning when neighbours loaded the machine while the compared rows ran."""
    loads = {name: row.other_load() for name, row in rows.items()}
    if all(load is None or load < BUSY_MACHINE_CORES for load in loads.values()):
        return ""
    shown = ", ".join(f"{name} {fmt(load, '.2f')}" for name, load in loads.items())
    return (
        f" Other processes' load while these ran (median cores): {shown}; a rate ratio moves "
        "with it, the best-repeat ratio and CPU per notification are steadier."
    )


def fcm_line(fcm: Row, bulk: Row | None) -> str:
    """FCM beside APNs: the pushwire rows of the same run."""
    if bulk is None or bulk.median("rate") is None:
        return (
            "FCM / APNs: — (no successful pushwire `bulk` row in this run; add `--scenario bulk`)."
        )
    parts = [
        f"throughput {times(ratio(fcm.median('rate'), bulk.median('rate')), '.2f')} "
        f"({fmt(fcm.median('rate'))}/s vs {fmt(bulk.median('rate'))}/s; best repeats "
        f"{times(ratio(fcm.best('rate'), bulk.best('rate')), '.2f')}: "
        f"{fmt(fcm.best('rate'))}/s vs {fmt(bulk.best('rate'))}/s)",
        f"CPU per message {times(ratio(fcm.cpu_per_million(), bulk.cpu_per_million()), '.2f')}",
        f"mock CPU per message "
        f"{times(ratio(fcm.mock_cpu_per_million(), bulk.mock_cpu_per_million()), '.2f')}",
        f"peak RSS {times(ratio(fcm.peak_rss(), bulk.peak_rss()), '.2f')}",
    ]
    note = ""
    if fcm.n != bulk.n:
        note = f" N differs (FCM {fcm.n:,}, APNs {bulk.n:,}): rates are per second."
    note += load_caveat({"APNs bulk": bulk, "FCM": fcm})
    return "FCM / APNs (pushwire, `fcm-bulk` / `bulk`, same run): " + ", ".join(parts) + "." + note


def hang_table(row: Row) -> str:
    header = (
        "| tool | N | hung (timeout) | completion s (median) | min | max | "
        "answered/s (median) | min | max | answered p50 ms | answered p99 ms | "
        "timeout latency s | peak RSS MB | CPU s / 1M | mock CPU s / 1M | status |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    walls, rates = row.values("wall_s"), row.values("answered_rate")
    hung = max(row.values("hung"), default=None)
    fired = row.values("timeout_latency_min_s") + row.values("timeout_latency_max_s")
    fired_range = f"{min(fired):.2f}-{max(fired):.2f}" if fired else "—"
    return header + (
        f"| {row.tool} | {row.n:,} | {fmt(hung, ',')} | {fmt(row.median('wall_s'), '.2f')} | "
        f"{fmt(min(walls, default=None), '.2f')} | {fmt(max(walls, default=None), '.2f')} | "
        f"{fmt(row.median('answered_rate'))} | {fmt(min(rates, default=None))} | "
        f"{fmt(max(rates, default=None))} | {fmt(row.median('p50_ms'), '.2f')} | "
        f"{fmt(row.median('p99_ms'), '.2f')} | {fired_range} | {fmt(row.peak_rss(), '.1f')} | "
        f"{fmt(row.cpu_per_million(), '.1f')} | {fmt(row.mock_cpu_per_million(), '.1f')} | "
        f"{row_status(row)} |\n"
    )


def hang_line(hang: Row, bulk: Row | None) -> str:
    """The hang run against the all-delivered pushwire bulk run of the same run."""
    tail = hang.median("tail_s")
    lines = [
        f"Completion = the whole `send_to_tokens` call; answered/s = the {HANG_EVERY - 1}% "
        "answered notifications over the time until the last of their answers reached the event "
        f"loop. After the last answer the call waited {fmt(tail, '.2f')} s (median) for the hung "
        f"streams (`request_timeout={HANG_REQUEST_TIMEOUT:g}`)."
    ]
    if bulk is None or bulk.median("rate") is None:
        lines.append("hang / bulk: — (no pushwire `bulk` row in this run; add `--scenario bulk`).")
        return "\n\n".join(lines)
    bulk_rate, bulk_best = bulk.median("rate"), bulk.best("rate")
    assert bulk_rate is not None and bulk_best is not None
    # The bulk run's time for the hang run's N, at its median and at its best rate.
    bulk_time, bulk_best_time = hang.n / bulk_rate, hang.n / bulk_best
    best_wall = min(hang.values("wall_s"), default=None)
    lines.append(
        "hang / bulk (pushwire APNs, same run): answered throughput "
        f"{times(ratio(hang.median('answered_rate'), bulk_rate), '.2f')} "
        f"({fmt(hang.median('answered_rate'))}/s vs {fmt(bulk_rate)}/s all delivered; best "
        f"repeats {times(ratio(hang.best('answered_rate'), bulk_best), '.2f')}: "
        f"{fmt(hang.best('answered_rate'))}/s vs {fmt(bulk_best)}/s), completion time "
        f"{times(ratio(hang.median('wall_s'), bulk_time), '.2f')} "
        f"({fmt(hang.median('wall_s'), '.2f')} s vs {bulk_time:.2f} s for {hang.n:,} at the bulk "
        f"rate; best repeats {times(ratio(best_wall, bulk_best_time), '.2f')}: "
        f"{fmt(best_wall, '.2f')} s vs {bulk_best_time:.2f} s), CPU per notification "
        f"{times(ratio(hang.cpu_per_million(), bulk.cpu_per_million()), '.2f')}."
        + load_caveat({"bulk": bulk, "hang": hang})
    )
    return "\n\n".join(lines)


def render_tables(rows: list[Row], repeats: int) -> str:
    by_key = {(r.scenario, r.tool): r for r in rows}
    bulk = by_key.get(("bulk", "pushwire"))
    blocks = []
    for scenario in [s for s in SCENARIOS if any(r.scenario == s for r in rows)]:
        scenario_rows = [r for r in rows if r.scenario == scenario]
        blocks.append(f"### {scenario}")
        if scenario == "hang":
            for row in scenario_rows:
                blocks += [hang_table(row).rstrip(), hang_line(row, bulk)]
            continue
        blocks.append(scenario_table(scenario_rows).rstrip())
        line = ratio_line(scenario_rows)
        if line:
            blocks.append(line)
        if scenario == "fcm-bulk":
            blocks += [fcm_line(row, bulk) for row in scenario_rows]
    blocks.append(
        f"Medians of {repeats} repeat(s); min/max are over repeats; peak RSS is the largest "
        "ru_maxrss over repeats."
    )
    return "\n\n".join(blocks) + "\n"


# -- environment and report -------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def event_loops(runs: list[Run]) -> str:
    loops = sorted({r.report["loop"] for r in runs if r.report is not None})
    return ", ".join(loops) or "unknown"


def environment_lines(mock: Mock, runs: list[Run]) -> list[str]:
    import pushwire

    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- Machine: nproc={os.cpu_count()}, CPU: {cpu_model()}, {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- pushwire {pushwire.__version__}, aioapns {package_version('aioapns')}, "
        f"uvloop {package_version('uvloop')}, cryptography {package_version('cryptography')}",
        f"- Event loop in the measuring processes: {event_loops(runs)}",
        f"- Mock server: {mock.kind}, {mock.url}, separate process, one for every scenario: "
        "APNs verifying ES256 JWTs, FCM v1 with its OAuth2 token endpoint verifying RS256 "
        f"assertions, rule `{HANG_PREFIX}=hang`",
    ]


METHOD_NOTES = f"""\
## Method

- Every measurement runs in a fresh child process (`--child`); the mock server is another
  process, so its CPU and memory are not counted (its CPU per million is shown separately, from
  psutil). Client and mock share the same cores.
- Both clients use token auth (ES256 JWT, key id {KEY_ID}, team {TEAM_ID}) and trust the mock's
  CA through a CA file; TLS verification stays on. Topic `{TOPIC}`, push type alert, payload
  `{json.dumps(PAYLOAD, separators=(",", ":"))}`, distinct tokens `f"{{i:064x}}"`.
- A warm-up of {WARMUP:,} notifications (other tokens) opens connections and mints the JWT
  first; it is not timed. The timed window is the send call(s) only; CPU seconds are user+sys
  of the child (all threads) over that window; peak RSS is the child's `ru_maxrss`, read right
  after the window.
- pushwire: `APNsClient(max_connections={MAX_CONNECTIONS},
  max_in_flight={PUSHWIRE_MAX_IN_FLIGHT:_})`; bulk = one `send_to_tokens` call;
  stream = `client.stream()` over a generator, outcomes counted, latencies 1-in-k sampled
  (at most {STREAM_LATENCY_SAMPLES:,}). Latency = engine submission to outcome, so it includes
  queueing behind up to {PUSHWIRE_MAX_IN_FLIGHT:,} in-flight notifications.
- aioapns: `APNs(key=..., max_connections={MAX_CONNECTIONS})` with {AIOAPNS_CONCURRENCY:,}
  concurrent workers (`asyncio.gather`) calling `send_notification`; latency = around each
  `send_notification` call. aioapns has no base URL option: the child sets the class attributes
  `APNS_SERVER`/`APNS_PORT` of `aioapns.connection.APNsProductionClientProtocol` (and the
  development one) to the mock's host and port, and passes
  `ssl_context=ssl.create_default_context(cafile=<mock CA>)` (aioapns' own default context
  plus the CA). Site-packages are not modified. Like aioapns itself, that context offers no
  ALPN; the mock still speaks HTTP/2 to it.
- fcm-bulk: `FCMClient(service_account, max_connections={MAX_CONNECTIONS},
  max_in_flight={PUSHWIRE_MAX_IN_FLIGHT:_})`, one `send_to_tokens` call of
  `FCMMessage(notification=FCMNotification(title=..., body=...), data={json.dumps(FCM_DATA)})`
  to distinct 163-character tokens, project `{FCM_PROJECT}`. Real OAuth2: a fresh RSA-2048
  service-account key (the mock gets its SPKI public key through `--fcm-service-account`);
  the RS256 JWT-bearer assertion is exchanged at the mock's `/token` for an access token
  during the warm-up (exactly one grant per child is checked), then every message carries
  `authorization: Bearer ...` and the mock checks it. FCM / APNs compares it with the pushwire
  `bulk` row of the same run.
- hang: pushwire `APNsClient(request_timeout={HANG_REQUEST_TIMEOUT:g})`, one `send_to_tokens`
  call where token i starts with `{HANG_PREFIX}` (the mock never answers it: `--rule
  {HANG_PREFIX}=hang`) when i % {HANG_EVERY} == 0, so 1% are spread evenly through the batch.
  Completion = the call's wall time. `request_timeout` runs from the stream's opening, so a
  timeout's latency (from submission) also holds its wait in the engine queue
  (`max_in_flight` {PUSHWIRE_MAX_IN_FLIGHT:,} > {MAX_CONNECTIONS} connections x 1,000 streams).
  Answered throughput = answered notifications / time
  until the last of their outcomes reached the event loop, read by wrapping pushwire's private
  `Dispatcher.deliver` in the child during the timed window (a count of `delivered` outcome
  tuples per batch; `send_to_tokens` itself only returns after the last timeout). Latencies
  are those of the answered notifications. The row fails unless exactly the hung tokens are
  `timeout` and all others `delivered`. hang / bulk compares it with the pushwire `bulk` row
  of the same run.
- A row is marked failed unless every notification got exactly one result and all were
  delivered (pushwire: N results in input order; aioapns: N successful responses; hang: see
  above).
"""


def render_report(config: Config, mock: Mock, runs: list[Run], tables: str) -> str:
    parts = [
        "# pushwire throughput benchmark\n",
        "\n".join(environment_lines(mock, runs)),
        f"- Load average (1/5/15 min) at start {config.load_before}, at end {loadavg()}",
        f"\nCommand:\n\n```\n{config.command}\n```\n",
        "## Results\n",
        tables,
        "## Every run\n",
        "Other load = CPU used by processes other than the measured child and the mock "
        "during the child's lifetime, in cores (this machine has "
        f"{os.cpu_count()}).\n",
        runs_table(runs),
    ]
    if config.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in config.notes) + "\n")
    parts.append(METHOD_NOTES)
    return "\n".join(parts)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="pushwire bulk notifications (100,000)")
    parser.add_argument("--aioapns-n", type=int, help="aioapns bulk notifications (20,000)")
    parser.add_argument("--fcm-n", type=int, help="fcm-bulk messages (100,000)")
    parser.add_argument("--hang-n", type=int, help="hang notifications, 1%% hung (100,000)")
    parser.add_argument("--stream-n", type=int, help="stream-1m notifications (1,000,000)")
    parser.add_argument("--repeats", type=int, help="repeats per measurement (3)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        help="repeatable (all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke sizes: 5,000 (bulk, fcm-bulk, hang)/2,000 (aioapns)/50,000 (stream), 1 repeat",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="(benches/RESULTS.md)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace, argv: list[str]) -> Config:
    sizes = QUICK_SIZES if args.quick else FULL_SIZES

    def pick(name: str) -> int:
        value = getattr(args, name)
        chosen = sizes[name] if value is None else value
        if chosen < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
        return chosen

    chosen = args.scenario or ["all"]
    scenarios = SCENARIOS if "all" in chosen else [s for s in SCENARIOS if s in chosen]
    return Config(
        scenarios=scenarios,
        n=pick("n"),
        aioapns_n=pick("aioapns_n"),
        fcm_n=pick("fcm_n"),
        hang_n=pick("hang_n"),
        stream_n=pick("stream_n"),
        repeats=pick("repeats"),
        out=args.out,
        command=shlex.join(["python", *argv]),
        load_before=loadavg(),
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    if args.child:
        child_main(args.child)
        return 0
    config = make_config(args, argv)
    if package_version("aioapns") == "not installed" and "bulk" in config.scenarios:
        config.notes.append("aioapns is not installed (pip install aioapns): its rows failed")
    use_binary = ensure_mock_binary(config.notes)
    with tempfile.TemporaryDirectory(prefix="pushwire-bench-") as tmp:
        key_file, pub_file = write_keypair(Path(tmp))
        sa_key_file, sa_pub_file = write_service_account_key(Path(tmp))
        mock = start_mock(pub_file, sa_pub_file, use_binary)
        try:
            runs = run_all(config, mock, key_file, sa_key_file)
        finally:
            stop_mock(mock.proc)
    note = contention_note(runs)
    if note:
        config.notes.append(note)
        print(f"note: {note}", file=sys.stderr)
    tables = render_tables(build_rows(runs), config.repeats)
    print()
    print(tables)
    config.out.write_text(render_report(config, mock, runs, tables))
    print(f"wrote {config.out}", file=sys.stderr)
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
