"""`pushwire serve` benchmark: device registration through the API (requests/s, p50/p99 at
200 concurrent clients) on SQLite and PostgreSQL, and a send to a segment through the API
(time to the job's completion) against `pushwire send --to-segment` on the same store.

    python benches/bench_server.py                                  # every part, SQLite
    python benches/bench_server.py --backend all --devices 100000   # + PostgreSQL
    python benches/bench_server.py --segment-endpoints 100000 --results benches/RESULTS.md

Registration: the server is one `pushwire serve` process (uvicorn, uvloop); the 200
concurrent clients are asyncio + httpx connections spread over ``--client-processes``
processes (one Python process cannot drive 200 connections at the server's pace). Each
registration is a new token: one INSERT and one event per request.

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
import asyncio
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
from mock_child import KEY_ID, TEAM_ID, mock_in_child  # noqa: E402
from pushwire.store import Registration, Store  # noqa: E402
from results_md import merge_section  # noqa: E402
from support.server import (  # noqa: E402
    apns_token,
    create_key,
    register_across_restart,
    register_devices,
    running_server,
)


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


def _client_process(url: str, key: str, tokens: list[str], concurrency: int, out: Any) -> None:
    result = asyncio.run(register_devices(url, key, "ios", tokens, concurrency=concurrency))
    out.send((time.time() - result.seconds, time.time(), result.latencies, result.retries))


def bench_registration(backend: str, devices: int, processes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory, database(backend, directory) as db:
        with Store.open(db) as store:
            store.put_application("ios", provider="apns", topic="com.example.app")
        key = create_key(db, "bench", "app", "ios", rate_limit=10_000_000)
        tokens = [apns_token(i) for i in range(devices)]
        with running_server(db) as server:
            assert server.process is not None
            cpu_before = process_cpu_seconds(server.process.pid)
            context = multiprocessing.get_context("spawn")
            pipes, children = [], []
            for p in range(processes):
                parent, child = context.Pipe()
                proc = context.Process(
                    target=_client_process,
                    args=(server.url, key, tokens[p::processes], 200 // processes, child),
                )
                proc.start()
                pipes.append(parent)
                children.append(proc)
            results = [pipe.recv() for pipe in pipes]
            for proc in children:
                proc.join()
            server_cpu = process_cpu_seconds(server.process.pid) - cpu_before
        with Store.open(db) as store:
            stored = sum(1 for _ in store.endpoints(page_size=10_000))
    assert stored == devices, (stored, devices)
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return {
        "backend": backend,
        "devices": devices,
        "rate": devices / (end - start),
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "cpu_us": server_cpu / devices * 1e6,
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
        f"Python {platform.python_version()}. The machine was shared with other work "
        f"(load average {load[0]:.1f} on {os.cpu_count()} cores when the run ended): "
        "figures are far below what a quiet machine gives, compare them with care.",
        "",
    ]
    if registrations:
        lines += [
            "Device registration through the API: one server process, 200 concurrent "
            "clients (each request a new token: one INSERT and one event). "
            "Goal on SQLite: ≥ 3,000 req/s, p99 < 50 ms. Server CPU per request is the "
            "server process's user + system time over the run divided by the requests: "
            "what one core would need per registration.",
            "",
            "| store | devices | req/s | p50 ms | p99 ms | server CPU per request |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in registrations:
            lines.append(
                f"| {r['backend']} | {r['devices']:,} | {r['rate']:,.0f} | "
                f"{r['p50']:.1f} | {r['p99']:.1f} | {r['cpu_us']:.0f} us |"
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
    parser.add_argument("--client-processes", type=int, default=2)
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
            registrations.append(bench_registration(backend, args.devices, args.client_processes))
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
