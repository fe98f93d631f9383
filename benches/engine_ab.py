"""A/B of two builds of the engine on one server, for engine work on a busy machine.

    python benches/engine_ab.py --a /tmp/before --b python --n 150000 --pairs 4
    python benches/engine_ab.py --a /tmp/before --b python --n 20000 --pairs 1 --callgrind

``--a`` and ``--b`` are directories holding a ``pushwire`` package (a copy of ``python/``
with the ``_core`` extension to compare). One nginx (or ``--server mock``) is started on core
0; each measurement is a fresh client process on core 1 sending ``--n`` notifications
through ``stream()`` (after the harness's warm-up), and the two builds alternate, so both
see the same minutes of load. Printed per run: notifications/s, the client's CPU µs per
notification and the part of it on the engine's threads (``pushwire-engine``, read from
/proc). With ``--callgrind`` each run is under valgrind instead, and the engine thread's
instruction count is printed: unaffected by the machine's load, so small differences show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.common import PAYLOAD, TOPIC, device_token
from harness.keys import write_keypair, write_service_account_key
from harness.servers import CLIENT_CORE, Server, pin_prefix, start_mock, start_nginx, stop
from harness.tools.pushwire_tool import client, warm_up

ENGINE_THREAD = "pushwire-engine"


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user+system) of this process's threads, summed by thread name."""
    ticks = os.sysconf("SC_CLK_TCK")
    total: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        total[name] = total.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return total


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Child side: one run of ``spec['n']`` notifications through ``stream()``."""
    import pushwire

    n = spec["n"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    delivered = 0
    async with client(spec) as c:
        await warm_up(c, message)
        threads_before = thread_cpu()
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        notifications = (pushwire.Notification(device_token(i), message) for i in range(n))
        async for result in c.stream(notifications):
            delivered += result.delivered
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        threads = thread_cpu()
    cpu = usage.ru_utime - usage_before.ru_utime + usage.ru_stime - usage_before.ru_stime
    engine = sum(
        v - threads_before.get(k, 0.0) for k, v in threads.items() if k.startswith(ENGINE_THREAD)
    )
    return {
        "delivered": delivered,
        "rate": round(n / wall),
        "cpu_us": round(cpu / n * 1e6, 2),
        "engine_us": round(engine / n * 1e6, 2),
    }


def engine_instructions(out_prefix: Path) -> int:
    """The largest per-thread instruction count other than the main thread's (the engine)."""
    counts = []
    for path in out_prefix.parent.glob(out_prefix.name + ".*-*"):
        if path.name.endswith("-01"):
            continue  # the Python thread
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("summary:"):
                counts.append(int(line.split()[1]))
                break
    return max(counts, default=0)


def run_one(label: str, package_dir: str, spec: dict[str, Any], callgrind: Path | None) -> str:
    env = dict(os.environ, PYTHONPATH=str(Path(package_dir).resolve()))
    argv = [sys.executable, __file__, "--child", json.dumps(spec)]
    if callgrind is not None:
        prefix = callgrind / f"{label}-{time.monotonic_ns()}"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={prefix}.%p",
            *argv,
        ]
    done = subprocess.run(
        [*pin_prefix(CLIENT_CORE, True), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"{label}: failed ({done.stderr.strip().splitlines()[-1:]})"
    report = json.loads(lines[-1])
    if report["delivered"] != spec["n"]:
        return f"{label}: only {report['delivered']:,} of {spec['n']:,} delivered"
    if callgrind is not None:
        return f"{label}: engine thread {engine_instructions(prefix):,} instructions"
    load = Path("/proc/loadavg").read_text().split()[0]
    return (
        f"{label}: {report['rate']:,}/s, client {report['cpu_us']} µs/notification, "
        f"engine threads {report['engine_us']} µs, load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", help="directory with the 'before' pushwire package")
    parser.add_argument("--b", help="directory with the 'after' pushwire package")
    parser.add_argument("--server", choices=["nginx", "mock"], default="nginx")
    parser.add_argument("--n", type=int, default=150_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(json.loads(args.child)))), flush=True)
        return
    if not (args.a and args.b):
        parser.error("--a and --b are required")
    if args.callgrind and not shutil.which("valgrind"):
        parser.error("--callgrind needs valgrind (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="engine-ab-") as tmp:
        directory = Path(tmp)
        key_file, pub_file = write_keypair(directory)
        server: Server | None
        if args.server == "nginx":
            notes: list[str] = []
            server = start_nginx(directory / "nginx", True, notes)
            if server is None:
                raise SystemExit("; ".join(notes))
        else:
            _, sa_pub_file = write_service_account_key(directory)
            server = start_mock(pub_file, sa_pub_file, False, True)
        spec = {
            "n": args.n,
            "connections": 4,
            "streams": 1000,
            "url": server.url,
            "ca_file": server.ca_file,
            "key_file": str(key_file),
        }
        callgrind = directory if args.callgrind else None
        try:
            for _ in range(args.pairs):
                for label, package_dir in (("A", args.a), ("B", args.b)):
                    print(run_one(label, package_dir, spec, callgrind), flush=True)
        finally:
            stop(server)


if __name__ == "__main__":
    main()
