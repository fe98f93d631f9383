"""Scale-out benchmark: 1 vs 3 ``pushwire worker`` processes draining one job from a Redis
stream into the mock APNs server, which answers every request after 40 ms.

    python benches/bench_workers.py                 # 20,000 notifications, medians of 3
    python benches/bench_workers.py --quick         # 5,000, 1 repeat (smoke run)
    python benches/bench_workers.py --write-results # also merge the section into RESULTS.md
                                                    # (between <!-- begin:workers --> and
                                                    # <!-- end:workers -->, results_md.py)

With 40 ms per answer, a worker's throughput is bounded by latency, not CPU: each worker is
given one HTTP/2 connection (``--max-connections 1``) of at most 50 concurrent streams
(``--max-streams 50``), so it can have 50 requests outstanding, i.e. at most 50 / 0.04 s =
1,250 notifications/s, whatever the machine. Three workers have three times the outstanding
requests and should approach three times the throughput; the question the benchmark answers
is whether the queue (Redis reads, outcome records, acknowledgements) keeps up, i.e. whether
the ratio stays at or above 2.5 on a small (2-core) machine.

Redis: ``$PUSHWIRE_TEST_REDIS_URL``, else a throwaway server from ``scripts/redis.sh``. The
mock server runs in a process of its own (``pushwire.testing.MockAPNs``, ES256 provider
tokens checked). Workers are started and ready (their first metrics published) before the
job is enqueued; the time is measured from the start of the enqueue to the moment every
notification has its recorded outcome and every chunk is acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import make_p8  # noqa: E402  (the test suite's throwaway APNs key)

sys.path.insert(0, str(REPO / "benches"))
from mock_child import mock_in_child  # noqa: E402
from results_md import merge_section  # noqa: E402

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.bench"
RTT = 0.04
MAX_STREAMS = 50
#: Tokens per stream entry: small enough that a job spreads over every worker (each takes
#: ``--prefetch 2`` entries at a time).
CHUNK = 250
RESULTS = REPO / "benches" / "RESULTS.md"
SECTION = "## Scale-out: workers on Redis Streams"
CLI = [sys.executable, "-m", "pushwire.cli"]


@contextmanager
def redis_server():
    url = os.environ.get("PUSHWIRE_TEST_REDIS_URL")
    if url:
        yield url
        return
    state = tempfile.mkdtemp(prefix="pushwire-bench-redis-")
    script = REPO / "scripts" / "redis.sh"
    done = subprocess.run(
        ["bash", str(script), "start", state], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"could not start Redis: {done.stderr[-2000:]}")
    try:
        yield done.stdout.strip().splitlines()[-1].split("=", 1)[1]
    finally:
        subprocess.run(["bash", str(script), "stop", state], capture_output=True, check=False)


def make_store(directory: Path, p8: bytes) -> str:
    from pushwire.store import Store

    key = directory / f"AuthKey_{KEY_ID}.p8"
    key.write_bytes(p8)
    url = f"sqlite:///{directory}/bench.db"
    with Store.open(url) as store:
        store.put_application(
            "ios",
            provider="apns",
            topic=TOPIC,
            credentials_ref=f"p8:{key}?key_id={KEY_ID}&team_id={TEAM_ID}",
        )
    return url


async def enqueue(redis_url: str, stream: str, count: int) -> str:
    """The job, through the producer API in this process (a CLI start-up would be timed)."""
    from pushwire.jobs import Queue
    from pushwire.store import PushMessage

    tokens = (format(i, "064x") for i in range(count))
    async with Queue(redis_url, stream=stream, chunk_size=CHUNK) as queue:
        return await queue.enqueue("ios", tokens, PushMessage(title="Bench", body="hi"))


def run_once(
    workers: int, count: int, redis_url: str, db: str, server: tuple[str, str], logs: Path
) -> dict[str, Any]:
    import redis

    stream = f"bench:{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(redis_url)
    procs = []
    for i in range(workers):
        args = [
            *CLI, "worker", "--redis", redis_url, "--stream", stream, "--db", db,
            "--apns-url", server[0], "--ca-file", server[1], "--consumer", f"b{i}",
            "--key-prefix", stream + ":shared", "--max-connections", "1",
            "--max-streams", str(MAX_STREAMS), "--prefetch", "2", "--window", "1000",
            "--slice-size", "250", "--no-apply-results", "--log-level", "warning",
            "--metrics-interval", "0.2",
        ]  # fmt: skip
        out = (logs / f"{stream.replace(':', '_')}-b{i}.log").open("wb")
        procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))
        out.close()
    try:
        deadline = time.monotonic() + 120
        while not all(client.exists(f"{stream}:worker:b{i}") for i in range(workers)):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers did not start (logs in {logs})")
            time.sleep(0.05)
        started = time.monotonic()
        job = asyncio.run(enqueue(redis_url, stream, count))
        meta = f"{stream}:job:{job}"
        while True:
            values = client.hmget(meta, "recorded", "chunks_done", "chunks", "o:delivered")
            recorded, chunks_done, chunks, delivered = (int(v or 0) for v in values)
            if recorded >= count and chunks_done >= chunks:
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"the job did not finish: {recorded} of {count}")
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    cpu = 0.0
    for i in range(workers):
        snapshot = client.hgetall(f"{stream}:worker:b{i}")
        cpu += float(snapshot.get(b"cpu_seconds", 0))
    client.close()
    return {
        "workers": workers,
        "count": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "delivered": delivered,
        "worker_cpu": cpu,
    }


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def report(rows: dict[int, list[dict[str, Any]]], command: str, loads: tuple[str, str]) -> str:
    import pushwire

    one = statistics.median(r["rate"] for r in rows[1])
    three = statistics.median(r["rate"] for r in rows[3])
    ratio = three / one
    bound = MAX_STREAMS / RTT
    lines = [
        SECTION,
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- Machine: nproc={os.cpu_count()}, {platform.platform()}",
        f"- Python {platform.python_version()}, pushwire {pushwire.__version__}",
        f"- Mock: `pushwire.testing.MockAPNs` in its own process, every answer after "
        f"{RTT * 1000:.0f} ms; each worker: 1 connection, at most {MAX_STREAMS} streams "
        f"(latency bound {bound:,.0f}/s per worker)",
        f"- Command: `{command}`",
        f"- Load average (1/5/15 min) at start {loads[0]}, at end {loads[1]}",
        "",
        "| workers | notifications | runs (notifications/s) | median /s | worker CPU s / 1M | "
        "delivered |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for workers, runs in sorted(rows.items()):
        rates = ", ".join(f"{r['rate']:,.0f}" for r in runs)
        median = statistics.median(r["rate"] for r in runs)
        cpu = statistics.median(r["worker_cpu"] / r["count"] * 1_000_000 for r in runs)
        delivered = "all" if all(r["delivered"] == r["count"] for r in runs) else "NOT ALL"
        lines.append(
            f"| {workers} | {runs[0]['count']:,} | {rates} | {median:,.0f} | {cpu:.0f} | "
            f"{delivered} |"
        )
    goal = "met" if ratio >= 2.5 else "MISSED"
    lines += [
        "",
        f"3 workers / 1 worker: **{ratio:.2f}x** (goal ≥ 2.5x: {goal}).",
        "",
        f"Time runs from the start of `Queue.enqueue` (in the benchmark process, {CHUNK} "
        "tokens per entry) to the last outcome recorded and the "
        "last chunk acknowledged (polled every 10 ms). Worker CPU includes each worker's "
        "start-up (imports, store, TLS) and is summed over the workers.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 notifications, 1 repeat")
    parser.add_argument(
        "--write-results", action="store_true", help=f"Merge the section into {RESULTS.name}."
    )
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeats = 5_000, 1
    p8 = make_p8()
    loads_start = load_average()
    rows: dict[int, list[dict[str, Any]]] = {1: [], 3: []}
    with tempfile.TemporaryDirectory() as directory, redis_server() as redis_url:
        db = make_store(Path(directory), p8)
        with mock_in_child(p8, response_delay=RTT) as server:
            for repeat in range(args.repeats):
                for workers in (1, 3):
                    row = run_once(workers, args.count, redis_url, db, server, Path(directory))
                    rows[workers].append(row)
                    print(
                        f"run {repeat + 1}: {workers} worker(s): {row['rate']:,.0f}/s "
                        f"({row['seconds']:.2f} s)",
                        file=sys.stderr,
                    )
    command = "python benches/bench_workers.py " + " ".join(sys.argv[1:])
    section = report(rows, command.strip(), (loads_start, load_average()))
    print(section)
    if args.write_results:
        merge_section(RESULTS, "workers", section)
        print(f"merged into {RESULTS} (section 'workers')", file=sys.stderr)


if __name__ == "__main__":
    main()
