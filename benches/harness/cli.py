"""The command line of ``benches/throughput.py`` (and of ``pushwire bench``)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from .common import DEFAULT_OUT, MAX_CONNECTIONS, MOCK_RULES, SERVER_MAX_STREAMS
from .keys import provider_token, write_keypair, write_service_account_key
from .measure import Run, accounted, loadavg, python_child, run_event_loop
from .relay import CountingRelay
from .report import (
    build_rows,
    contention_note,
    describe_run,
    goals_table,
    render_report,
    render_tables,
)
from .scenarios import (
    EXPLICIT_ONLY,
    FULL_SIZES,
    MISSING_TOOL,
    QUICK_SIZES,
    SCENARIOS,
    SERVERS,
    TOOLS,
    Config,
    plan,
    tool_available,
)
from .sections import preserve
from .servers import Server, ensure_mock_binary, start_mock, start_nginx, stop

#: Default CPU placement (--pin): see benches/README.md for the measurement behind it.
DEFAULT_PIN = "none"
#: The same budget as every other scenario. With 4 x 1,000 streams / 40 ms = 100,000/s the
#: pipeline bound is above what 2 shared cores can do, so the CPU bound (the bulk rate)
#: applies; --latency-connections 1 makes the pipeline bound (25,000/s) the lower one.
LATENCY_CONNECTIONS = MAX_CONNECTIONS
#: 4 x 100 streams / 40 ms = 10,000/s: well under what client and server can do on 2 shared
#: cores, so latency-40ms measures how full a client keeps its pipeline.
LATENCY_STREAMS = 100


def child_main(spec_json: str) -> None:
    from .tools import CHILD_RUNNERS

    spec = json.loads(spec_json)
    runner = CHILD_RUNNERS[(spec["tool"], spec["scenario"])]
    report = run_event_loop(runner(spec))
    print(json.dumps(report), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="throughput.py",
        description="Throughput benchmark: pushwire, aioapns, httpx and h2load against the "
        "pushwire mock and nginx; writes benches/RESULTS.md.",
    )
    sizes = parser.add_argument_group("sizes (full / --quick)")
    for name, help_text in [
        ("n", "pushwire bulk, latency and rejected notifications"),
        ("aioapns_n", "aioapns notifications per run"),
        ("httpx_n", "httpx notifications per run"),
        ("h2load_n", "h2load requests per run (rounded up to connections x 200)"),
        ("fcm_n", "fcm-bulk messages"),
        ("hang_n", "hang notifications, 1%% hung"),
        ("stream_n", "stream-1m notifications"),
        ("single_n", "single-send-10k notifications"),
        ("wire_n", "wire-bytes notifications per tool (through the counting relay)"),
        ("count", "stream-10m notifications (h2load sends as many)"),
        ("repeats", "repeats per measurement"),
    ]:
        sizes.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            dest=name,
            help=f"{help_text} ({FULL_SIZES[name]:,} / {QUICK_SIZES[name]:,})",
        )
    parser.add_argument(
        "--scenario", action="append", choices=[*SCENARIOS, "all"], help="repeatable (all)"
    )
    parser.add_argument("--tool", action="append", choices=TOOLS, help="repeatable (all)")
    parser.add_argument("--server", action="append", choices=SERVERS, help="repeatable (all)")
    parser.add_argument(
        "--pin",
        choices=["split", "none"],
        default=DEFAULT_PIN,
        help=f"split: servers on core 0, clients on core 1 with taskset ({DEFAULT_PIN})",
    )
    parser.add_argument(
        "--latency-connections",
        type=int,
        default=LATENCY_CONNECTIONS,
        help=f"connections per tool in latency-40ms ({LATENCY_CONNECTIONS})",
    )
    parser.add_argument(
        "--latency-streams",
        type=int,
        default=LATENCY_STREAMS,
        help=(
            "streams per connection every tool may use in latency-40ms, so the pipeline and "
            f"not the shared CPU is what limits it ({LATENCY_STREAMS})"
        ),
    )
    parser.add_argument(
        "--stream-kwargs",
        type=json.loads,
        default={},
        metavar="JSON",
        help="keyword arguments for client.stream() in stream-10m, e.g. '{\"strict\": false}'",
    )
    parser.add_argument(
        "--stream-api",
        choices=("stream", "send_stream", "send_stream_counts"),
        default="stream",
        help=(
            "stream-10m through stream() (a Result each), send_stream() (a BulkReport) or "
            "send_stream(message_ids=False) (counts and problems only)"
        ),
    )
    parser.add_argument(
        "--rate",
        type=int,
        metavar="PER_SECOND",
        help=(
            "stream-10m at this many notifications per second for pushwire (rate_limit) and "
            "h2load (--rps per connection): client CPU compared at one rate, with the server "
            "below saturation for both"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="smoke sizes, 1 repeat")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="(benches/RESULTS.md)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace, argv: list[str]) -> Config:
    base = QUICK_SIZES if args.quick else FULL_SIZES
    sizes = {}
    for name, default in base.items():
        value = getattr(args, name)
        chosen = default if value is None else value
        if chosen < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
        sizes[name] = chosen
    chosen_scenarios = args.scenario or ["all"]
    scenarios = [
        s
        for s in SCENARIOS
        if s in chosen_scenarios or ("all" in chosen_scenarios and s not in EXPLICIT_ONLY)
    ]
    if not isinstance(args.stream_kwargs, dict):
        raise SystemExit("--stream-kwargs must be a JSON object")
    if args.rate is not None and args.rate < 1:
        raise SystemExit("--rate must be at least 1")
    if args.latency_connections < 1:
        raise SystemExit("--latency-connections must be at least 1")
    if not 1 <= args.latency_streams <= SERVER_MAX_STREAMS:
        raise SystemExit(f"--latency-streams must be between 1 and {SERVER_MAX_STREAMS}")
    return Config(
        scenarios=scenarios,
        tools=args.tool or TOOLS,
        servers=args.server or SERVERS,
        sizes=sizes,
        out=args.out,
        command=shlex.join(["python", *argv]),
        pin=args.pin == "split",
        latency_connections=args.latency_connections,
        latency_streams=args.latency_streams,
        stream_kwargs=args.stream_kwargs,
        stream_api=args.stream_api,
        rate=args.rate,
        load_before=loadavg(),
    )


def run_all(
    config: Config, servers: dict[str, Server], key_file: Path, sa_key_file: Path, tmp: Path
) -> list[Run]:
    from .tools import h2load_tool

    runs = []
    planned = plan(config, set(servers))
    for repeat in range(1, config.repeats + 1):
        for item in planned:
            server = servers[item.server]
            spec = {
                "tool": item.tool,
                "scenario": item.scenario,
                "server": item.server,
                "n": item.n,
                "connections": item.connections,
                "streams": item.streams,
                "tasks": config.single_tasks,
                "stream_kwargs": config.stream_kwargs,
                "stream_api": config.stream_api,
                "rate": config.rate if item.scenario == "stream-10m" else None,
                "url": server.url,
                "ca_file": server.ca_file,
                "token_uri": server.token_uri,
                "key_file": str(key_file),
                "sa_key_file": str(sa_key_file),
                # A fresh provider token for the tools without APNs support (h2load, httpx).
                "jwt": provider_token(key_file),
            }
            print(
                f"[{repeat}/{config.repeats}] {item.scenario} {item.server} {item.tool} "
                f"n={item.n:,} ...",
                file=sys.stderr,
            )
            relay = None
            if item.scenario == "wire-bytes":
                relay = CountingRelay(server.port)
                server = dataclasses.replace(server, url=relay_url(server.url, relay.port))
                spec["url"] = server.url
            if item.tool == "h2load-no-auth":
                spec["jwt"] = ""
            if item.tool.startswith("h2load"):
                measure = functools.partial(
                    h2load_tool.run, spec, server, tmp / "h2load", config.pin
                )
            else:
                measure = functools.partial(python_child, spec, config.pin)
            started = time.monotonic()
            if relay is None:
                run = accounted(spec, list(servers.values()), repeat, measure)
            else:
                with relay:
                    run = accounted(spec, list(servers.values()), repeat, measure)
                add_wire_bytes(run, relay)
            runs.append(run)
            elapsed = time.monotonic() - started
            print(f"    {describe_run(run)} ({elapsed:.1f} s)", file=sys.stderr)
            for s in servers.values():
                if not s.alive():
                    raise RuntimeError(f"the {s.name} server died (exit code {s.proc.returncode})")
    return runs


def relay_url(url: str, port: int) -> str:
    """``url`` (https://localhost:PORT) with the relay's port: the same name, so TLS checks
    the same certificate."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


def add_wire_bytes(run: Run, relay: CountingRelay) -> None:
    """Bytes per notification, both ways, from the relay's counts: every byte of every
    connection the tool opened (TLS handshakes, warm-up included, so the warm-up's
    notifications count in the denominator too)."""
    try:
        counts = relay.finish()
    except TimeoutError as e:
        run.error = str(e)
        if run.report is not None:
            run.report["ok"] = False
        return
    if run.report is None:
        return
    sent = run.n + run.warmup
    run.report |= {
        "wire_connections": counts.connections,
        "wire_up_bytes": counts.upstream,
        "wire_down_bytes": counts.downstream,
        "wire_up_per_notification": counts.upstream / sent,
        "wire_down_per_notification": counts.downstream / sent,
        "wire_per_notification": (counts.upstream + counts.downstream) / sent,
    }


def note_missing(config: Config) -> None:
    for tool in config.tools:
        if not tool_available(tool):
            config.notes.append(f"{MISSING_TOOL[tool]}: no {tool} rows in this run")


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    if args.child:
        child_main(args.child)
        return 0
    config = make_config(args, argv)
    note_missing(config)
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="pushwire-bench-") as tmp_name:
        tmp = Path(tmp_name)
        key_file, pub_file = write_keypair(tmp)
        sa_key_file, sa_pub_file = write_service_account_key(tmp)
        try:
            if "mock" in config.servers:
                use_binary = ensure_mock_binary(config.notes)
                servers["mock"] = start_mock(pub_file, sa_pub_file, use_binary, config.pin)
            if "nginx" in config.servers:
                nginx = start_nginx(tmp / "nginx", config.pin, config.notes)
                if nginx is not None:
                    servers["nginx"] = nginx
            descriptions = {
                name: f"{s.kind}, {s.url}"
                + (", pinned to core 0" if s.pinned else "")
                + (f", rules {', '.join(f'`{r}`' for r in MOCK_RULES)}" if name == "mock" else "")
                for name, s in servers.items()
            }
            runs = run_all(config, servers, key_file, sa_key_file, tmp)
        finally:
            for server in servers.values():
                stop(server)
    note = contention_note(runs)
    if note:
        config.notes.append(note)
        print(f"note: {note}", file=sys.stderr)
    rows = build_rows(runs)
    tables = render_tables(rows, config)
    goals_md = goals_table(rows, config)
    print()
    print(goals_md)
    print(tables)
    report = render_report(config, descriptions, runs, tables, goals_md)
    old = config.out.read_text() if config.out.exists() else ""
    config.out.write_text(preserve(report, old))
    print(f"wrote {config.out}", file=sys.stderr)
    return 0 if runs and all(r.ok for r in runs) else 1
