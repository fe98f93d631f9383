"""h2load (nghttp2's C load generator) as the protocol upper bound, run by the parent as a
process of its own: ``h2load -n N -c C -m M -t 1 -d BODY -i URIS -H ... --log-file LOG``.

h2load does not verify the server's certificate (nghttp2 1.52 sets no verification on its
TLS context and has no option for it), so no CA is passed: it connects to 127.0.0.1 and
accepts any certificate. Its figures cover the whole process: connecting and the TLS
handshakes are inside its duration and its CPU time (there is no untimed warm-up).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..common import (
    CHILD_TIMEOUT,
    DELIVERED,
    H2LOAD_URIS,
    PAYLOAD_BYTES,
    TOKENS,
    TOPIC,
    expected_outcome,
    status_only,
)
from ..measure import check_outcomes, percentile_ms
from ..servers import CLIENT_CORE, Server, pin_prefix

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us|µs), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_REQUEST_TIME = re.compile(
    r"time for request:\s+([\d.]+)(s|ms|us|µs)\s+([\d.]+)(s|ms|us|µs)\s+([\d.]+)(s|ms|us|µs)"
)


def find_h2load() -> str | None:
    return shutil.which("h2load")


def version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip().removeprefix("h2load ") or "unknown"


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_output(text: str) -> dict[str, Any]:
    """The summary h2load prints: duration, its req/s, request counts, status classes and
    the min/max/mean time for request. Raises ValueError when there is no summary."""
    finished = _FINISHED.search(text)
    requests = _REQUESTS.search(text)
    if finished is None or requests is None:
        raise ValueError("no h2load summary in the output")
    total, started, done, succeeded, failed, errored, timeout = map(int, requests.groups())
    parsed: dict[str, Any] = {
        "duration_s": _seconds(finished.group(1), finished.group(2)),
        "rps": float(finished.group(3)),
        "total": total,
        "started": started,
        "done": done,
        "succeeded": succeeded,
        "failed": failed,
        "errored": errored,
        "timeout": timeout,
    }
    status = _STATUS.search(text)
    if status:
        parsed["status_classes"] = dict(
            zip(("2xx", "3xx", "4xx", "5xx"), map(int, status.groups()), strict=True)
        )
    request_time = _REQUEST_TIME.search(text)
    if request_time:
        g = request_time.groups()
        parsed["request_min_ms"] = _seconds(g[0], g[1]) * 1000
        parsed["request_max_ms"] = _seconds(g[2], g[3]) * 1000
        parsed["request_mean_ms"] = _seconds(g[4], g[5]) * 1000
    return parsed


def parse_log(lines: Any) -> tuple[Counter[str], list[float]]:
    """``--log-file`` rows (start µs, status, µs until the end of the response) -> outcome
    counts (``delivered`` for 200, the status otherwise, ``failed`` for -1) and latencies
    in seconds."""
    outcomes: Counter[str] = Counter()
    latencies = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        status = int(fields[1])
        key = DELIVERED if status == 200 else ("failed" if status < 0 else str(status))
        outcomes[key] += 1
        latencies.append(int(fields[2]) / 1e6)
    return outcomes, latencies


def summary_outcomes(summary: dict[str, Any]) -> Counter[str]:
    """Outcome counts from h2load's summary alone: 2xx as delivered, other classes by class,
    requests done without a status as ``failed``."""
    outcomes: Counter[str] = Counter()
    classes = summary.get("status_classes", {})
    outcomes[DELIVERED] = classes.get("2xx", 0)
    for name in ("3xx", "4xx", "5xx"):
        if classes.get(name):
            outcomes[name] = classes[name]
    unanswered = summary["done"] - sum(classes.values())
    if unanswered:
        outcomes["failed"] = unanswered
    return outcomes


def per_client(n: int, clients: int) -> list[int]:
    """How h2load spreads -n over -c clients: evenly, the first ones take the remainder."""
    return [n // clients + (1 if k < n % clients else 0) for k in range(clients)]


def expected(scenario: str, n: int, clients: int, uris: int = H2LOAD_URIS) -> dict[str, int]:
    """Status counts when every client cycles through the same ``uris`` tokens from the
    first (exact when n is a multiple of clients x uris, as the harness arranges)."""
    token_of = TOKENS[scenario]
    kinds = [expected_outcome(token_of(i)) for i in range(uris)]
    counts: Counter[str] = Counter()
    for share in per_client(n, clients):
        full, rest = divmod(share, uris)
        for i, kind in enumerate(kinds):
            counts[kind] += full + (1 if i < rest else 0)
    return status_only(dict(counts))


def argv(
    binary: str, spec: dict[str, Any], uris_file: Path, body_file: Path, log_file: Path
) -> list[str]:
    args = [
        binary,
        "-n",
        str(spec["n"]),
        "-c",
        str(spec["connections"]),
        "-m",
        str(spec["streams"]),
        "-t",
        "1",
        "-d",
        str(body_file),
        "-i",
        str(uris_file),
        f"--log-file={log_file}",
        "-H",
        f"apns-topic: {TOPIC}",
        "-H",
        "apns-push-type: alert",
    ]
    if spec["scenario"] == "wire-bytes":
        # pushwire's headers exactly: its :authority (the relay, by name), no content-type.
        # h2load still adds user-agent and content-length, which pushwire does not send.
        args += ["-H", f":authority: {urlsplit(spec['url']).netloc}"]
    else:
        args += ["-H", "content-type: application/json"]
    if spec.get("jwt"):
        args += ["-H", f"authorization: bearer {spec['jwt']}"]
    if spec.get("rate"):
        args += [f"--rps={max(1, round(spec['rate'] / spec['connections']))}"]
    return args


def wait_with_rusage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any, bool]:
    """(exit code, the child's own rusage, timed out) — os.wait4 gives this process's peak
    RSS and CPU, where RUSAGE_CHILDREN would mix in every earlier child."""
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, rusage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, rusage, timed_out.is_set()


def run(
    spec: dict[str, Any], server: Server, directory: Path, pin: bool
) -> tuple[dict[str, Any] | None, str | None]:
    binary = find_h2load()
    if binary is None:
        return None, "h2load is not installed (apt-get install -y nghttp2-client)"
    directory.mkdir(parents=True, exist_ok=True)
    token_of = TOKENS[spec["scenario"]]
    uris_file = directory / f"uris-{spec['scenario']}.txt"
    uris_file.write_text(
        "".join(f"{server.h2load_url}/3/device/{token_of(i)}\n" for i in range(H2LOAD_URIS))
    )
    body_file = directory / "body.json"
    body_file.write_bytes(PAYLOAD_BYTES)
    log_file = directory / "h2load-log.tsv"
    out_file = directory / "h2load-out.txt"
    # At --count sizes a line per request would be gigabytes and CPU h2load spends on its
    # log, not on sending: stream-10m counts outcomes from h2load's own summary instead.
    logged = spec["scenario"] != "stream-10m"
    args = argv(binary, spec, uris_file, body_file, log_file)
    if not logged:
        args.remove(f"--log-file={log_file}")
    with out_file.open("wb") as out:
        proc = subprocess.Popen(
            pin_prefix(CLIENT_CORE, pin) + args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        code, rusage, timed_out = wait_with_rusage(proc, CHILD_TIMEOUT)
    text = out_file.read_text(errors="replace")
    if timed_out:
        return None, f"timed out after {CHILD_TIMEOUT:.0f} s"
    try:
        summary = parse_output(text)
    except ValueError:
        tail = " | ".join(text.strip().splitlines()[-2:])
        return None, f"exit code {code}: {tail or 'no output'}"
    if logged:
        with log_file.open() as log:
            outcomes, latencies = parse_log(log)
        log_file.unlink()
    else:
        outcomes, latencies = summary_outcomes(summary), []
    n = spec["n"]
    errors = check_outcomes(n, outcomes, None, expected(spec["scenario"], n, spec["connections"]))
    if summary["done"] != n or sum(outcomes.values()) != n:
        errors.append(f"{summary['done']} done and {sum(outcomes.values())} logged for {n}")
    if summary["errored"] or summary["timeout"]:
        errors.append(f"{summary['errored']} errored, {summary['timeout']} timed out")
    if code != 0:
        errors.append(f"exit code {code}")
    latencies.sort()
    report = {
        "tool": spec["tool"],
        "scenario": spec["scenario"],
        "server": spec["server"],
        "n": n,
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "wall_s": summary["duration_s"],
        "rate": n / summary["duration_s"],
        "h2load_rps": summary["rps"],
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
        "latency_samples": len(latencies),
        "outcomes": dict(outcomes),
        "loop": "h2load (C, one thread)",
        "maxrss_mb": rusage.ru_maxrss / 1024,
        "connections": spec["connections"],
    }
    return report, report["error"]
