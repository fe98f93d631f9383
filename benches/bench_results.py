"""What results cost: peak RSS of a bulk send by result mode, and the CPU of per-call
``await client.send()`` against the bulk CPU per notification.

    python benches/bench_results.py rss --n 100000 --n 200000 --n 1000000
    python benches/bench_results.py cpu --n 100000 --tasks 20000 --pairs 3
    python benches/bench_results.py cpu --n 100000 --tasks 20000 --pairs 3 --loop uvloop

Each measurement runs in a fresh process (``--child``) against the mock APNs in a process of
its own, so the figures are the client's alone: peak RSS is that process's ``ru_maxrss``, CPU
its user + system time (the engine's threads included) from the first send to the last
result. Modes:

* ``tokens-all``: ``send_to_tokens(message, tokens)`` (a list of N tokens; every Result kept);
* ``many``: ``send_many(notifications)`` (a list of N Notifications; every Result kept);
* ``tokens-problems``: the same with ``keep="problems"`` (a :class:`pushwire.BulkReport`);
* ``stream-report``: ``send_stream(generator)`` (tokens made lazily; a BulkReport);
* ``stream``: ``async for r in stream(generator)``, each result dropped after counting;
* ``per-call``: ``--tasks`` tasks, each awaiting ``send()`` in a loop until N are sent.

Inputs (token lists, Notifications) are made before the clock starts, in every mode. ``cpu``
runs ``tokens-all``, ``many`` and ``per-call`` in turn, ``--pairs`` times, and reports per-call
CPU per notification over each bulk mode's (``many`` is the issue's reference: the same
Notifications, one list): compare ratios, not absolute figures, on a busy machine.
``--pythonpath`` runs the children on another checkout (an A/B pair against main).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benches"))

TOPIC = "com.example.bench"
MODES = ("tokens-all", "many", "tokens-problems", "stream-report", "stream", "per-call")


def token(i: int) -> str:
    return format(i, "064x")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(
    mode: str, n: int, tasks: int, url: str, ca_file: str, p8: bytes
) -> dict[str, Any]:
    import pushwire
    from mock_child import KEY_ID, TEAM_ID

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    message = pushwire.Message({"aps": {"alert": "hello"}}, topic=TOPIC)
    async with pushwire.APNsClient(credentials, base_url=url, ca_file=ca_file) as client:
        # Warm up: connections open, JWT minted, first allocations made.
        await client.send_to_tokens(message, [token(i) for i in range(2000)])
        tokens = [token(i) for i in range(n)] if mode in ("tokens-all", "tokens-problems") else None
        notes = (
            [pushwire.Notification(token(i), message) for i in range(n)]
            if mode in ("many", "per-call")
            else None
        )
        delivered = 0
        problems = 0
        cpu0, t0 = _cpu(), time.perf_counter()
        if mode == "tokens-all":
            assert tokens is not None
            results = await client.send_to_tokens(message, tokens)
            delivered = sum(r.delivered for r in results)
            problems = len(results) - delivered
        elif mode == "many":
            assert notes is not None
            results = await client.send_many(notes)
            delivered = sum(r.delivered for r in results)
            problems = len(results) - delivered
        elif mode in ("tokens-problems", "stream-report"):
            if mode == "tokens-problems":
                assert tokens is not None
                report = await client.send_to_tokens(message, tokens, keep="problems")
            else:
                report = await client.send_stream(
                    pushwire.Notification(token(i), message) for i in range(n)
                )
            delivered, problems = report.delivered, len(report.problems)
        elif mode == "stream":
            source: Iterator[Any] = (pushwire.Notification(token(i), message) for i in range(n))
            async for r in client.stream(source):
                if r.delivered:
                    delivered += 1
                else:
                    problems += 1
        else:
            assert notes is not None
            queue = iter(notes)

            async def worker() -> tuple[int, int]:
                ok = bad = 0
                for note in queue:
                    r = await client.send(note)
                    if r.delivered:
                        ok += 1
                    else:
                        bad += 1
                return ok, bad

            for ok, bad in await asyncio.gather(*(worker() for _ in range(tasks))):
                delivered += ok
                problems += bad
        cpu, wall = _cpu() - cpu0, time.perf_counter() - t0
    return {
        "mode": mode,
        "n": n,
        "delivered": delivered,
        "problems": problems,
        "cpu_s": round(cpu, 3),
        "cpu_us_per_notification": round(cpu / n * 1e6, 2),
        "wall_s": round(wall, 3),
        "per_s": round(n / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def child(args: argparse.Namespace) -> None:
    p8 = Path(args.p8).read_bytes()
    measure = _measure(args.mode, args.n, args.tasks, args.url, args.ca_file, p8)
    if args.loop == "uvloop":
        import uvloop

        figures = uvloop.run(measure)
    else:
        figures = asyncio.run(measure)
    print(json.dumps(figures | {"loop": args.loop}))


def run_child(
    mode: str,
    n: int,
    tasks: int,
    server: tuple[str, str],
    p8: str,
    pythonpath: str | None,
    loop: str = "asyncio",
) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--mode",
        mode,
        "--n",
        str(n),
        "--tasks",
        str(tasks),
    ]
    cmd += ["--url", server[0], "--ca-file", server[1], "--p8", p8, "--loop", loop]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if figures["delivered"] + figures["problems"] != n:
        raise SystemExit(f"{mode}: {figures['delivered']} + {figures['problems']} results for {n}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=("rss", "cpu"), default="rss")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", action="append", choices=MODES)
    parser.add_argument("--n", type=int, action="append")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--pythonpath", help="PYTHONPATH of the children (another checkout)")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the children's event loop (uvicorn runs on uvloop when it is installed)",
    )
    parser.add_argument("--url")
    parser.add_argument("--ca-file")
    parser.add_argument("--p8")
    args = parser.parse_args()
    if args.child:
        args.mode, args.n = args.mode[0], args.n[0]
        child(args)
        return

    import tempfile

    from conftest import make_p8
    from mock_child import mock_in_child

    p8 = make_p8()
    with tempfile.NamedTemporaryFile(suffix=".p8") as key_file:
        key_file.write(p8)
        key_file.flush()
        with mock_in_child(p8) as server:
            if args.what == "rss":
                for n in args.n or [100_000]:
                    for mode in args.mode or [
                        "tokens-all",
                        "tokens-problems",
                        "stream-report",
                        "stream",
                    ]:
                        print(
                            json.dumps(
                                run_child(
                                    mode, n, args.tasks, server, key_file.name, args.pythonpath
                                )
                            ),
                            flush=True,
                        )
                return
            ratios: dict[str, list[float]] = {"tokens-all": [], "many": []}
            n = (args.n or [100_000])[0]
            for pair in range(args.pairs):
                figures = {
                    mode: run_child(
                        mode, n, args.tasks, server, key_file.name, args.pythonpath, args.loop
                    )
                    for mode in ("tokens-all", "many", "per-call")
                }
                single = figures["per-call"]["cpu_us_per_notification"]
                shown = []
                for bulk_mode, seen in ratios.items():
                    bulk = figures[bulk_mode]["cpu_us_per_notification"]
                    seen.append(single / bulk)
                    shown.append(f"{bulk_mode} {bulk} µs ({single / bulk:.2f}x)")
                rates = ", ".join(f"{m} {f['per_s']:,}/s" for m, f in figures.items())
                print(
                    f"round {pair + 1}: per-call {single} µs ({args.tasks:,} tasks) vs "
                    f"{'; '.join(shown)}; rates {rates}",
                    flush=True,
                )
            for bulk_mode, seen in ratios.items():
                print(
                    f"per-call / {bulk_mode} CPU per notification ({args.loop}): "
                    f"median {statistics.median(seen):.2f}x of {len(seen)}"
                )


if __name__ == "__main__":
    main()
