"""`pushwire demo`: the whole product against the embedded mock server.

Sends a realistic mixed batch (APNs: alerts, Live Activity updates, background pushes; FCM:
notifications, data messages, high-priority Android messages) where a few percent of tokens
are dead, malformed for the provider or never answered, and shows what a bulk sender sees:
live progress, throughput, latency, outcomes by reason, tokens to drop. Throwaway credentials
(an EC .p8 key, or an RSA service account) are made for the run and checked by the mock like
the real services do.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Union

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.table import Table

from .._classify import classify
from .._client import AnyPushClient
from .._message import Message, Notification
from .._oauth import ServiceAccountCredentials
from ..credentials import TokenCredentials
from ..fcm import AndroidConfig, FCMMessage, FCMNotification
from ..testing import MockAPNs, MockFCM
from .console import Console
from .errors import EXIT_SOME_FAILED, echo_error, user_errors
from .options import ConfigOption
from .output import DropTokens, ResultsWriter
from .report import LiveProgress, Tally, summary_table

#: Token prefixes the mock answers specially (hex, so they are valid APNs tokens too).
DEAD, BAD, HANG = "dead", "bad0", "eeee"
RULES = {DEAD: "unregistered", BAD: "bad-token", HANG: "hang"}


@dataclass
class DemoOptions:
    count: int = 200_000
    dead_percent: float = 2.0
    bad_percent: float = 1.0
    hang_percent: float = 0.5
    request_timeout: float = 2.0
    results_path: Path | None = None
    progress: bool = True
    fcm: bool = False
    seed: int = 7


@dataclass
class DemoSummary:
    tally: Tally
    #: Distinct input positions that got a result (each must get exactly one).
    unique_indexes: int
    server_received: int
    tokens_to_drop: int
    results_path: Path | None


def _apns_messages() -> list[Message]:
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


def _fcm_messages() -> list[FCMMessage]:
    alert = FCMMessage(
        notification=FCMNotification(title="Your order shipped", body="Arrives Thursday"),
        data={"order": "42"},
    )
    urgent = FCMMessage(
        notification=FCMNotification(title="Courier nearby", body="7 minutes away"),
        android=AndroidConfig(priority="HIGH", ttl=600),
    )
    data_only = FCMMessage(data={"sync": "orders"})
    return [alert, urgent, data_only]  # same order as the APNs kinds: common, rare, some


def _token_kind(rng: random.Random, opts: DemoOptions) -> str:
    roll = rng.random() * 100
    if roll < opts.dead_percent:
        return DEAD
    if roll < opts.dead_percent + opts.bad_percent:
        return BAD
    if roll < opts.dead_percent + opts.bad_percent + opts.hang_percent:
        return HANG
    return ""


def _token(prefix: str, i: int, fcm: bool) -> str:
    if fcm:  # shaped like an FCM registration token: opaque, ~160 characters
        return f"{prefix}{i:0{24 - len(prefix)}x}:APA91b" + "Xy_z-" * 26
    return prefix + format(i, f"0{64 - len(prefix)}x")


class _Notifications:
    """The demo's notifications, generated as the client asks for them; counts them, so
    that in flight = handed out - results."""

    def __init__(self, opts: DemoOptions) -> None:
        self.opts = opts
        self.handed_out = 0

    def __iter__(self) -> Iterator[Notification]:
        opts = self.opts
        rng = random.Random(opts.seed)
        common, rare, some = _fcm_messages() if opts.fcm else _apns_messages()
        for i in range(opts.count):
            roll = i % 20
            message = rare if roll == 0 else some if roll < 4 else common
            self.handed_out += 1
            yield Notification(_token(_token_kind(rng, opts), i, opts.fcm), message)


def _throwaway_p8(directory: Path) -> TokenCredentials:
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


def _throwaway_service_account() -> ServiceAccountCredentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return ServiceAccountCredentials(
        {
            "type": "service_account",
            "project_id": "pushwire-demo",
            "private_key_id": "demo-key-1",
            "private_key": pem,
            "client_email": "demo@pushwire-demo.iam.gserviceaccount.com",
        }
    )


async def _send(
    client: AnyPushClient,
    opts: DemoOptions,
    tally: Tally,
    results: ResultsWriter,
    drops: DropTokens,
    progress: LiveProgress,
) -> int:
    """Stream every notification, record each result; returns the distinct indexes seen."""
    seen = bytearray(opts.count)
    unique = 0
    notifications = _Notifications(opts)

    def in_flight() -> int:
        return notifications.handed_out - tally.results

    async with client:
        async for r in client.stream(notifications):
            classification = classify(r)
            results.write(r, classification.action, r.index, None)
            drops.observe(r, classification, None)
            tally.add(r)
            if not seen[r.index]:
                seen[r.index] = 1
                unique += 1
            progress.update(tally, in_flight, tally.results)
        tally.stop()
        progress.update(tally, in_flight, tally.results, force=True)
    return unique


def run_demo(opts: DemoOptions, console: Console) -> DemoSummary:
    # Results only where asked (--results): 200,000 rows are ~50 MB, not for the cwd.
    results_path = opts.results_path
    server: Union[MockAPNs, MockFCM]
    with tempfile.TemporaryDirectory(prefix="pushwire-demo-") as tmp:
        if opts.fcm:
            server = MockFCM(credentials=_throwaway_service_account(), rules=RULES)
            what = "mock FCM v1 (TLS, HTTP/2, OAuth2 service-account grant checked)"
        else:
            server = MockAPNs(credentials=_throwaway_p8(Path(tmp)), rules=RULES)
            what = "mock APNs (TLS, HTTP/2, JWT checked)"
        with server:
            console.print(f"{what} at [bold]{server.url}[/]; sending {opts.count:,} notifications")
            client = server.client(request_timeout=opts.request_timeout)
            tally = Tally()
            results = ResultsWriter(results_path, id_field="message_id" if opts.fcm else "apns_id")
            drops = DropTokens(None)
            progress = LiveProgress(console, enabled=opts.progress, total=opts.count)
            try:
                with progress:
                    unique = asyncio.run(_send(client, opts, tally, results, drops, progress))
            finally:
                results.close()
                drops.finish()
            received = server.total_received
    summary = DemoSummary(tally, unique, received, drops.count, results_path)
    console.print(_summary_table(summary))
    # Outside the table: a long path must stay on one line to be copied.
    if results_path is not None:
        console.print(f"full results: {results_path}", markup=False, soft_wrap=True)
    else:
        console.print("full results: not kept (add --results FILE)", markup=False)
    for warning in drops.warnings:
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    return summary


def _summary_table(s: DemoSummary) -> Table:
    return summary_table(
        "pushwire demo",
        s.tally,
        before=[
            ("notifications", f"{s.tally.results:,} results for {s.unique_indexes:,} inputs"),
            ("server received", f"{s.server_received:,}"),
        ],
        after=[("tokens to drop", f"{s.tokens_to_drop:,}")],
    )


def demo_command(
    count: Annotated[int, typer.Option(min=1, help="Notifications to send.")] = 200_000,
    fcm: Annotated[
        bool, typer.Option("--fcm", help="Send FCM messages to a mock FCM instead of APNs.")
    ] = False,
    dead_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of dead tokens (APNs 410, FCM 404).")
    ] = 2.0,
    bad_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of malformed tokens (400).")
    ] = 1.0,
    hang_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of tokens the server never answers.")
    ] = 0.5,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-stream deadline, s.")] = 2.0,
    results: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Write one JSON line per notification (default: none)."),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Live progress bar (only when stdout is a terminal).")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Send a realistic mixed batch through the embedded mock server and summarise it."""
    console = Console()
    with user_errors():
        summary = run_demo(
            DemoOptions(
                count=count,
                dead_percent=dead_percent,
                bad_percent=bad_percent,
                hang_percent=hang_percent,
                request_timeout=request_timeout,
                results_path=results,
                progress=progress and console.is_terminal,
                fcm=fcm,
            ),
            console,
        )
    if summary.unique_indexes != count or summary.tally.results != count:
        echo_error(f"expected {count} results, got {summary.tally.results}")
        raise typer.Exit(EXIT_SOME_FAILED)
