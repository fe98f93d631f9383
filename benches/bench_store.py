"""Endpoint store benchmark: ``Store.send_to_segment`` over 1,000,000 endpoints against the
mock APNs server, on SQLite and on PostgreSQL.

    python benches/bench_store.py                          # 1M endpoints, SQLite
    python benches/bench_store.py --backend postgresql     # needs PUSHWIRE_TEST_POSTGRES_DSN,
                                                           # or starts scripts/postgres.sh
    python benches/bench_store.py --backend all --endpoints 100000 --write store.md

What it measures, per backend:

* import: ``register_many`` in batches of 10,000 (endpoints/s);
* send: ``send_to_segment("all", ...)`` in a fresh process (endpoints/s from the first
  endpoint read to the last result applied, and that process's peak RSS; the goal is under
  300 MB), with 2% of tokens answered 410 ``Unregistered`` and 0.5% ``BadDeviceToken``, so
  results are applied back (those tokens end disabled);
* raw: the same number of notifications through ``APNsClient.stream`` without the store, in
  the same setup, for the store's overhead.

The mock server (``pushwire.testing.MockAPNs``, ES256 provider tokens checked, the key made as
tests/conftest.py makes it) runs in a process of its own, so the sender's RSS and CPU are its
own. The report is a Markdown section printed on stdout (``--write FILE`` saves it too);
``--results benches/RESULTS.md`` merges it there between ``<!-- begin:store -->`` and
``<!-- end:store -->`` (benches/results_md.py), leaving the rest of the file as it was.
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
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benches"))

from conftest import make_p8  # noqa: E402  (the test suite's throwaway APNs key)
from mock_child import mock_in_child  # noqa: E402
from results_md import merge_section  # noqa: E402

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
#: Tokens the mock answers 410 / 400 (the store marks them dead).
MOCK_RULES = {"dead": "unregistered", "bad0": "bad-token"}
TOPIC = "com.example.bench"
DEAD_EVERY = 50  # 2%: answered 410 Unregistered
BAD_EVERY = 200  # 0.5%: answered 400 BadDeviceToken (scattered: no environment burst)
IMPORT_BATCH = 10_000
RSS_GOAL_MB = 300
CHILD_TIMEOUT = 3600.0


def token(i: int) -> str:
    if i % DEAD_EVERY == 0:
        return "dead" + format(i, "060x")
    if i % BAD_EVERY == 7:
        return "bad0" + format(i, "060x")
    return format(i, "064x")


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: Linux carries it over from
    the forking parent across exec, so a spawned child would report the parent's size (and
    the parent holds the whole import)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    return memory_mb("VmRSS")


def peak_rss_mb() -> float:
    return memory_mb("VmHWM")


# -- processes --------------------------------------------------------------------------------


def send_through_store(url: str, p8: bytes, server: tuple[str, str], connection: Any) -> None:
    import pushwire
    from pushwire.store import PushMessage, Store

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    message = PushMessage(title="Bench", body="Hello from the store benchmark")
    with Store.open(url) as store:

        async def main() -> dict[str, Any]:
            async with pushwire.APNsClient(
                credentials, base_url=server[0], ca_file=server[1]
            ) as client:
                await client.send(pushwire.Notification("f" * 64, message.render_apns(TOPIC)))
                before = rss_mb()
                started = time.perf_counter()
                report = await store.send_to_segment("all", message, clients={"ios": client})
                elapsed = time.perf_counter() - started
                return {
                    "total": report.total,
                    "delivered": report.delivered,
                    "disabled": report.tokens_disabled,
                    "by_reason": report.by_reason,
                    "alerts": report.alerts,
                    "seconds": elapsed,
                    "rss_before_mb": before,
                }

        figures = asyncio.run(main())
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["cpu_seconds"] = sum(os.times()[:2])
    connection.send(figures)


def send_raw(count: int, p8: bytes, server: tuple[str, str], connection: Any) -> None:
    import pushwire
    from pushwire import payload

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    message = payload.alert(TOPIC, title="Bench", body="Hello from the store benchmark")

    async def main() -> dict[str, Any]:
        async with pushwire.APNsClient(
            credentials, base_url=server[0], ca_file=server[1]
        ) as client:
            await client.send(pushwire.Notification("f" * 64, message))
            before = rss_mb()
            started = time.perf_counter()
            total = 0
            async for _ in client.stream((token(i), message, None) for i in range(count)):
                total += 1
            return {
                "total": total,
                "seconds": time.perf_counter() - started,
                "rss_before_mb": before,
            }

    figures = asyncio.run(main())
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["cpu_seconds"] = sum(os.times()[:2])
    connection.send(figures)


def in_child(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=target, args=(*args, send))
    child.start()
    if not receive.poll(CHILD_TIMEOUT):
        child.kill()
        raise SystemExit(f"{target.__name__} did not answer within {CHILD_TIMEOUT:.0f} s")
    answer = receive.recv()
    child.join(60)
    return answer


# -- databases --------------------------------------------------------------------------------


@contextmanager
def sqlite_url(directory: Path):
    yield f"sqlite:///{directory}/bench.db"


@contextmanager
def postgres_url():
    import psycopg

    dsn = os.environ.get("PUSHWIRE_TEST_POSTGRES_DSN")
    state = None
    if not dsn:
        state = tempfile.mkdtemp(prefix="pushwire-bench-pg-")
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "postgres.sh"), "start", state],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        dsn = out.strip().splitlines()[-1].split("=", 1)[1]
    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
    try:
        yield parts._replace(query=urlencode(query)).geturl()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        if state is not None:
            script = str(REPO / "scripts" / "postgres.sh")
            subprocess.run(["bash", script, "stop", state], check=False)


def populate(url: str, count: int) -> float:
    """Register ``count`` endpoints; returns endpoints/s."""
    from pushwire.store import Registration, Store

    with Store.open(url) as store:
        store.put_application("ios", provider="apns", topic=TOPIC)
        started = time.perf_counter()
        for start in range(0, count, IMPORT_BATCH):
            store.register_many(
                [
                    Registration("ios", token(i), user_id=f"user{i % 100_000}",
                                 attributes={"plan": "pro" if i % 3 else "free"})
                    for i in range(start, min(count, start + IMPORT_BATCH))
                ]
            )  # fmt: skip
        return count / (time.perf_counter() - started)


# -- report -----------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    endpoints: int
    import_rate: float
    send: dict[str, Any]
    raw: dict[str, Any]
    received: int

    @property
    def send_rate(self) -> float:
        return self.send["total"] / self.send["seconds"]

    @property
    def raw_rate(self) -> float:
        return self.raw["total"] / self.raw["seconds"]

    def status(self) -> str:
        expected_disabled = sum(
            1 for i in range(self.endpoints) if i % DEAD_EVERY == 0 or i % BAD_EVERY == 7
        )
        problems = []
        if self.send["total"] != self.endpoints:
            problems.append(f"sent {self.send['total']}")
        if self.send["disabled"] != expected_disabled:
            problems.append(f"disabled {self.send['disabled']} of {expected_disabled}")
        if self.send["alerts"]:
            problems.append("alerts " + ", ".join(self.send["alerts"]))
        goal = "met" if self.send["peak_rss_mb"] < RSS_GOAL_MB else "MISSED"
        return ("; ".join(problems) or "ok") + f"; RSS goal < {RSS_GOAL_MB} MB {goal}"


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def report(rows: list[Row], command: str, loads: tuple[str, str]) -> str:
    import pushwire

    lines = [
        "## Endpoint store: send_to_segment",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- Machine: nproc={os.cpu_count()}, {platform.platform()}",
        f"- Python {platform.python_version()}, pushwire {pushwire.__version__}",
        "- Mock: `pushwire.testing.MockAPNs` in its own process, ES256 provider tokens checked;"
        f" {100 / DEAD_EVERY:g}% of tokens answered 410 Unregistered, {100 / BAD_EVERY:g}%"
        " BadDeviceToken",
        f"- Command: `{command}`",
        f"- Load average (1/5/15 min) at start {loads[0]}, at end {loads[1]}: on a busy "
        "machine rates drop and vary; CPU s / 1M is the steadier figure",
        "",
        "| backend | endpoints | import endpoints/s | send endpoints/s | raw stream /s | "
        "send / raw | sender peak RSS MB | RSS before send MB | raw peak RSS MB | "
        "CPU s / 1M | raw CPU s / 1M | disabled | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = row.send_rate / row.raw_rate
        cpu_per_million = row.send["cpu_seconds"] / row.endpoints * 1_000_000
        raw_cpu_per_million = row.raw["cpu_seconds"] / row.endpoints * 1_000_000
        lines.append(
            f"| {row.backend} | {row.endpoints:,} | {row.import_rate:,.0f} | "
            f"{row.send_rate:,.0f} | {row.raw_rate:,.0f} | {ratio:.2f} | "
            f"{row.send['peak_rss_mb']:.1f} | {row.send['rss_before_mb']:.1f} | "
            f"{row.raw['peak_rss_mb']:.1f} | {cpu_per_million:.1f} | "
            f"{raw_cpu_per_million:.1f} | "
            f"{row.send['disabled']:,} | {row.status()} |"
        )
    lines += [
        "",
        "Send endpoints/s covers reading the endpoints page by page (keyset pagination, 2,000 "
        "per query), sending, and applying every result back in batches of 2,000 (disabling "
        "the dead tokens, recording events and the run). Send / raw compares it with streaming "
        "the same tokens without the store, one run after the other (1.00 = no cost; above 1 "
        "is noise from other load). CPU s / 1M is the sending process's CPU "
        "(user + system) for its whole life, imports and store opening included; the mock's "
        "CPU is not counted.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="sqlite")
    parser.add_argument("--write", type=Path, help="Also write the section to this file.")
    parser.add_argument(
        "--results",
        type=Path,
        help="Merge the section into this Markdown file (e.g. benches/RESULTS.md), between "
        "<!-- begin:store --> and <!-- end:store -->.",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    p8 = make_p8()
    rows = []
    load_at_start = load_average()
    with tempfile.TemporaryDirectory() as directory:
        for backend in backends:
            database = sqlite_url(Path(directory)) if backend == "sqlite" else postgres_url()
            with database as url:
                print(f"{backend}: registering {args.endpoints:,} endpoints", file=sys.stderr)
                import_rate = populate(url, args.endpoints)
                print(f"{backend}: {import_rate:,.0f} endpoints/s; sending", file=sys.stderr)
                # A fresh server for each measurement: its per-token counters start empty.
                with mock_in_child(p8, rules=MOCK_RULES) as server:
                    raw = in_child(send_raw, args.endpoints, p8, server)
                with mock_in_child(p8, rules=MOCK_RULES) as server:
                    send = in_child(send_through_store, url, p8, server)
                print(f"{backend}: {send}", file=sys.stderr)
                rows.append(Row(backend, args.endpoints, import_rate, send, raw, 0))
    command = "python benches/bench_store.py " + " ".join(sys.argv[1:])
    section = report(rows, command.strip(), (load_at_start, load_average()))
    print(section)
    if args.write is not None:
        args.write.write_text(section + "\n")
    if args.results is not None:
        merge_section(args.results, "store", section)


if __name__ == "__main__":
    main()
