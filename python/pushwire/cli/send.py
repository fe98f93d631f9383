"""`pushwire send`: stream an input file of tokens to APNs or FCM, record every row's result.

Rows are read lazily and handed to ``client.stream()``, so memory is bounded by the in-flight
window whatever the input size. Each result is written as it arrives.

Ctrl-C (SIGINT, or SIGTERM) drains: no more input is read, the notifications in flight get
their results (bounded by ``--request-timeout``), everything is written, and the command
exits 130. A second Ctrl-C, or the grace period running out, closes the client: what was
still queued or waiting to be resent is given up, left out of the results file and counted
as not sent. ``--resume`` then sends every row the results file does not hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer

from .._apns import APNsClient
from .._classify import classify
from .._client import AnyPushClient
from .._errors import ClientClosedError
from .._fcm import DEFAULT_BASE_URL, FCMClient
from .._message import Notification
from .._oauth import ServiceAccountCredentials
from .._results import Outcome, Result
from ..credentials import CertificateCredentials, Credentials
from .console import Console
from .credentials import CredentialOptions, apns_credentials, provider, service_account
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    CLIError,
    echo_error,
    echo_warning,
    user_errors,
)
from .input import BadRow, RowSource, open_rows
from .interrupt import DRAIN_MARGIN, Interrupt
from .options import (
    ENDPOINT,
    INPUT,
    OUTPUT,
    P8,
    P12,
    PAYLOAD,
    TUNING,
    BaseUrl,
    CaFile,
    Cert,
    ConfigOption,
    Key,
    KeyId,
    Password,
    ProjectId,
    PushType,
    RequestTimeout,
    ServiceAccount,
    TeamId,
    TokenUri,
    Topic,
    credential_options,
)
from .output import DropTokens, ResultsWriter
from .report import LiveProgress, Tally, summary_table
from .resume import DoneRows, load_done_rows
from .rows import PayloadFlags, RowError, RowMessages, read_payload_file
from .segment import (
    SegmentActor,
    SegmentApnsUrl,
    SegmentData,
    SegmentDb,
    SegmentDeepLink,
    SegmentFcmUrl,
    SegmentFilterOption,
    SegmentImageUrl,
    SegmentJson,
    SegmentMessageFile,
    SegmentPageSize,
    SegmentSilent,
    SegmentUrl,
    tokens_or_segment,
)

#: Bad rows reported one by one on stderr; the rest only in the results file and the summary.
MAX_BAD_ROWS_SHOWN = 20


@dataclass(frozen=True)
class SendOptions:
    input: Path
    format: str | None
    payload: Path | None
    flags: PayloadFlags
    credentials: CredentialOptions
    sandbox: bool = False
    base_url: str | None = None
    ca_file: Path | None = None
    token_uri: str | None = None
    project_id: str | None = None
    results: Path | None = None
    drop_tokens: Path | None = None
    resume: bool = False
    overwrite: bool = False
    strict: bool = False
    request_timeout: float = 10.0
    max_connections: int = 4
    rate_limit: int | None = None
    progress: bool = True


def _check_options(opts: SendOptions, kind: str) -> None:
    if opts.resume and opts.results is None:
        raise CLIError("--resume needs --results FILE: the results file of the run to continue")
    if opts.resume and opts.overwrite:
        raise CLIError("--resume and --overwrite contradict each other; choose one")
    results = opts.results
    fresh = not (opts.resume or opts.overwrite)
    if fresh and results is not None and results.exists() and results.stat().st_size > 0:
        raise CLIError(
            f"{results} already holds results: add --resume to continue that run, "
            "or --overwrite to start again"
        )
    if kind == "fcm":
        for flag, value in (("--topic", opts.flags.topic), ("--push-type", opts.flags.push_type)):
            if value is not None:
                raise CLIError(f"{flag} is for APNs; FCM sends to the tokens of --input")
    elif opts.token_uri is not None or opts.project_id is not None:
        raise CLIError("--token-uri and --project-id are for FCM (--service-account)")


def build_client(
    opts: SendOptions, credentials: Credentials | ServiceAccountCredentials
) -> AnyPushClient:
    if isinstance(credentials, ServiceAccountCredentials):
        return FCMClient(
            credentials,
            project_id=opts.project_id,
            base_url=opts.base_url or DEFAULT_BASE_URL,
            ca_file=opts.ca_file,
            request_timeout=opts.request_timeout,
            max_connections=opts.max_connections,
            rate_limit=opts.rate_limit,
        )
    return APNsClient(
        credentials,
        environment="sandbox" if opts.sandbox else "production",
        base_url=opts.base_url,
        ca_file=opts.ca_file,
        request_timeout=opts.request_timeout,
        max_connections=opts.max_connections,
        rate_limit=opts.rate_limit,
    )


class _Run:
    """The state of one send: input, output files, counts."""

    def __init__(
        self,
        opts: SendOptions,
        source: RowSource,
        messages: RowMessages,
        done: DoneRows,
        results: ResultsWriter,
        drops: DropTokens,
    ) -> None:
        self.opts = opts
        self.source = source
        self.messages = messages
        self.done = done
        self.results = results
        self.drops = drops
        self.tally = Tally()
        #: stream position -> (input index, input line, token) of rows awaiting a result
        self.pending: dict[int, tuple[int, int, str]] = {}
        self.skipped = 0
        self.bad_rows = 0
        #: Rows the input held (read so far), sent or not.
        self.rows_read = 0
        self.strict_stop: str | None = None
        self.interrupted = False
        #: Rows given up when the client was closed early (never sent, not recorded).
        self.given_up = 0
        #: Rows whose outcome was lost when the client was closed early (recorded).
        self.lost = 0

    def notifications(self, interrupt: Interrupt) -> Iterator[Notification]:
        """The notifications of the rows still to send, read as the client asks for them."""
        rows = iter(self.source)
        position = 0
        while not interrupt.requested:
            item = next(rows, None)
            if item is None:
                return
            self.rows_read += 1
            if item.line in self.done:
                self.skipped += 1
                continue
            if isinstance(item, BadRow):
                if self._bad_row(item.index, item.line, item.token, item.problem):
                    return
                continue
            try:
                notification = self.messages.notification(item)
            except RowError as e:
                if self._bad_row(item.index, item.line, item.token, str(e)):
                    return
                continue
            self.pending[position] = (item.index, item.line, item.token)
            position += 1
            yield notification

    def _bad_row(self, index: int, line: int, token: str | None, problem: str) -> bool:
        """Report a row that cannot be sent; True when the run must stop (``--strict``)."""
        where = f"{self.source.name} line {line}: {problem}"
        if self.opts.strict:
            self.strict_stop = where
            return True
        self.bad_rows += 1
        if self.bad_rows <= MAX_BAD_ROWS_SHOWN:
            typer.echo(f"bad row: {where}; not sent, recorded as failed", err=True)
        elif self.bad_rows == MAX_BAD_ROWS_SHOWN + 1:
            typer.echo("bad row: more bad rows are not shown; see the results file", err=True)
        self.results.write_unsent(index, line, token, where)
        self.tally.add_unsent("bad input row (not sent)")
        return False

    def record(self, result: Result, *, closing: bool) -> None:
        index, line, _ = self.pending.pop(result.index)
        if closing and _never_sent(result):
            # Given up because we closed the client: left out of the results, so that
            # --resume sends it.
            self.given_up += 1
            return
        classification = classify(result)
        self.results.write(result, classification.action, index, line)
        self.drops.observe(result, classification, line)
        self.tally.add(result)

    def record_lost(self) -> None:
        """After closing the client early: the rows still without a result. Their outcome
        was lost (on the wire when it closed, or waiting to be resent), so they are recorded
        as maybe delivered: resending them on --resume could deliver them twice."""
        for index, line, token in self.pending.values():
            error = (
                f"{self.source.name} line {line}: no outcome (the client was closed while it "
                "was in flight or waiting to be resent); it may have been delivered"
            )
            self.results.write_unknown(index, line, token, error)
            self.tally.add_unsent("no outcome (closed early; maybe delivered)")
        self.lost = len(self.pending)
        self.pending.clear()

    def in_flight(self) -> int:
        return len(self.pending)

    def progress_done(self) -> float:
        return float(
            self.source.bytes_read if self.source.total_bytes is not None else self.tally.results
        )


async def _send_all(run: _Run, client: AnyPushClient, progress: LiveProgress) -> None:
    async with client:
        interrupt = Interrupt(client, run.opts.request_timeout + DRAIN_MARGIN, run.in_flight)
        interrupt.install()
        try:
            async for result in client.stream(run.notifications(interrupt)):
                run.record(result, closing=interrupt.closing)
                progress.update(run.tally, run.in_flight, run.progress_done())
        except ClientClosedError:
            run.record_lost()
        finally:
            interrupt.remove()
            await interrupt.wait_closed()
            run.interrupted = interrupt.requested
            run.tally.stop()
            progress.update(run.tally, run.in_flight, run.progress_done(), force=True)


def run_send(opts: SendOptions, console: Console) -> int:
    """The whole command; returns the exit code. User errors raise (see ``user_errors``).

    Everything that can be wrong with the options, credentials or payload is found before
    the input is read or a connection is made.
    """
    kind = provider(opts.credentials)
    _check_options(opts, kind)
    credentials: Credentials | ServiceAccountCredentials
    flags = opts.flags
    if kind == "fcm":
        credentials = service_account(opts.credentials, opts.token_uri)
    else:
        credentials = apns_credentials(opts.credentials)
        if flags.topic is None and isinstance(credentials, CertificateCredentials):
            # A push certificate names its app: its first topic is the bundle id.
            flags = dataclasses.replace(flags, topic=next(iter(credentials.topics), None))

    def unknown_field(name: str, hint: str) -> None:
        echo_warning(f"ignoring the input field {name!r}" + (f" ({hint})" if hint else ""))

    messages = RowMessages(kind, read_payload_file(opts.payload), flags, unknown_field)
    done = load_done_rows(opts.results) if opts.resume and opts.results else DoneRows()
    with open_rows(opts.input, opts.format) as source:
        client = build_client(opts, credentials)
        results = ResultsWriter(
            opts.results,
            id_field="apns_id" if kind == "apns" else "message_id",
            append=opts.resume,
        )
        drops = DropTokens(opts.drop_tokens, append=opts.resume)
        run = _Run(opts, source, messages, done, results, drops)
        total = float(source.total_bytes) if source.total_bytes is not None else None
        progress = LiveProgress(console, enabled=opts.progress and console.is_terminal, total=total)
        try:
            with progress:
                asyncio.run(_send_all(run, client, progress))
        finally:
            results.close()
            drops.finish()
        unread = source.count_unread_lines() if run.interrupted else 0
    return _report(run, console, unread)


def _never_sent(result: Result) -> bool:
    return result.outcome is Outcome.FAILED and not result.maybe_delivered and not result.status


def _report(run: _Run, console: Console, unread: int | None) -> int:
    opts = run.opts
    tally = run.tally
    before = [("input", run.source.name)]
    if opts.resume:
        before.append(("skipped (in the results already)", f"{run.skipped:,}"))
    after = []
    drops = run.drops
    drop_text = f"{drops.count:,}"
    if drops.withheld:
        drop_text += f" ({drops.withheld:,} withheld: see the warning)"
    after.append(("tokens to drop", drop_text))
    if run.interrupted or run.given_up:
        after.append(("not sent (interrupted)", _not_sent_text(run.given_up, unread)))
    console.print(summary_table("pushwire send", tally, before=before, after=after))
    # Outside the table: long paths must stay on one line to be copied.
    if opts.results is not None:
        console.print(f"results: {opts.results}", markup=False, soft_wrap=True)
    else:
        console.print("results: not kept (add --results FILE)", markup=False)
    if opts.drop_tokens is not None:
        console.print(f"tokens to drop: {opts.drop_tokens}", markup=False, soft_wrap=True)
    for warning in drops.warnings:
        echo_warning(warning)
    for line in tally.unsent_errors():
        echo_error(line)
    if run.lost:
        echo_warning(
            f"{run.lost:,} rows had no outcome when the client closed: they are recorded as "
            "failed and maybe delivered, and --resume will not send them again"
        )
    again = (
        "run the same command again with --resume"
        if opts.results
        else "add --results FILE next time to be able to resume"
    )
    if run.strict_stop is not None:
        echo_error(
            f"{run.strict_stop}; stopped there (--strict): the rows before it were sent, none "
            f"after it. Fix the row, then {again}"
        )
        return EXIT_USAGE
    if run.interrupted:
        echo_warning(f"interrupted: to send the rows not sent, {again}")
        return EXIT_INTERRUPTED
    if run.rows_read == 0:
        # Nothing failed, so exit 0 (a scheduled job may have an empty batch), but say so.
        echo_warning(f"{run.source.name} holds no rows: nothing was sent")
    # Dead tokens alone are not a failure: they are handled (in --drop-tokens), as with
    # --to-segment where they are disabled in the store.
    handled = tally.outcomes[Outcome.DELIVERED.value] + drops.count
    return EXIT_OK if tally.results == handled else EXIT_SOME_FAILED


def _not_sent_text(given_up: int, unread: int | None) -> str:
    """``8,471`` or ``8,503 (32 given up when the client closed)``; stdin can't be counted."""
    detail = f"{given_up:,} given up when the client closed" if given_up else ""
    if unread is None:
        return f"the rest of the input{f' + {detail}' if detail else ''}"
    return f"{given_up + unread:,}" + (f" ({detail})" if detail else "")


# -- the command: its options, by group ---------------------------------------------------------

# Input
InputFile = Annotated[
    Path | None,
    typer.Option(
        "--input",
        "-i",
        help="Rows to send: JSONL (objects with 'token' and optional title, body, badge, "
        "sound, custom / data, collapse_id, apns_id) or CSV with a header and a 'token' "
        "column. '-' reads stdin. Or --to-segment instead.",
        rich_help_panel=INPUT,
    ),
]
InputFormat = Annotated[
    Literal["jsonl", "csv"] | None,
    typer.Option(
        "--format",
        help="Input format (default: from the extension, else from the first character).",
        rich_help_panel=INPUT,
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        help="Stop at the first bad row (exit 2), sending nothing after it.",
        rich_help_panel=INPUT,
    ),
]
# Payload
PayloadFile = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="JSON file: the full APNs payload, or FCM message fields (notification, data, "
        "android, apns, webpush).",
        rich_help_panel=PAYLOAD,
    ),
]
Title = Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)]
Body = Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)]
Badge = Annotated[int | None, typer.Option(min=0, rich_help_panel=PAYLOAD)]
Sound = Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)]
PushTypeOption = Annotated[
    PushType | None,
    typer.Option(
        metavar="TYPE",
        help="APNs push type: " + ", ".join(typing.get_args(PushType)) + " (default alert).",
        rich_help_panel=PAYLOAD,
    ),
]
Priority = Annotated[
    int | None,
    typer.Option(
        help="APNs priority 10, 5 or 1 (FCM: 10 = HIGH, else NORMAL).", rich_help_panel=PAYLOAD
    ),
]
CollapseId = Annotated[
    str | None,
    typer.Option(help="APNs collapse id (FCM: Android collapse key).", rich_help_panel=PAYLOAD),
]
Expiration = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="UNIX time after which the provider may drop it (0: try once).",
        rich_help_panel=PAYLOAD,
    ),
]
# Endpoint
Sandbox = Annotated[
    bool,
    typer.Option(
        "--sandbox/--production",
        envvar="PUSHWIRE_SANDBOX",
        help="APNs environment.",
        rich_help_panel=ENDPOINT,
    ),
]
# Output
Results = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="Write one JSON line per input row (outcome, status, reason, action...), mode 0600.",
        rich_help_panel=OUTPUT,
    ),
]
DropTokensFile = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="Write the tokens to remove (JSONL, or CSV for a .csv name) with reason and "
        "410 timestamp.",
        rich_help_panel=OUTPUT,
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        help="Continue an interrupted run: skip the rows already in --results, append.",
        rich_help_panel=OUTPUT,
    ),
]
Overwrite = Annotated[
    bool, typer.Option(help="Replace an existing --results file.", rich_help_panel=OUTPUT)
]
Progress = Annotated[
    bool,
    typer.Option(
        help="Live progress bar (only when stdout is a terminal).", rich_help_panel=OUTPUT
    ),
]
# Sending
MaxConnections = Annotated[
    int,
    typer.Option(
        envvar="PUSHWIRE_MAX_CONNECTIONS",
        min=1,
        help="HTTP/2 connections to open.",
        rich_help_panel=TUNING,
    ),
]
RateLimit = Annotated[
    int | None,
    typer.Option(
        envvar="PUSHWIRE_RATE_LIMIT",
        min=1,
        help="At most this many notifications per minute.",
        rich_help_panel=TUNING,
    ),
]


# Web Push (--subscriptions)
WEBPUSH = "Web Push (--subscriptions)"
SubscriptionsFile = Annotated[
    Path | None,
    typer.Option(
        "--subscriptions",
        help="Send Web Push to browsers: JSON lines of PushSubscription JSON "
        '({"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}); \'-\' reads stdin. '
        "Every line is checked before anything is sent.",
        rich_help_panel=WEBPUSH,
    ),
]
VapidKeyOption = Annotated[
    str | None,
    typer.Option(
        "--vapid-key",
        envvar="PUSHWIRE_VAPID_KEY",
        help="VAPID private key: PEM file (pushwire vapid generate).",
        rich_help_panel=WEBPUSH,
    ),
]
SubjectOption = Annotated[
    str | None,
    typer.Option(
        "--subject",
        envvar="PUSHWIRE_VAPID_SUBJECT",
        help="mailto: or https: contact the push services see (RFC 8292).",
        rich_help_panel=WEBPUSH,
    ),
]
TtlOption = Annotated[
    int | None,
    typer.Option(
        "--ttl",
        min=0,
        help="Seconds a push service keeps the message for an offline browser (default 4 weeks).",
        rich_help_panel=WEBPUSH,
    ),
]
UrgencyOption = Annotated[
    str | None,
    typer.Option("--urgency", help="very-low, low, normal or high.", rich_help_panel=WEBPUSH),
]


def _webpush_route(ctx: typer.Context) -> None:
    """With --subscriptions: send Web Push and exit (the file replaces --input)."""
    params = ctx.params
    subscriptions = params.get("subscriptions")
    if subscriptions is None:
        typed = [flag for flag in ("ttl", "urgency") if params.get(flag) is not None]
        if typed:
            with user_errors():
                raise CLIError(f"--{typed[0]}: only with --subscriptions FILE (Web Push)")
        return
    from .webpush_send import WebPushSendOptions, run_webpush_send

    with user_errors():
        if params.get("input") is not None or params.get("to_segment") is not None:
            raise CLIError(
                "--subscriptions is the input of a Web Push send: not with --input or "
                "--to-segment (a segment's web subscriptions are sent with --to-segment alone)"
            )
        code = run_webpush_send(
            WebPushSendOptions(
                subscriptions=subscriptions,
                vapid_key=params.get("vapid_key"),
                subject=params.get("subject"),
                payload=params.get("payload"),
                title=params.get("title"),
                body=params.get("body"),
                ttl=params.get("ttl"),
                urgency=params.get("urgency"),
                results=params.get("results"),
                drop_tokens=params.get("drop_tokens"),
                overwrite=bool(params.get("overwrite")),
                ca_file=params.get("ca_file"),
                request_timeout=params.get("request_timeout") or 10.0,
                max_connections=params.get("max_connections") or 4,
                rate_limit=params.get("rate_limit"),
            ),
            Console(),
        )
    raise typer.Exit(code)


def send_command(
    ctx: typer.Context,
    # input
    input: InputFile = None,
    format: InputFormat = None,
    strict: Strict = False,
    # payload
    payload: PayloadFile = None,
    title: Title = None,
    body: Body = None,
    badge: Badge = None,
    sound: Sound = None,
    push_type: PushTypeOption = None,
    priority: Priority = None,
    topic: Topic = None,
    collapse_id: CollapseId = None,
    expiration: Expiration = None,
    # APNs credentials
    p8: P8 = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    cert: Cert = None,
    key: Key = None,
    p12: P12 = None,
    password: Password = None,
    # FCM credentials
    service_account: ServiceAccount = None,
    project_id: ProjectId = None,
    token_uri: TokenUri = None,
    # endpoint
    sandbox: Sandbox = False,
    base_url: BaseUrl = None,
    ca_file: CaFile = None,
    # output
    results: Results = None,
    drop_tokens: DropTokensFile = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    progress: Progress = True,
    # sending
    request_timeout: RequestTimeout = 10.0,
    max_connections: MaxConnections = 4,
    rate_limit: RateLimit = None,
    # the endpoint store (--to-segment), read by tokens_or_segment() from ctx.params
    to_segment: SegmentFilterOption = None,
    db: SegmentDb = None,
    data: SegmentData = None,
    image_url: SegmentImageUrl = None,
    silent: SegmentSilent = False,
    url: SegmentUrl = None,
    deep_link: SegmentDeepLink = None,
    message_file: SegmentMessageFile = None,
    apns_url: SegmentApnsUrl = None,
    fcm_url: SegmentFcmUrl = None,
    page_size: SegmentPageSize = 2000,
    actor: SegmentActor = None,
    as_json: SegmentJson = False,
    # Web Push, read by _webpush_route() from ctx.params
    subscriptions: SubscriptionsFile = None,
    vapid_key: VapidKeyOption = None,
    subject: SubjectOption = None,
    ttl: TtlOption = None,
    urgency: UrgencyOption = None,
    config: ConfigOption = None,
) -> None:
    """Send notifications to every token of an input file, or with --to-segment to the
    endpoints of a segment of the store, through APNs or FCM; or with --subscriptions to
    browsers through Web Push.

    Exit code 0 when every row was delivered or its token is dead (dead tokens alone are not
    a failure: they go to --drop-tokens, or with --to-segment are disabled in the store; an
    input without rows is 0 too, with a warning), 1 when some need attention (rejected for
    another reason, failed, a bad row), 2 for a usage or configuration error (or a bad row
    with --strict), 130 when interrupted: Ctrl-C stops reading, waits for the notifications
    in flight and records them; run the same command with --resume to send the rest.
    """
    _webpush_route(ctx)  # with --subscriptions: sends Web Push and exits
    source = tokens_or_segment(ctx)  # with --to-segment: sends from the store and exits
    with user_errors():
        options = SendOptions(
            input=source,
            format=format,
            payload=payload,
            flags=PayloadFlags(
                title=title,
                body=body,
                badge=badge,
                sound=sound,
                push_type=push_type,
                priority=priority,
                topic=topic,
                collapse_id=collapse_id,
                expiration=expiration,
            ),
            credentials=credential_options(
                p8, key_id, team_id, cert, key, p12, password, service_account
            ),
            sandbox=sandbox,
            base_url=base_url,
            ca_file=ca_file,
            token_uri=token_uri,
            project_id=project_id,
            results=results,
            drop_tokens=drop_tokens,
            resume=resume,
            overwrite=overwrite,
            strict=strict,
            request_timeout=request_timeout,
            max_connections=max_connections,
            rate_limit=rate_limit,
            progress=progress,
        )
        code = run_send(options, Console())
    raise typer.Exit(code)
