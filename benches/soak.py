"""Soak benchmark (issue 7): minutes of continuous sending under random faults; memory, file
descriptors, threads and throughput must stay flat, and every notification must get exactly
one truthful result. A benchmark, not a CI test.

    python benches/soak.py --quick          # 30 s smoke run; writes nothing under version control
    python benches/soak.py                  # 5 minutes; merges a "Soak" section into RESULTS.md
    python benches/soak.py --duration 900 --seed 7

Processes. The mock server (``pushwire.testing.MockAPNs``, the same Rust server as the
``pushwire-mock`` binary, ES256 provider tokens checked) runs in a child process that owns it
and obeys commands on a ``multiprocessing`` pipe: begin / end a round (it answers the count
the server received for every token of the round), change SETTINGS_MAX_CONCURRENT_STREAMS,
restart on the same port (optionally with a graceful GOAWAY every N streams), stop. The
binary is not used because its rules, stream limit and GOAWAY option are fixed when it starts
and it has no control interface. The measuring process runs one ``APNsClient`` at a time
(uvloop when installed) and sends rounds of 20,000 notifications, two rounds at once, each
with ``send_to_tokens`` or (one round in five) ``stream()``.

Faults, all drawn from ``random.Random(--seed)``:

* in rounds: tokens ruled ``hang``, ``reset``, ``refused``, ``429``, ``500``, ``503``,
  ``unregistered`` (410), ``bad-token``, ``delay:800``, abrupt ``goaway``, ``close`` (TCP
  drop) and ``blackhole`` (the connection stops answering, PING included) at random positions;
  the kinds come from a shuffled deck (with clean cards) so each appears regularly;
* on the server, every ~20 s (``--quick``: ~5 s): MAX_CONCURRENT_STREAMS lowered to 1, 5 or
  50 for 0.2-1 s then raised back to 1,000; a restart on the same port; a restart with a
  graceful GOAWAY after every 1,500-5,000 streams (in force until the next restart). The mock
  writes a new CA on every start, so after a restart the rounds in flight end (what was queued
  fails as not sent: the old CA no longer verifies) and a new client trusting the new CA takes
  over: closing and creating clients is part of the soak.

Checks, every round: one result per notification (input order for ``send_to_tokens``, each
index exactly once for ``stream()``); against the server's own count for every token:
``delivered`` only if received exactly once, ``failed`` and not ``maybe_delivered`` only if
never received (REFUSED_STREAM and 5xx retries excepted: received at most ``attempts``
times), nothing received more often than sent; each fault kind gets its own outcome (``hang``
a timeout, 410 a rejection with its timestamp...), except collateral damage of a connection
fault or restart in flight at the time (``failed`` maybe delivered, or not sent); timeouts
only for ``hang`` tokens and for streams of a blackholed connection.

Every ``--sample`` seconds (5; ``--quick`` 1): RSS, open file descriptors and threads of the
measuring process, the mock's RSS and descriptors, notifications completed. The run is split
into five equal windows (minutes, for 5 minutes). Flat means: last-window median RSS within
10% of the first window's (the first 10 s, at most a tenth of the run, are warm-up and left
out of the RSS figures); open descriptors max - min ≤ 16; threads max - min ≤ 8; every
window's notifications/s within ±25% of the windows' median. A violated criterion or a wrong
result makes the exit code 1.

Output: the time series and summary as JSON (``--series``, default benches/soak-series.json;
``--quick``: benches/out/soak-quick.json) and a Markdown section printed and merged between
``<!-- begin:soak -->`` / ``<!-- end:soak -->`` in benches/RESULTS.md (``--results``; not with
``--quick`` unless given).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_md import merge_section  # noqa: E402

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.soak"

ROUND_SIZE = 20_000
CONCURRENT_ROUNDS = 2
STREAM_EVERY = 5  # about one round in five goes through stream()
REQUEST_TIMEOUT = 3.0
DELAY_MS = 800
CLIENT_OPTIONS: dict[str, Any] = {
    "request_timeout": REQUEST_TIMEOUT,
    "max_connections": 4,
    "max_in_flight": 20_000,
    # A blackholed connection is found by PING (<= 1.5 s), well before the 3 s deadline.
    "ping_interval": 0.5,
    "ping_timeout": 1.0,
    # After a restart the old CA no longer verifies: queued work fails as not sent quickly.
    "max_connect_attempts": 3,
    "backoff_base": 0.05,
    "backoff_max": 0.5,
}

#: fault kind -> (token prefix, mock behaviour, most tokens of that kind in one round)
TOKEN_FAULTS: dict[str, tuple[str, str, int]] = {
    "hang": ("1a00", "hang", 20),
    "reset": ("5e70", "reset", 50),
    "refused": ("5ef0", "refused", 20),
    "429": ("4290", "429", 100),
    "500": ("5000", "500", 50),
    "503": ("5030", "503", 50),
    "410": ("4100", "unregistered", 200),
    "bad-token": ("bad0", "bad-token", 100),
    "delay": ("de1a", f"delay:{DELAY_MS}", 50),
    "goaway": ("90a7", "goaway", 2),
    "close": ("c105", "close", 2),
    "blackhole": ("b1ac", "blackhole", 1),
}
NORMAL_PREFIX = "0000"
CONNECTION_FAULTS = frozenset({"goaway", "close", "blackhole"})
RULES = {prefix: behaviour for prefix, behaviour, _ in TOKEN_FAULTS.values()}
CLEAN_CARDS = 6
SERVER_EVENTS = ["maxstreams", "restart", "goaway-after"]

# Flat criteria.
RSS_GROWTH_LIMIT = 0.10
FD_SPREAD_LIMIT = 16
THREAD_SPREAD_LIMIT = 8
THROUGHPUT_BAND = 0.25
WINDOWS = 5
WARMUP_S = 10.0  # (at most a tenth of the run) left out of the RSS figures


def round_tokens(rid: int, n: int, faults: dict[int, str]) -> list[str]:
    """The tokens of round ``rid``: unique over the whole soak, fault kinds by prefix."""
    out = []
    for i in range(n):
        kind = faults.get(i)
        prefix = TOKEN_FAULTS[kind][0] if kind else NORMAL_PREFIX
        out.append(f"{prefix}{rid:08x}{i:052x}")
    return out


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS (kB) and Threads of a process."""
    wanted = {"VmRSS", "Threads"}
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in wanted:
                found[key] = int(value.split()[0])
    return found


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def make_p8() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# -- the mock's process -----------------------------------------------------------------------


def serve_mock(p8: bytes, conn: Any) -> None:
    """Own a MockAPNs and obey the soak's commands until "stop"."""
    import pushwire
    from pushwire.testing import MockAPNs

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    cert_dir = tempfile.mkdtemp(prefix="pushwire-soak-")
    server = MockAPNs(credentials=credentials, rules=RULES, cert_dir=cert_dir)
    port = server.port
    # Round id -> its tokens and what earlier servers (before a restart) received of each.
    rounds: dict[int, tuple[list[str], array[int]]] = {}
    totals = {"received": 0, "connections": 0, "refused_streams": 0}

    def counters() -> dict[str, int]:
        return {
            "received": totals["received"] + server.total_received,
            "connections": totals["connections"] + server.connections_accepted,
            "refused_streams": totals["refused_streams"] + server.refused_streams,
        }

    conn.send((server.url, str(server.ca_file)))
    while True:
        command, *args = conn.recv()
        if command == "begin":
            rid, n, faults = args
            rounds[rid] = (round_tokens(rid, n, faults), array("l", [0]) * n)
            conn.send(None)
        elif command == "end":
            tokens, earlier = rounds.pop(args[0])
            counts = array(
                "l", (e + server.received(t) for t, e in zip(tokens, earlier, strict=True))
            )
            conn.send(counts.tobytes())
        elif command == "streams":
            server.set_max_concurrent_streams(args[0])
            conn.send(None)
        elif command == "restart":
            (goaway_after,) = args
            # Quiesce: from now on nothing is answered, so once the count stops moving, what
            # this server received is final (nothing it received can be reported delivered
            # after the snapshot). The connections then drop with the server.
            server.set_rules({"": "hang", **RULES})
            last, since, deadline = server.total_received, time.monotonic(), time.monotonic() + 5
            while time.monotonic() - since < 0.3 and time.monotonic() < deadline:
                time.sleep(0.02)
                if server.total_received != last:
                    last, since = server.total_received, time.monotonic()
            for tokens, earlier in rounds.values():
                for i, t in enumerate(tokens):
                    earlier[i] += server.received(t)
            for key, value in counters().items():
                totals[key] = value
            server.stop()
            for attempt in range(50):
                try:
                    server = MockAPNs(
                        credentials=credentials,
                        rules=RULES,
                        cert_dir=cert_dir,
                        port=port,
                        goaway_after_streams=goaway_after,
                    )
                    break
                except Exception:  # the port may take a moment to be free again
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            conn.send((server.url, str(server.ca_file)))
        elif command == "counters":
            conn.send(counters())
        elif command == "stop":
            final = counters()
            server.stop()
            conn.send(final)
            return
        else:
            conn.send(RuntimeError(f"unknown command {command!r}"))


class MockProcess:
    """The mock's child process, commanded from one thread (never blocks the event loop)."""

    def __init__(self, p8: bytes) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=serve_mock, args=(p8, child_end), daemon=True)
        self.process.start()
        if not self.conn.poll(60):
            self.process.kill()
            raise SystemExit("the mock server did not start")
        self.url, self.ca_file = self.conn.recv()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="soak-mock")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def _call(self, *command: Any) -> Any:
        self.conn.send(command)
        if not self.conn.poll(60):
            raise RuntimeError(f"the mock did not answer {command[0]!r}")
        answer = self.conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def call(self, *command: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, *command)

    async def stop(self) -> dict[str, int]:
        counters: dict[str, int] = await self.call("stop")
        self.process.join(30)
        self._thread.shutdown()
        return counters


# -- the schedule -----------------------------------------------------------------------------


class Schedule:
    """Faults drawn from one seeded RNG: token kinds per round from a shuffled deck with clean
    cards; server events at random gaps from their own shuffled deck."""

    def __init__(self, seed: int, event_interval: float) -> None:
        self.rng = random.Random(seed)
        self.event_interval = event_interval
        self._deck: list[str | None] = []
        self._events: list[str] = []

    def _card(self) -> str | None:
        if not self._deck:
            self._deck = [*TOKEN_FAULTS, *([None] * CLEAN_CARDS)]
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def round(self, n: int) -> tuple[dict[int, str], bool]:
        """Positions of the fault tokens of the next round, and whether it uses stream()."""
        cards = [self._card() for _ in range(2 if self.rng.random() < 0.3 else 1)]
        faults: dict[int, str] = {}
        for kind in cards:
            if kind is None:
                continue
            for _ in range(self.rng.randint(1, TOKEN_FAULTS[kind][2])):
                faults[self.rng.randrange(n)] = kind
        return faults, self.rng.randrange(STREAM_EVERY) == 0

    def next_event(self) -> tuple[float, str, int | None]:
        """(seconds to wait, event, parameter)."""
        if not self._events:
            self._events = list(SERVER_EVENTS)
            self.rng.shuffle(self._events)
        event = self._events.pop()
        gap = self.event_interval * self.rng.uniform(0.5, 1.5)
        parameter = None
        if event == "maxstreams":
            parameter = self.rng.choice([1, 5, 50])
        elif event == "goaway-after":
            parameter = self.rng.randint(1_500, 5_000)
        return gap, event, parameter

    def hold(self) -> float:
        return self.rng.uniform(0.2, 1.0)


# -- one round --------------------------------------------------------------------------------


@dataclass
class RoundState:
    rid: int
    generation: int
    exposed: bool = False  # a connection fault happened while it ran


@dataclass
class Soak:
    mock: MockProcess
    schedule: Schedule
    message: Any
    started: float = field(default_factory=time.monotonic)
    completed: int = 0
    rounds_done: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    #: non-hang timeouts: (round, kind, client generation, connection id), judged at the end
    stray_timeouts: list[tuple[int, str, int, int | None]] = field(default_factory=list)
    blackholed: set[tuple[int, int | None]] = field(default_factory=set)
    active: dict[int, RoundState] = field(default_factory=dict)
    #: client generations whose server was restarted under them
    restarted: set[int] = field(default_factory=set)
    live_connection_faults: int = 0

    def violation(self, text: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(text)
        print(f"VIOLATION: {text}", file=sys.stderr)


def label(r: Any) -> str:
    outcome = r.outcome.value
    if outcome == "rejected":
        return f"rejected {r.status}"
    if outcome == "failed":
        if r.maybe_delivered:
            return "failed (maybe delivered)"
        if r.status:
            return f"failed {r.status} (retries exhausted)"
        if "refused stream" in (r.error or ""):
            return "failed (refused stream)"
        return "failed (not sent)"
    return outcome


EXPECTED = {
    None: {"delivered"},
    "hang": {"timeout"},
    "reset": {"failed (maybe delivered)"},
    "refused": {"failed (refused stream)"},
    "429": {"rejected 429"},
    "500": {"failed 500 (retries exhausted)"},
    "503": {"failed 503 (retries exhausted)"},
    "410": {"rejected 410"},
    "bad-token": {"rejected 400"},
    "delay": {"delivered"},
    "goaway": {"failed (maybe delivered)"},
    "close": {"failed (maybe delivered)"},
    "blackhole": {"failed (maybe delivered)"},
}
COLLATERAL = {"failed (maybe delivered)", "failed (not sent)", "timeout"}


def check_round(
    soak: Soak,
    state: RoundState,
    tokens: list[str],
    faults: dict[int, str],
    results: list[Any],
    counts: array[int],
) -> None:
    rid, n = state.rid, len(tokens)
    exposed = state.exposed or state.generation in soak.restarted
    if len(results) != n:
        soak.violation(f"round {rid}: {len(results)} results for {n} notifications")
    seen = bytearray(n)
    for r in results:
        if not 0 <= r.index < n:
            soak.violation(f"round {rid}: result index {r.index} out of range")
            continue
        seen[r.index] += 1
        if r.token != tokens[r.index]:
            soak.violation(f"round {rid}: index {r.index} carries token {r.token}")
    if seen.count(1) != n:
        soak.violation(
            f"round {rid}: {seen.count(0)} notifications without a result, "
            f"{n - seen.count(0) - seen.count(1)} with several"
        )
    for r in results:
        if not 0 <= r.index < n:
            continue
        kind = faults.get(r.index)
        what = label(r)
        soak.outcomes[(kind or "normal", what)] += 1
        c = counts[r.index]
        where = f"round {rid} #{r.index} ({kind or 'normal'}): {what}, received {c}"
        if c > r.attempts:
            soak.violation(f"{where} > {r.attempts} attempts")
        if r.delivered and (c != 1 or r.maybe_delivered):
            soak.violation(f"{where}: delivered but not received exactly once")
        elif r.outcome.value == "rejected" and c < 1:
            soak.violation(f"{where}: rejected by a server that never received it")
        elif what == "failed (not sent)" and c != 0:
            # Earlier sends were answered 5xx, or refused (REFUSED_STREAM: never processed,
            # though the mock counts it).
            if kind not in ("500", "503", "refused"):
                soak.violation(f"{where}: reported not sent")
        elif what == "failed (refused stream)" and c < 1:
            # Not every attempt must have reached the mock (one may have gone down with a
            # connection, or been GOAWAY'd unprocessed); the last one was refused by it.
            soak.violation(f"{where}: refused, but the server never received it")
        if what not in EXPECTED[kind] and not (exposed and what in COLLATERAL):
            soak.violation(f"{where}: unexpected ({r.error})")
        if what == "timeout" and kind != "hang":
            soak.stray_timeouts.append((rid, kind or "normal", state.generation, r.connection_id))
        if kind == "blackhole" and r.outcome.value in ("failed", "timeout"):
            soak.blackholed.add((state.generation, r.connection_id))


async def run_round(
    soak: Soak, client: Any, generation: int, rid: int, faults: dict[int, str], streamed: bool
) -> None:
    state = RoundState(rid, generation)
    connection_faults = any(k in CONNECTION_FAULTS for k in faults.values())
    if connection_faults:
        soak.live_connection_faults += 1
        for other in soak.active.values():
            other.exposed = True
    state.exposed = soak.live_connection_faults > 0
    soak.active[rid] = state
    for kind in faults.values():
        soak.faults[kind] += 1
    tokens = round_tokens(rid, ROUND_SIZE, faults)
    try:
        await soak.mock.call("begin", rid, ROUND_SIZE, faults)
        if streamed:
            results = []
            items = ((t, soak.message, None) for t in tokens)
            async for r in client.stream(items):
                results.append(r)
                soak.completed += 1
            results.sort(key=lambda r: r.index)
        else:
            results = list(await client.send_to_tokens(soak.message, tokens))
            soak.completed += len(results)
        counts = array("l")
        counts.frombytes(await soak.mock.call("end", rid))
    finally:
        del soak.active[rid]
        if connection_faults:
            soak.live_connection_faults -= 1
    check_round(soak, state, tokens, faults, results, counts)
    soak.rounds_done += 1


# -- the run ----------------------------------------------------------------------------------


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def soak_main(args: argparse.Namespace, p8: bytes) -> dict[str, Any]:
    import pushwire

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    message = pushwire.Message(
        {"aps": {"alert": {"title": "Soak", "body": "Hello from the soak"}}}, topic=TOPIC
    )
    mock = MockProcess(p8)
    schedule = Schedule(args.seed, args.event_interval)
    soak = Soak(mock, schedule, message)
    samples: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    client_stats: Counter[str] = Counter()
    generation = 0
    client = pushwire.APNsClient(
        credentials, base_url=mock.url, ca_file=mock.ca_file, **CLIENT_OPTIONS
    )
    open_rounds: dict[int, asyncio.Task[None]] = {}
    can_start = asyncio.Event()
    can_start.set()
    slots = asyncio.Semaphore(CONCURRENT_ROUNDS)
    start = soak.started = time.monotonic()
    end = start + args.duration

    def take_sample(drain: bool = False) -> None:
        mine = proc_status()
        theirs = proc_status(mock.pid)
        samples.append(
            {
                "t": round(time.monotonic() - start, 2),
                "rss_mb": round(mine["VmRSS"] / 1024, 1),
                "fds": open_fds(),
                "threads": mine["Threads"],
                "completed": soak.completed,
                "mock_rss_mb": round(theirs["VmRSS"] / 1024, 1),
                "mock_fds": open_fds(mock.pid),
                "rounds": soak.rounds_done,
                "client": generation,
                **({"drain": True} if drain else {}),
            }
        )

    async def sampler() -> None:
        while True:
            take_sample()
            await asyncio.sleep(args.sample)

    event_running = asyncio.Lock()

    async def server_events() -> None:
        while True:
            gap, event, parameter = schedule.next_event()
            await asyncio.sleep(gap)
            if time.monotonic() >= end:
                return
            async with event_running:
                await server_event(event, parameter)

    async def server_event(event: str, parameter: int | None) -> None:
        nonlocal client, generation
        at = round(time.monotonic() - start, 2)
        soak.faults[event] += 1
        if event == "maxstreams":
            hold = schedule.hold()
            await mock.call("streams", parameter)
            await asyncio.sleep(hold)
            await mock.call("streams", 1000)
            events.append({"t": at, "event": event, "limit": parameter, "hold_s": hold})
            return
        # A restart: no new round until a client trusting the new CA is ready.
        can_start.clear()
        soak.restarted.add(generation)
        url, ca_file = await mock.call("restart", parameter)
        await asyncio.gather(*open_rounds.values(), return_exceptions=True)
        client_stats.update(client.stats())
        await client.aclose()
        generation += 1
        client = pushwire.APNsClient(credentials, base_url=url, ca_file=ca_file, **CLIENT_OPTIONS)
        events.append(
            {
                "t": at,
                "event": event,
                "goaway_after": parameter,
                "paused_s": round(time.monotonic() - start - at, 2),
            }
        )
        can_start.set()

    background = [asyncio.ensure_future(sampler()), asyncio.ensure_future(server_events())]
    rid = 0
    try:
        while time.monotonic() < end:
            await can_start.wait()
            await slots.acquire()
            if not can_start.is_set() or time.monotonic() >= end:
                slots.release()
                continue
            faults, streamed = schedule.round(ROUND_SIZE)
            task = asyncio.ensure_future(run_round(soak, client, generation, rid, faults, streamed))
            open_rounds[rid] = task

            def finished(task: asyncio.Task[None], rid: int = rid) -> None:
                open_rounds.pop(rid, None)
                slots.release()
                if not task.cancelled() and task.exception() is not None:
                    soak.violation(f"round {rid} raised {task.exception()!r}")

            task.add_done_callback(finished)
            rid += 1
        # The end of the timed run; the rounds still in flight then finish (the drain, with
        # its lone hang timeouts, is left out of the windows).
        background[0].cancel()
        take_sample()
        await asyncio.wait_for(
            asyncio.gather(*open_rounds.values(), return_exceptions=True),
            REQUEST_TIMEOUT * 10 + 60,
        )
        take_sample(drain=True)
    finally:
        async with event_running:  # let a server event in progress finish
            for task in background:
                task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        client_stats.update(client.stats())
        await client.aclose()
        mock_counters = await mock.stop()
    elapsed = time.monotonic() - start
    for rid_, kind, gen, cid in soak.stray_timeouts:
        if (gen, cid) not in soak.blackholed:
            soak.violation(
                f"round {rid_}: a {kind} token timed out on connection {gen}/{cid}, "
                "which was not blackholed"
            )
    return {
        "elapsed_s": round(elapsed, 1),
        "samples": samples,
        "events": events,
        "rounds": soak.rounds_done,
        "notifications": soak.completed,
        "clients": generation + 1,
        "faults": dict(soak.faults),
        "outcomes": [[k, o, n] for (k, o), n in sorted(soak.outcomes.items())],
        "stray_timeouts": len(soak.stray_timeouts),
        "violations": soak.violations,
        "client_stats": dict(client_stats),
        "mock": mock_counters,
    }


# -- analysis and report ----------------------------------------------------------------------


def windows(run: dict[str, Any], duration: float) -> list[dict[str, Any]]:
    """Per window (a fifth of the run): RSS, fds, threads, throughput."""
    samples = [s for s in run["samples"] if not s.get("drain")]
    width = duration / WINDOWS
    warmup = min(WARMUP_S, duration / 10)
    out = []
    for w in range(WINDOWS):
        lo, hi = w * width, (w + 1) * width
        inside = [s for s in samples if lo <= s["t"] < hi or (w == WINDOWS - 1 and s["t"] >= hi)]
        if not inside:
            continue
        # Memory figures leave out the warm-up (imports, first connections, first rounds).
        steady = [s for s in inside if s["t"] >= warmup] or inside
        # Throughput from the last sample before the window to its last sample.
        before = [s for s in samples if s["t"] < lo] or [samples[0]]
        first, last = before[-1], inside[-1]
        seconds = last["t"] - first["t"]
        out.append(
            {
                "window": w + 1,
                "from_s": round(lo),
                "to_s": round(hi),
                "samples": len(inside),
                "rss_median_mb": statistics.median(s["rss_mb"] for s in steady),
                "rss_max_mb": max(s["rss_mb"] for s in steady),
                "fds_min": min(s["fds"] for s in inside),
                "fds_max": max(s["fds"] for s in inside),
                "threads_min": min(s["threads"] for s in inside),
                "threads_max": max(s["threads"] for s in inside),
                "mock_rss_median_mb": statistics.median(s["mock_rss_mb"] for s in inside),
                "mock_fds_max": max(s["mock_fds"] for s in inside),
                "rate": (last["completed"] - first["completed"]) / seconds if seconds else 0.0,
            }
        )
    return out


def criteria(run: dict[str, Any], per_window: list[dict[str, Any]]) -> list[dict[str, Any]]:
    samples = run["samples"]
    first, last = per_window[0], per_window[-1]
    growth = last["rss_median_mb"] / first["rss_median_mb"] - 1
    # The first sample is taken before the first client exists.
    steady = samples[1:] or samples
    fds = [s["fds"] for s in steady]
    threads = [s["threads"] for s in steady]
    rates = [w["rate"] for w in per_window]
    median_rate = statistics.median(rates)
    worst = max(abs(r / median_rate - 1) for r in rates) if median_rate else float("inf")
    return [
        {
            "criterion": "RSS: last-window median vs first-window median",
            "limit": f"< +{RSS_GROWTH_LIMIT:.0%}",
            "measured": f"{growth:+.1%} ({first['rss_median_mb']:.1f} → "
            f"{last['rss_median_mb']:.1f} MB)",
            "ok": growth < RSS_GROWTH_LIMIT,
        },
        {
            "criterion": "open file descriptors: max - min over the run",
            "limit": f"≤ {FD_SPREAD_LIMIT}",
            "measured": f"{max(fds) - min(fds)} ({min(fds)}-{max(fds)})",
            "ok": max(fds) - min(fds) <= FD_SPREAD_LIMIT,
        },
        {
            "criterion": "threads: max - min over the run",
            "limit": f"≤ {THREAD_SPREAD_LIMIT}",
            "measured": f"{max(threads) - min(threads)} ({min(threads)}-{max(threads)})",
            "ok": max(threads) - min(threads) <= THREAD_SPREAD_LIMIT,
        },
        {
            "criterion": "notifications/s per window vs the windows' median",
            "limit": f"within ±{THROUGHPUT_BAND:.0%}",
            "measured": f"worst {worst:+.0%} off {median_rate:,.0f}/s "
            f"({min(rates):,.0f}-{max(rates):,.0f}/s)",
            "ok": worst <= THROUGHPUT_BAND,
        },
        {
            "criterion": "every result truthful (see the checks)",
            "limit": "0 violations",
            "measured": f"{len(run['violations'])} violations",
            "ok": not run["violations"],
        },
    ]


def report(args: argparse.Namespace, run: dict[str, Any], loads: tuple[str, str]) -> str:
    import pushwire

    per_window = run["windows"]
    unit = "minute" if abs(args.duration - 300) < 1 else "window"
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    lines = [
        "## Soak: continuous sending under random faults",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- Machine: nproc={os.cpu_count()}, {platform.platform()}; Python "
        f"{platform.python_version()}, pushwire {pushwire.__version__}, {loop}",
        f"- Command: `{run['command']}` (seed {args.seed}); {run['elapsed_s']:.0f} s, "
        f"{run['rounds']:,} rounds of {ROUND_SIZE:,}, {run['notifications']:,} notifications, "
        f"{run['clients']} client(s) (a new one after each restart)",
        "- Mock: `pushwire.testing.MockAPNs` (ES256 provider tokens checked) in a child process "
        "commanded over a pipe; `APNsClient(request_timeout=3, ping_interval=0.5, "
        "ping_timeout=1, max_in_flight=20000)`, 2 rounds in flight",
        f"- Load average (1/5/15 min) at start {loads[0]}, at end {loads[1]}. The machine is "
        "shared (2 cores, other jobs running): throughput varies with their load; RSS, "
        "descriptors and the result checks do not depend on it. It may be rerun later.",
        "",
        f"| {unit} | RSS median MB | RSS max MB | fds min-max | threads | notifications/s | "
        "mock RSS MB | mock fds max |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in per_window:
        lines.append(
            f"| {w['window']} ({w['from_s']}-{w['to_s']} s) | {w['rss_median_mb']:.1f} | "
            f"{w['rss_max_mb']:.1f} | {w['fds_min']}-{w['fds_max']} | "
            f"{w['threads_min']}-{w['threads_max']} | {w['rate']:,.0f} | "
            f"{w['mock_rss_median_mb']:.1f} | {w['mock_fds_max']} |"
        )
    rates = [w["rate"] for w in per_window]
    lines += [
        "",
        f"Throughput per {unit}: median {statistics.median(rates):,.0f}/s, min "
        f"{min(rates):,.0f}/s (completed notifications, whatever their outcome, including the "
        "pauses of the restarts).",
        "",
        "| criterion | limit | measured | |",
        "|---|---|---|---|",
    ]
    for c in run["criteria"]:
        lines.append(
            f"| {c['criterion']} | {c['limit']} | {c['measured']} | "
            f"{'ok' if c['ok'] else '**VIOLATED**'} |"
        )
    token_faults = {k: v for k, v in run["faults"].items() if k in TOKEN_FAULTS}
    server_faults = {k: v for k, v in run["faults"].items() if k not in TOKEN_FAULTS}
    lines += [
        "",
        "Faults injected: tokens "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(token_faults.items(), key=lambda x: -x[1]))
        + "; server events "
        + (", ".join(f"{k} {v}" for k, v in sorted(server_faults.items())) or "none")
        + ".",
        "",
        "| token kind | outcomes |",
        "|---|---|",
    ]
    by_kind: dict[str, list[str]] = {}
    for kind, outcome, n in run["outcomes"]:
        by_kind.setdefault(kind, []).append(f"{outcome} {n:,}")
    for kind in ["normal", *TOKEN_FAULTS]:
        if kind in by_kind:
            lines.append(f"| {kind} | {', '.join(by_kind[kind])} |")
    stats = run["client_stats"]
    lines += [
        "",
        f"Client counters (all clients): {stats.get('connections_opened', 0):,} connections "
        f"opened, {stats.get('connect_failures', 0):,} connect failures, "
        f"{stats.get('goaways', 0):,} GOAWAYs, {stats.get('retries', 0):,} retries, "
        f"{stats.get('resets', 0):,} resets, {stats.get('timeouts', 0):,} timeouts, "
        f"{stats.get('ping_failures', 0):,} PING failures. Mock: "
        f"{run['mock']['received']:,} requests received, {run['mock']['connections']:,} "
        f"connections, {run['mock']['refused_streams']:,} streams refused over the limit. "
        f"Timeouts of non-hang tokens: {run['stray_timeouts']:,} (all on blackholed "
        "connections, or they count as violations).",
        "",
        "The mock's RSS grows with the run because it keeps a received count for every "
        "distinct token (each round's tokens are new; a restart empties it): that is the "
        "test server's bookkeeping, not pushwire's.",
        "",
        "Collateral outcomes (`failed` maybe delivered, `failed` not sent, `timeout`) are "
        "accepted for tokens of rounds in flight during a connection fault (goaway, close, "
        "blackhole) or a restart, and nowhere else. Series: "
        f"`{run['series']}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of sending (300; --quick 30)")
    parser.add_argument("--quick", action="store_true", help="30 s smoke run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=float, help="seconds between samples (5; --quick 1)")
    parser.add_argument(
        "--event-interval", type=float, help="mean seconds between server events (20; --quick 5)"
    )
    parser.add_argument("--series", type=Path, help="time series + summary JSON")
    parser.add_argument("--results", type=Path, help="Markdown file to merge the section into")
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (30.0 if quick else 300.0)
    args.sample = args.sample or (1.0 if quick else 5.0)
    args.event_interval = args.event_interval or (5.0 if quick else 20.0)
    if args.series is None:
        args.series = REPO / "benches" / ("out/soak-quick.json" if quick else "soak-series.json")
    if args.results is None and not quick:
        args.results = REPO / "benches" / "RESULTS.md"

    runner: Any
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    loads = load_average()
    print(
        f"soak: {args.duration:.0f} s, seed {args.seed}, rounds of {ROUND_SIZE:,}",
        file=sys.stderr,
    )
    with runner:
        run = runner.run(soak_main(args, make_p8()))
    run["command"] = " ".join(["python benches/soak.py", *argv]).strip()
    run["windows"] = windows(run, args.duration)
    run["criteria"] = criteria(run, run["windows"])
    run["seed"] = args.seed
    try:
        run["series"] = str(args.series.resolve().relative_to(REPO))
    except ValueError:
        run["series"] = str(args.series)
    section = report(args, run, (loads, load_average()))
    args.series.parent.mkdir(parents=True, exist_ok=True)
    args.series.write_text(json.dumps(run, indent=1) + "\n")
    print(section)
    if args.results is not None:
        merge_section(args.results, "soak", section)
        print(f"merged the soak section into {args.results}", file=sys.stderr)
    ok = all(c["ok"] for c in run["criteria"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
