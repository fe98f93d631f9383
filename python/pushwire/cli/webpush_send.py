"""`pushwire send --subscriptions FILE`: one Web Push message to the browser subscriptions of
a file, each result recorded.

The file is JSON lines of what the browser's ``PushSubscription.toJSON()`` gives
(``{"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}``). Every line is checked before
anything is sent: a bad one stops the command with one line naming the line and the field
(exit 2). The message is ``--title``/``--body`` (the neutral message's Web Push rendering, for
a service worker) or ``--payload FILE`` (its bytes are the plaintext, e.g. a Declarative Web
Push JSON). Gone subscriptions (404/410) go to ``--drop-tokens``; Ctrl-C drains as for
``--input`` sends.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .._classify import classify
from .._errors import ClientClosedError
from .._results import Outcome, Result
from .._webpush import WebPushClient
from ..store.errors import InvalidSubscriptionError
from ..store.message import PushMessage, WebPushOverride
from ..store.validation import check_subscription_keys, subscription_fields
from ..vapid import VapidKey, VapidSigner
from ..webpush import URGENCIES, WebPushMessage, WebPushSubscription
from .console import Console
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, CLIError, echo_warning
from .interrupt import DRAIN_MARGIN, Interrupt
from .output import DropTokens, ResultsWriter
from .report import Tally, summary_table


@dataclass(frozen=True)
class WebPushSendOptions:
    subscriptions: Path
    vapid_key: str | None
    subject: str | None
    payload: Path | None = None
    title: str | None = None
    body: str | None = None
    ttl: int | None = None
    urgency: str | None = None
    results: Path | None = None
    drop_tokens: Path | None = None
    overwrite: bool = False
    ca_file: Path | None = None
    request_timeout: float = 10.0
    max_connections: int = 4
    rate_limit: int | None = None


def read_subscriptions(path: Path) -> list[tuple[int, WebPushSubscription]]:
    """(line number, subscription) of every non-blank line; the first bad line raises a
    :class:`CLIError` naming it and its field. ``-`` reads stdin."""
    name = "stdin" if str(path) == "-" else str(path)
    out: list[tuple[int, WebPushSubscription]] = []
    try:
        f: TextIO = sys.stdin if name == "stdin" else path.open(encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as e:
                raise CLIError(f"{name} line {number}: not valid JSON ({e})") from None
            try:
                endpoint, p256dh, auth = subscription_fields(data)
                p256dh, auth = check_subscription_keys(p256dh, auth)
            except InvalidSubscriptionError as e:
                raise CLIError(f"{name} line {number}: field {e.field}: {e}") from None
            out.append((number, WebPushSubscription(endpoint, p256dh, auth)))
    except UnicodeDecodeError:
        raise CLIError(f"{name} is not UTF-8 text (JSON lines)") from None
    finally:
        if f is not sys.stdin:
            f.close()
    return out


def build_message(opts: WebPushSendOptions) -> WebPushMessage:
    if opts.urgency is not None and opts.urgency not in URGENCIES:
        raise CLIError(f"--urgency must be one of {', '.join(URGENCIES)}")
    if opts.payload is not None:
        if opts.title is not None or opts.body is not None:
            raise CLIError("give --payload FILE or --title/--body, not both")
        try:
            plaintext = opts.payload.read_bytes()
        except OSError as e:
            raise CLIError(f"cannot read {opts.payload}: {e.strerror or e}") from None
        return WebPushMessage(
            plaintext,
            ttl=opts.ttl if opts.ttl is not None else 28 * 24 * 3600,
            urgency=opts.urgency,
        )
    if opts.title is None and opts.body is None:
        raise CLIError("Web Push needs a message: --title/--body, or --payload FILE")
    override = WebPushOverride(ttl=opts.ttl, urgency=opts.urgency)  # type: ignore[arg-type]
    return PushMessage(title=opts.title, body=opts.body, webpush=override).render_webpush()


def _client(opts: WebPushSendOptions) -> WebPushClient:
    if not opts.vapid_key:
        raise CLIError("--subscriptions needs --vapid-key (make one: pushwire vapid generate)")
    if not opts.subject:
        raise CLIError(
            "--subscriptions needs --subject mailto:you@example.com (or an https: URL): the "
            "contact push services see"
        )
    key = VapidKey.load(opts.vapid_key)
    VapidSigner(key, opts.subject)  # the subject's rules, before the input is read
    return WebPushClient(
        key,
        subject=opts.subject,
        ca_file=opts.ca_file,
        request_timeout=opts.request_timeout,
        max_connections=opts.max_connections,
        rate_limit=opts.rate_limit,
    )


def run_webpush_send(opts: WebPushSendOptions, console: Console) -> int:
    """The whole command; returns the exit code. Bad options, key, message or any bad line
    raise before a connection is made."""
    results_path = opts.results
    if (
        results_path is not None
        and not opts.overwrite
        and results_path.exists()
        and results_path.stat().st_size > 0
    ):
        raise CLIError(f"{results_path} already holds results: add --overwrite to replace them")
    message = build_message(opts)
    client = _client(opts)
    subscriptions = read_subscriptions(opts.subscriptions)
    results = ResultsWriter(results_path, id_field="message_id")
    drops = DropTokens(opts.drop_tokens)
    tally = Tally()
    sent: set[int] = set()
    interrupted = False

    async def main() -> None:
        nonlocal interrupted
        async with client:
            interrupt = Interrupt(
                client, opts.request_timeout + DRAIN_MARGIN, lambda: len(sent) - tally.results
            )
            interrupt.install()

            def notifications() -> Iterator[tuple[WebPushSubscription, WebPushMessage, None]]:
                for position, (_, subscription) in enumerate(subscriptions):
                    if interrupt.requested:
                        return
                    sent.add(position)
                    yield (subscription, message, None)

            try:
                async for result in client.stream(notifications()):
                    _record(result, subscriptions, results, drops, tally)
            except ClientClosedError:
                pass
            finally:
                interrupt.remove()
                await interrupt.wait_closed()
                interrupted = interrupt.requested
                tally.stop()

    try:
        asyncio.run(main())
    finally:
        results.close()
        drops.finish()
    after = [("subscriptions to drop", f"{drops.count:,}")]
    not_sent = len(subscriptions) - tally.results
    if not_sent:
        after.append(("not sent (interrupted)", f"{not_sent:,}"))
    before = [("subscriptions", str(opts.subscriptions))]
    console.print(summary_table("pushwire send (Web Push)", tally, before=before, after=after))
    if results_path is not None:
        console.print(f"results: {results_path}", markup=False, soft_wrap=True)
    if opts.drop_tokens is not None:
        console.print(f"subscriptions to drop: {opts.drop_tokens}", markup=False, soft_wrap=True)
    for warning in drops.warnings:
        echo_warning(warning)
    if interrupted or not_sent:
        echo_warning(f"interrupted: {not_sent:,} subscriptions were not sent")
        return EXIT_INTERRUPTED
    if not subscriptions:
        echo_warning(f"{opts.subscriptions} holds no subscriptions: nothing was sent")
    handled = tally.outcomes[Outcome.DELIVERED.value] + drops.count
    return EXIT_OK if tally.results == handled else EXIT_SOME_FAILED


def _record(
    result: Result,
    subscriptions: list[tuple[int, WebPushSubscription]],
    results: ResultsWriter,
    drops: DropTokens,
    tally: Tally,
) -> None:
    line = subscriptions[result.index][0]
    classification = classify(result)
    results.write(result, classification.action, result.index, line)
    drops.observe(result, classification, line)
    tally.add(result)
