"""`pushwire serve` benchmark: device registration through the API (requests/s, p50/p99 at
200 concurrent clients) on SQLite and PostgreSQL, and a send to a segment through the API
(time to the job's completion) against `pushwire send --to-segment` on the same store.

    python benches/bench_server.py                                  # every part, SQLite
    python benches/bench_server.py --backend all --devices 100000   # + PostgreSQL
    python benches/bench_server.py --segment-endpoints 100000 --results benches/RESULTS.md
    # registration only, both stores, into RESULTS.md (~1 minute; PostgreSQL from
    # PUSHWIRE_TEST_POSTGRES_DSN, e.g. `export "$(scripts/postgres.sh start /tmp/pg)"`):
    python benches/bench_server.py --backend all --skip restart --skip segment \
        --results benches/RESULTS.md

Registration: the server is one `pushwire serve` process (uvicorn, uvloop, no access log);
the load comes from benches/loadgen.py in a process of its own: 200 keep-alive HTTP/1.1
connections on raw asyncio protocols, every request rendered beforehand (its CPU per request
is measured and reported: a few percent of the server's; httpx clients cost more than the
server and set the pace themselves). Each registration is a new token: one INSERT and one
event per request. After 2,000 registrations to warm up, two runs: closed loop (``--devices``
requests, each connection sending its next when answered: saturated throughput, and the
latency a client waiting its turn sees) and open loop (``--rate`` requests/s due at even
intervals for ``--open-seconds``, sent on the first idle connection; latency from when each
was due, so a stall is not hidden). ``--server-arg=--no-fast-registrations`` measures the
server without its fast registration route.

Restart: ``--restart-devices`` (100,000) registrations from 200 clients while the server is
stopped with SIGTERM and started again halfway; every device must be stored exactly once
(tests/test_server_processes.py runs the same with fewer devices).

Segment send: ``--segment-endpoints`` enabled endpoints are imported, the mock APNs server
runs in a process of its own; API: ``POST /v1/sends`` with ``segment=all`` and
``mode=job`` until ``GET /v1/jobs/{id}`` says complete (an in-process job); CLI: the
wall time of ``pushwire send --to-segment all`` (process start included). The two run in
alternating pairs. The section is merged into RESULTS.md between
``<!-- begin:server -->`` and ``<!-- end:server -->``.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benches"))

from conftest import make_p8  # noqa: E402
from loadgen import LoadStats, render_posts, run_load_in_loop  # noqa: E402
from mock_child import KEY_ID, TEAM_ID, mock_in_child  # noqa: E402
from pushwire.store import Registration, Store  # noqa: E402
from results_md import merge_section  # noqa: E402
from support.server import (  # noqa: E402
    apns_token,
    create_key,
    register_across_restart,
    running_server,
)

#: Concurrent client connections.
CONNECTIONS = 200


@contextmanager
def database(backend: str, directory: str):
    if backend == "sqlite":
        yield f"sqlite:///{directory}/bench.db"
        return
    from support.store import postgres_schema

    with postgres_schema() as url:
        yield url


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_process(url: str, requests: list[bytes], rate: float | None, out: Any) -> None:
    try:
        out.send(run_load_in_loop(url, requests, connections=CONNECTIONS, rate=rate))
    except BaseException as e:
        out.send(RuntimeError(f"load generator: {type(e).__name__}: {e}"))
        raise


def _load(url: str, requests: list[bytes], rate: float | None = None) -> LoadStats:
    """The load generator in a process of its own (its CPU is then its own)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    proc = context.Process(target=_load_process, args=(url, requests, rate, child))
    proc.start()
    while not parent.poll(1.0):
        if not proc.is_alive():
            raise RuntimeError(f"the load generator exited with {proc.exitcode}")
    stats: LoadStats | RuntimeError = parent.recv()
    proc.join()
    if isinstance(stats, RuntimeError):
        raise stats
    return stats


def _registrations(url: str, key: str, first: int, count: int) -> list[bytes]:
    bodies = [
        f'{{"application":"ios","token":"{apns_token(i)}"}}'.encode()
        for i in range(first, first + count)
    ]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return render_posts(url, "/v1/devices", headers, bodies)


def bench_registration(
    backend: str, devices: int, rate: float, open_seconds: float, extra: list[str]
) -> dict[str, Any]:
    """Closed loop (saturated), then open loop at ``rate`` for ``open_seconds``; a warm-up
    of 2,000 registrations first. Each request a new token."""
    open_devices = int(rate * open_seconds)
    warmup = 2_000
    with tempfile.TemporaryDirectory() as directory, database(backend, directory) as db:
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="com.example.app")
        key = create_key(db, "bench", "app", "ios", rate_limit=10_000_000)
        with running_server(db, *extra) as server:
            assert server.process is not None
            pid = server.process.pid
            _load(server.url, _registrations(server.url, key, 0, warmup))
            requests = _registrations(server.url, key, warmup, devices)
            cpu_before = process_cpu_seconds(pid)
            closed = _load(server.url, requests)
            server_cpu = process_cpu_seconds(pid) - cpu_before
            requests = _registrations(server.url, key, warmup + devices, open_devices)
            opened = _load(server.url, requests, rate=rate)
        with Store.open(db) as store:
            stored = sum(1 for _ in store.endpoints(page_size=10_000))
    total = warmup + devices + open_devices
    assert stored == total, (stored, total)
    return {
        "backend": backend,
        "devices": devices,
        "rate": closed.rate,
        "p50": closed.percentile(50) * 1000,
        "p99": closed.percentile(99) * 1000,
        "cpu_us": server_cpu / devices * 1e6,
        "client_cpu_us": closed.client_cpu / devices * 1e6,
        "offered": rate,
        "open_devices": open_devices,
        "open_rate": opened.rate,
        "open_p50": opened.percentile(50) * 1000,
        "open_p99": opened.percentile(99) * 1000,
        "open_p999": opened.percentile(99.9) * 1000,
        "open_backlog": opened.max_backlog,
    }


def bench_restart(devices: int) -> dict[str, Any]:
    """``devices`` registrations from 200 clients, the server stopped with SIGTERM and started
    again halfway (clients retry): every device stored once."""
    with tempfile.TemporaryDirectory() as directory:
        db = f"sqlite:///{directory}/restart.db"
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="com.example.app")
        key = create_key(db, "bench", "app", "ios", rate_limit=10_000_000)
        tokens = [apns_token(i) for i in range(devices)]
        with running_server(db) as server:
            result, exit_codes = register_across_restart(server, key, "ios", tokens)
        with Store.open(db) as store:
            stored = sum(1 for _ in store.endpoints(page_size=10_000))
            created = len(store.events(kinds=["created"], limit=2 * devices))
    assert stored == created == devices, (stored, created, devices)
    return {
        "devices": devices,
        "seconds": result.seconds,
        "retries": result.retries,
        "stored": stored,
        "exit": exit_codes,
    }


def bench_segment(endpoints: int, pairs: int) -> dict[str, Any]:
    p8 = make_p8()
    api_times, cli_times = [], []
    with tempfile.TemporaryDirectory() as directory:
        db = f"sqlite:///{directory}/segment.db"
        key_file = Path(directory) / f"AuthKey_{KEY_ID}.p8"
        key_file.write_bytes(p8)
        ref = f"p8:{key_file}?key_id={KEY_ID}&team_id={TEAM_ID}"
        with Store.open(db) as store:
            store.put_application(
                "ios", provider="apns", topic="com.example.app", credentials_ref=ref
            )
            for start in range(0, endpoints, 10_000):
                store.register_many(
                    Registration("ios", apns_token(i))
                    for i in range(start, min(endpoints, start + 10_000))
                )
        key = create_key(db, "bench", "sender", rate_limit=10_000_000)
        with mock_in_child(p8) as (mock_url, ca_file):
            extra = ["--apns-url", mock_url, "--ca-file", ca_file]
            with running_server(db, *extra) as server:
                import httpx

                headers = {"Authorization": f"Bearer {key}"}
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
                    for _ in range(pairs):
                        t = time.perf_counter()
                        job = c.post(
                            "/v1/sends",
                            json={"message": {"title": "bench"}, "segment": "all", "mode": "job"},
                        ).json()
                        while True:
                            status = c.get(f"/v1/jobs/{job['job_id']}").json()
                            if status["state"] in ("complete", "failed"):
                                break
                            time.sleep(0.02)
                        api_times.append(time.perf_counter() - t)
                        assert status["state"] == "complete", status
                        assert status["by_outcome"] == {"delivered": endpoints}, status
                        t = time.perf_counter()
                        env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
                        cli = subprocess.run(
                            [
                                sys.executable,
                                "-c",
                                "from pushwire.cli import main; main()",
                                "send",
                                "--to-segment",
                                "all",
                                "--db",
                                db,
                                "--title",
                                "bench",
                                "--apns-url",
                                mock_url,
                                "--ca-file",
                                ca_file,
                            ],
                            env=env,
                            capture_output=True,
                            text=True,
                            check=False,
                        )
                        cli_times.append(time.perf_counter() - t)
                        assert cli.returncode == 0, cli.stderr[-2000:]
    return {"endpoints": endpoints, "api": api_times, "cli": cli_times}


def report(
    registrations: list[dict[str, Any]],
    segment: dict[str, Any] | None,
    restart: dict[str, Any] | None = None,
) -> str:
    load = os.getloadavg()
    lines = [
        "## `pushwire serve`",
        "",
        f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Load average {load[0]:.1f} on "
        f"{os.cpu_count()} cores when the run ended (above ~1, other work shared the "
        "cores: compare such figures with care).",
        "",
    ]
    if registrations:
        lines += [
            "Device registration through the API: one server process, 200 keep-alive "
            "connections from benches/loadgen.py (each request a new token: one INSERT and "
            "one event). Goal on SQLite: ≥ 3,000 req/s and p99 < 50 ms at 200 concurrent "
            "clients. Server CPU per request: the server process's user + system time over "
            "the closed-loop run divided by its requests (PostgreSQL's own processes not "
            "counted); client CPU likewise for the load generator.",
            "",
            "Closed loop (each connection sends its next request when answered: saturated):",
            "",
            "| store | requests | req/s | p50 ms | p99 ms | server CPU / req | client CPU / req |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in registrations:
            lines.append(
                f"| {r['backend']} | {r['devices']:,} | {r['rate']:,.0f} | "
                f"{r['p50']:.1f} | {r['p99']:.1f} | {r['cpu_us']:.0f} µs | "
                f"{r['client_cpu_us']:.0f} µs |"
            )
        lines += [
            "",
            "Open loop (requests due at a fixed rate over the 200 connections; latency from "
            "when each was due):",
            "",
            "| store | requests | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms "
            "| most waiting for a connection |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in registrations:
            lines.append(
                f"| {r['backend']} | {r['open_devices']:,} | {r['offered']:,.0f} | "
                f"{r['open_rate']:,.0f} | {r['open_p50']:.1f} | {r['open_p99']:.1f} | "
                f"{r['open_p999']:.1f} | {r['open_backlog']:,} |"
            )
        lines.append("")
    if restart:
        lines += [
            f"Registration across a restart: {restart['devices']:,} devices from 200 clients "
            "(SQLite), the server stopped with SIGTERM and started again halfway, clients "
            f"retrying: {restart['stored']:,} endpoints stored, each created once, "
            f"{restart['retries']:,} retried requests, {restart['seconds']:.0f} s in all.",
            "",
        ]
    if segment:
        api, cli = segment["api"], segment["cli"]
        ratios = [a / c for a, c in zip(api, cli, strict=True)]
        lines += [
            f"Send to a {segment['endpoints']:,}-endpoint segment (mock APNs in its own "
            "process), API job to completion vs `pushwire send --to-segment` on the same store, "
            "alternating pairs. Goal: within 1.1x.",
            "",
            "| pair | API job s | CLI s | API / CLI |",
            "|---:|---:|---:|---:|",
        ]
        for i, (a, c, r) in enumerate(zip(api, cli, ratios, strict=True), 1):
            lines.append(f"| {i} | {a:.2f} | {c:.2f} | {r:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="sqlite")
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument(
        "--rate", type=float, default=3000.0, help="open-loop offered registrations/s"
    )
    parser.add_argument("--open-seconds", type=float, default=10.0, help="open-loop duration")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra `pushwire serve` option (repeatable, e.g. --server-arg=--access-log)",
    )
    parser.add_argument("--segment-endpoints", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--restart-devices", type=int, default=100_000)
    parser.add_argument(
        "--skip", choices=["registration", "restart", "segment"], action="append", default=[]
    )
    parser.add_argument("--results", type=Path, help="merge the section into this RESULTS.md")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    registrations = []
    if "registration" not in args.skip:
        for backend in backends:
            registrations.append(
                bench_registration(
                    backend,
                    args.devices,
                    args.rate,
                    args.open_seconds,
                    ["--no-access-log", *args.server_arg],
                )
            )
            print(registrations[-1], file=sys.stderr)
    restart = None
    if "restart" not in args.skip:
        restart = bench_restart(args.restart_devices)
        print(restart, file=sys.stderr)
    segment = None
    if "segment" not in args.skip:
        segment = bench_segment(args.segment_endpoints, args.pairs)
        print(segment, file=sys.stderr)
    text = report(registrations, segment, restart)
    print(text)
    if args.results:
        merge_section(args.results, "server", text)


if __name__ == "__main__":
    main()
