"""Throughput benchmark: pushwire vs aioapns against the same mock APNs server.

    python benches/throughput.py --quick        # smoke run, a few seconds
    python benches/throughput.py                # full run, writes benches/RESULTS.md

The parent process starts the mock (the Rust ``pushwire-mock`` binary, built on demand, or
``pushwire.testing.MockAPNs`` in a separate Python process as a fallback), then runs every
measurement in a fresh child process (``--child``) so peak RSS and CPU time are per tool and
per scenario and never include the server. Children print one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import array
import asyncio
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

FULL_SIZES = {"n": 100_000, "aioapns_n": 20_000, "stream_n": 1_000_000, "repeats": 3}
QUICK_SIZES = {"n": 5_000, "aioapns_n": 2_000, "stream_n": 50_000, "repeats": 1}


def device_token(i: int) -> str:
    return f"{i:064x}"


# ---------------------------------------------------------------------------------------------
# Child side: one measurement, one JSON line on stdout.
# ---------------------------------------------------------------------------------------------


class Meter:
    """Wall time and CPU (user+sys, all threads) of the timed window; peak RSS at its end."""

    def __enter__(self) -> Meter:
        self._ru = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
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
    expected: str,
) -> dict[str, Any]:
    """The child's report; ``ok`` only if every notification got exactly one ``expected``."""
    n = spec["n"]
    missing = seen.count(0)
    duplicated = n - missing - seen.count(1)
    errors = []
    if missing or duplicated:
        errors.append(f"{missing} without a result, {duplicated} with several")
    if outcomes.get(expected, 0) != n:
        errors.append(f"expected {n} {expected}, got {dict(outcomes)}")
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


def pushwire_client(spec: dict[str, Any]) -> Any:
    import pushwire

    creds = pushwire.TokenCredentials(spec["key_file"], key_id=KEY_ID, team_id=TEAM_ID)
    return pushwire.APNsClient(
        creds,
        base_url=spec["url"],
        ca_file=spec["ca_file"],
        request_timeout=10,
        max_connections=MAX_CONNECTIONS,
        max_in_flight=PUSHWIRE_MAX_IN_FLIGHT,
    )


async def pushwire_warm_up(client: Any, message: Any) -> None:
    tokens = [device_token(WARMUP_TOKEN_BASE + i) for i in range(WARMUP)]
    results = await client.send_to_tokens(message, tokens)
    bad = [r for r in results if not r.delivered]
    if bad:
        raise RuntimeError(f"warm-up failed: {len(bad)} not delivered, first: {bad[0]!r}")


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
    seen = bytearray(spec["n"])
    for position, r in enumerate(results):
        # Results come back in input order: a shifted index would mean a lost or doubled one.
        if position < len(seen) and r.index == position:
            seen[position] += 1
    outcomes = Counter(r.outcome.value for r in results)
    latencies = [r.latency for r in results]
    report = measurement(spec, meter, outcomes, seen, latencies, "delivered")
    if len(results) != spec["n"]:
        report["ok"] = False
        report["error"] = f"{len(results)} results for {spec['n']} notifications"
    return report | {"maxrss_mb": rss, "connections": connections}


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
    report = measurement(spec, meter, outcomes, seen, latencies, "delivered")
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
    report = measurement(spec, meter, outcomes, seen, latencies, "delivered")
    return report | {"maxrss_mb": rss, "connections": connections}


CHILD_RUNNERS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("pushwire", "bulk"): pushwire_bulk,
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


def ensure_mock_binary(notes: list[str]) -> bool:
    if MOCK_BIN.exists():
        return True
    print("building pushwire-mock (cargo build --release -p pushwire-mock)...", file=sys.stderr)
    try:
        build = subprocess.run(
            ["cargo", "build", "--release", "-p", "pushwire-mock"],
            cwd=REPO,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        notes.append(f"could not build pushwire-mock ({e}); used the Python MockAPNs instead")
        return False
    if build.returncode != 0 or not MOCK_BIN.exists():
        notes.append("cargo build of pushwire-mock failed; used the Python MockAPNs instead")
        return False
    return True


PYTHON_MOCK = """
import sys
import pushwire
from pushwire.testing import MockAPNs
creds = pushwire.TokenCredentials(sys.argv[1], key_id=sys.argv[2], team_id=sys.argv[3])
with MockAPNs(credentials=creds) as server:
    print(f"url={server.url}", flush=True)
    print(f"ca_file={server.ca_file}", flush=True)
    sys.stdin.read()
"""


def read_announcement(proc: subprocess.Popen[bytes]) -> dict[str, str]:
    """The mock's ``url=`` and ``ca_file=`` lines, within MOCK_START_TIMEOUT.

    Raw ``os.read`` on the pipe: a buffered readline could swallow the second line where
    ``select`` no longer sees it.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + MOCK_START_TIMEOUT
    text = ""
    found: dict[str, str] = {}
    while "url" not in found or "ca_file" not in found:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise RuntimeError("the mock did not announce url= and ca_file= in time")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"the mock exited early (code {proc.wait()})")
        text += chunk.decode()
        for line in text.splitlines()[: text.count("\n")]:
            key, _, value = line.strip().partition("=")
            found[key] = value
    return found


def start_mock(key_file: Path, pub_file: Path, use_binary: bool) -> Mock:
    if use_binary:
        argv = [str(MOCK_BIN), "--jwt-key", f"{KEY_ID}:{TEAM_ID}:{pub_file}"]
        kind = "Rust binary target/release/pushwire-mock"
    else:
        argv = [sys.executable, "-c", PYTHON_MOCK, str(key_file), KEY_ID, TEAM_ID]
        kind = "pushwire.testing.MockAPNs in a separate Python process"
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        found = read_announcement(proc)
    except BaseException:
        stop_mock(proc)
        raise
    return Mock(proc, found["url"], found["ca_file"], kind)


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
    """(tool, scenario, n) for one repeat; tools alternate so drift hits both alike."""
    plan = []
    if "bulk" in config.scenarios:
        plan += [("pushwire", "bulk", config.n), ("aioapns", "bulk", config.aioapns_n)]
    if "stream-1m" in config.scenarios:
        plan.append(("pushwire", "stream-1m", config.stream_n))
    return plan


def run_all(config: Config, mock: Mock, key_file: Path) -> list[Run]:
    runs = []
    for repeat in range(1, config.repeats + 1):
        for tool, scenario, n in planned_runs(config):
            spec = {
                "tool": tool,
                "scenario": scenario,
                "n": n,
                "url": mock.url,
                "ca_file": mock.ca_file,
                "key_file": str(key_file),
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
    return (
        f"{r['rate']:,.0f}/s, {r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, "
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
        lines.append(
            f"| {row.tool} | {row.n:,} | {fmt(row.median('rate'))} | "
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


def render_tables(rows: list[Row], repeats: int) -> str:
    blocks = []
    for scenario in dict.fromkeys(r.scenario for r in rows):
        scenario_rows = [r for r in rows if r.scenario == scenario]
        blocks += [f"### {scenario}", scenario_table(scenario_rows).rstrip()]
        line = ratio_line(scenario_rows)
        if line:
            blocks.append(line)
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
        f"uvloop {package_version('uvloop')}",
        f"- Event loop in the measuring processes: {event_loops(runs)}",
        f"- Mock server: {mock.kind}, {mock.url}, separate process, verifying ES256 JWTs",
    ]


METHOD_NOTES = f"""\
## Method

- Every measurement runs in a fresh child process (`--child`); the mock APNs server is another
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
- A row is marked failed unless every notification got exactly one result and all were
  delivered (pushwire: N results in input order; aioapns: N successful responses).
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
    parser.add_argument("--stream-n", type=int, help="stream-1m notifications (1,000,000)")
    parser.add_argument("--repeats", type=int, help="repeats per measurement (3)")
    parser.add_argument(
        "--scenario", choices=["bulk", "stream-1m", "all"], default="all", help="(all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke sizes: 5,000/2,000/50,000, 1 repeat"
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

    scenarios = ["bulk", "stream-1m"] if args.scenario == "all" else [args.scenario]
    return Config(
        scenarios=scenarios,
        n=pick("n"),
        aioapns_n=pick("aioapns_n"),
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
        mock = start_mock(key_file, pub_file, use_binary)
        try:
            runs = run_all(config, mock, key_file)
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
