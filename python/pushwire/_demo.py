"""`pushwire demo`: the whole product against the embedded mock server.

Sends a realistic mixed batch (alerts, Live Activity updates, background pushes) where a few
percent of tokens are dead (410), malformed for APNs (400) or never answered, and shows what a
bulk sender sees: live progress, throughput, latency, outcomes by reason, tokens to drop.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._apns import APNsClient
from ._message import Message, Notification
from ._results import Outcome, Result
from .credentials import TokenCredentials
from .testing import MockAPNs

#: Token prefixes the mock answers specially (tokens are hex, so are the prefixes).
DEAD, BAD, HANG = "dead", "bad0", "eeee"


@dataclass
class DemoOptions:
    count: int = 200_000
    dead_percent: float = 2.0
    bad_percent: float = 1.0
    hang_percent: float = 0.5
    request_timeout: float = 2.0
    results_path: Path | None = None
    progress: bool = True
    seed: int = 7


@dataclass
class Summary:
    sent: int = 0
    elapsed: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    drop_tokens: int = 0
    results_path: Path | None = None
    unique_indexes: int = 0

    def add(self, r: Result) -> None:
        self.outcomes[r.outcome.value] += 1
        if r.reason:
            self.reasons[f"{r.status} {r.reason}"] += 1
        elif r.outcome is Outcome.TIMEOUT:
            self.reasons["no answer (timeout)"] += 1
        if r.status == 410:
            self.drop_tokens += 1
        self.latencies.append(r.latency)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _messages() -> list[Message]:
    alert = Message(
        {
            "aps": {
                "alert": {"title": "Your order shipped", "body": "Arrives Thursday"},
                "sound": "default",
            }
        },
        topic="com.example.shop",
    )
    live = Message(
        {
            "aps": {
                "event": "update",
                "timestamp": int(time.time()),
                "content-state": {"courier": "Ana", "minutesAway": 7},
            }
        },
        topic="com.example.shop",
        push_type="liveactivity",
        priority=10,
    )
    background = Message(
        {"aps": {"content-available": 1}, "sync": "orders"},
        topic="com.example.shop",
        push_type="background",
    )
    return [alert, live, background]


def _token_kind(rng: random.Random, opts: DemoOptions) -> str:
    roll = rng.random() * 100
    if roll < opts.dead_percent:
        return DEAD
    if roll < opts.dead_percent + opts.bad_percent:
        return BAD
    if roll < opts.dead_percent + opts.bad_percent + opts.hang_percent:
        return HANG
    return ""


def _notifications(opts: DemoOptions) -> Iterator[Notification]:
    rng = random.Random(opts.seed)
    alert, live, background = _messages()
    for i in range(opts.count):
        prefix = _token_kind(rng, opts)
        token = prefix + format(i, f"0{64 - len(prefix)}x")
        roll = i % 20
        message = live if roll == 0 else background if roll < 4 else alert
        yield Notification(token, message)


def _throwaway_credentials(directory: Path) -> TokenCredentials:
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "AuthKey_DEMO000001.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return TokenCredentials(path, key_id="DEMO000001", team_id="TEAMDEMO01")


async def _send(client: APNsClient, opts: DemoOptions, summary: Summary, console: Console) -> None:
    assert summary.results_path is not None
    seen = bytearray(opts.count)
    progress = Progress(
        TextColumn("[bold]sending"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>9,.0f}/s"),
        TextColumn("in flight {task.fields[in_flight]:>6,}"),
        TextColumn("{task.fields[outcomes]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not opts.progress,
        transient=False,
    )
    fd = os.open(summary.results_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    encode = msgspec.json.Encoder().encode
    start = time.perf_counter()
    with os.fdopen(fd, "wb") as out, progress:
        task = progress.add_task("send", total=opts.count, rate=0.0, in_flight=0, outcomes="")
        last_update = 0.0
        async for r in client.stream(_notifications(opts)):
            summary.add(r)
            if not seen[r.index]:
                seen[r.index] = 1
                summary.unique_indexes += 1
            out.write(encode(r))
            out.write(b"\n")
            now = time.perf_counter()
            if now - last_update > 0.1:
                last_update = now
                done = sum(summary.outcomes.values())
                progress.update(
                    task,
                    completed=done,
                    rate=done / (now - start),
                    in_flight=client._engine.outstanding(),
                    outcomes="  ".join(f"{k} {v:,}" for k, v in sorted(summary.outcomes.items())),
                )
        summary.elapsed = time.perf_counter() - start
        done = sum(summary.outcomes.values())
        progress.update(task, completed=done, rate=done / summary.elapsed, in_flight=0)
    summary.sent = sum(summary.outcomes.values())


def run_demo(opts: DemoOptions, console: Console) -> Summary:
    summary = Summary()
    with tempfile.TemporaryDirectory(prefix="pushwire-demo-") as tmp:
        tmpdir = Path(tmp)
        summary.results_path = opts.results_path or Path.cwd() / "pushwire-demo-results.jsonl"
        creds = _throwaway_credentials(tmpdir)
        rules = {DEAD: "unregistered", BAD: "bad-token", HANG: "hang"}
        with MockAPNs(credentials=creds, rules=rules) as server:
            console.print(
                f"mock APNs at [bold]{server.url}[/] (TLS, HTTP/2, JWT checked); "
                f"sending {opts.count:,} notifications"
            )

            async def main() -> None:
                async with server.client(request_timeout=opts.request_timeout) as client:
                    await _send(client, opts, summary, console)

            asyncio.run(main())
            received = server.total_received
    console.print(_summary_table(summary, received))
    return summary


def _summary_table(s: Summary, received: int) -> Table:
    table = Table(title="pushwire demo", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rate = s.sent / s.elapsed if s.elapsed else 0.0
    table.add_row("notifications", f"{s.sent:,} results for {s.unique_indexes:,} inputs")
    table.add_row("server received", f"{received:,}")
    table.add_row("throughput", f"{rate:,.0f} notifications/s ({s.elapsed:.2f} s)")
    table.add_row(
        "latency p50 / p99",
        f"{s.percentile(0.5) * 1000:.1f} ms / {s.percentile(0.99) * 1000:.1f} ms",
    )
    for outcome, n in sorted(s.outcomes.items()):
        table.add_row(f"outcome {outcome}", f"{n:,}")
    for reason, n in s.reasons.most_common():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("tokens to drop (410)", f"{s.drop_tokens:,}")
    table.add_row("full results", str(s.results_path))
    return table
