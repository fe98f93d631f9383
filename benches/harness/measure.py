"""Measurement and accounting.

Child side: the timed window (wall time, CPU of all threads), peak RSS, latency percentiles
and the check that every notification got exactly one result with the expected outcomes.
Parent side: every measurement in a fresh process, with the servers' CPU and the load other
processes put on the machine meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .common import CHILD_TIMEOUT, DELIVERED, ENTRY_POINT
from .servers import CLIENT_CORE, Server, pin_prefix


class Meter:
    """Wall time and CPU (user+sys, all threads) of the timed window, and the CPU by thread
    name (``python`` is the interpreter's thread, ``pushwire-engine`` the engine's)."""

    def __enter__(self) -> Meter:
        self._threads = cpu_by_thread()
        self._ru = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_s = (ru.ru_utime - self._ru.ru_utime) + (ru.ru_stime - self._ru.ru_stime)
        after = cpu_by_thread()
        self.cpu_by_thread_s = {
            name: round(seconds - self._threads.get(name, 0.0), 3)
            for name, seconds in after.items()
            if seconds - self._threads.get(name, 0.0) > 0
        }


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user+sys) so far of this process's live threads, summed by thread name;
    empty where /proc is missing. A thread that ended in the window is not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return totals
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as comm:
                name = comm.read().strip()
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as stat:
                # Fields after the ")" that closes the name: utime and stime are 12th, 13th.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile_ms(sorted_seconds: Any, q: float) -> float | None:
    if not len(sorted_seconds):
        return None
    index = min(len(sorted_seconds) - 1, round(q * (len(sorted_seconds) - 1)))
    return float(sorted_seconds[index]) * 1000


def check_outcomes(
    n: int, outcomes: Mapping[str, int], seen: bytearray | None, expected: Mapping[str, int]
) -> list[str]:
    """Problems, if any: a notification without a result or with several, or outcome counts
    other than ``expected``."""
    errors = []
    if seen is not None:
        missing = seen.count(0)
        duplicated = n - missing - seen.count(1)
        if missing or duplicated:
            errors.append(f"{missing} without a result, {duplicated} with several")
    got = {k: v for k, v in outcomes.items() if v}
    if got != {k: v for k, v in expected.items() if v}:
        errors.append(f"expected {dict(expected)}, got {got}")
    return errors


def measurement(
    spec: dict[str, Any],
    meter: Meter,
    outcomes: Counter[str],
    seen: bytearray,
    latencies: Any,
    expected: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The child's report; ``ok`` only if every notification got exactly one result and the
    outcome counts are ``expected`` (default: the spec's, else all delivered)."""
    n = spec["n"]
    if expected is None:
        expected = spec.get("expected") or {DELIVERED: n}
    errors = check_outcomes(n, outcomes, seen, expected)
    ordered = sorted(latencies)
    return {
        "tool": spec["tool"],
        "scenario": spec["scenario"],
        "server": spec["server"],
        "n": n,
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "wall_s": meter.wall_s,
        "rate": n / meter.wall_s,
        "cpu_s": meter.cpu_s,
        "cpu_by_thread_s": meter.cpu_by_thread_s,
        "p50_ms": percentile_ms(ordered, 0.50),
        "p99_ms": percentile_ms(ordered, 0.99),
        "latency_samples": len(ordered),
        "outcomes": dict(outcomes),
        "loop": type(asyncio.get_running_loop()).__module__,
    }


def run_event_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# -- parent side ------------------------------------------------------------------------------


@dataclass
class Run:
    repeat: int
    tool: str
    scenario: str
    server: str
    n: int
    report: dict[str, Any] | None
    error: str | None
    #: CPU seconds of the server this run used, over the run.
    server_cpu_s: float | None
    #: CPU used by processes other than the measured one and the servers, per wall second
    #: (in cores).
    other_cores: float | None
    #: Connections the tool was allowed (each with the server's streams; httpx: 100).
    budget: int = 0
    #: Notifications the server answered outside the timed window (warm-up).
    warmup: int = 0
    #: Streams per connection the tool was allowed (httpx: at most 100 whatever this says).
    streams: int = 0

    @property
    def ok(self) -> bool:
        return self.report is not None and bool(self.report["ok"])

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario, self.server, self.tool)


@dataclass
class CpuSnapshot:
    """CPU seconds at one instant: each server's, finished children's, the whole machine's."""

    at: float
    servers: dict[str, float | None]
    children: float
    machine_busy: float | None

    @classmethod
    def take(cls, servers: list[Server]) -> CpuSnapshot:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            import psutil
        except ImportError:
            busy = None
        else:
            machine = psutil.cpu_times()
            busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return cls(
            time.monotonic(),
            {s.name: s.cpu_seconds() for s in servers},
            ru.ru_utime + ru.ru_stime,
            busy,
        )


def cpu_between(
    before: CpuSnapshot, after: CpuSnapshot, server: str
) -> tuple[float | None, float | None]:
    """(CPU seconds of ``server``, other processes' load in cores) between two snapshots.

    The machine is shared: a busy neighbour explains an outlier, so it is measured. Other
    load leaves out the measured process (a waited-for child) and every server of the run.
    """

    def spent(name: str) -> float | None:
        b, a = before.servers.get(name), after.servers.get(name)
        return None if a is None or b is None else a - b

    server_cpu = spent(server)
    if server_cpu is None or before.machine_busy is None or after.machine_busy is None:
        return server_cpu, None
    servers = sum(spent(name) or 0.0 for name in after.servers)
    child = after.children - before.children
    other = (after.machine_busy - before.machine_busy) - servers - child
    return server_cpu, max(0.0, other) / max(after.at - before.at, 1e-9)


def accounted(
    spec: dict[str, Any],
    servers: list[Server],
    repeat: int,
    measure: Callable[[], tuple[dict[str, Any] | None, str | None]],
) -> Run:
    """Runs ``measure`` (a child process, waited for) between two CPU snapshots."""
    before = CpuSnapshot.take(servers)
    report, error = measure()
    server_cpu, other = cpu_between(before, CpuSnapshot.take(servers), spec["server"])
    warmup = report.get("warmup", 0) if report else 0
    return Run(
        repeat,
        spec["tool"],
        spec["scenario"],
        spec["server"],
        spec["n"],
        report,
        error,
        server_cpu,
        other,
        spec["connections"],
        warmup,
        spec["streams"],
    )


def python_child(spec: dict[str, Any], pin: bool) -> tuple[dict[str, Any] | None, str | None]:
    """One measurement in a fresh interpreter (``throughput.py --child``), bounded by
    CHILD_TIMEOUT; it prints its report as one JSON line."""
    argv = [
        *pin_prefix(CLIENT_CORE, pin),
        sys.executable,
        str(ENTRY_POINT),
        "--child",
        json.dumps(spec),
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {CHILD_TIMEOUT:.0f} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        report = json.loads(lines[-1])
        return report, report["error"]
    tail = done.stderr.strip().splitlines()[-2:]
    return None, f"exit code {done.returncode}: " + " | ".join(tail)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())
