"""Sending to a segment of the endpoint store: ``pushwire send --to-segment`` (and its older
name ``pushwire send-segment``).

``send_to_segment_command`` is a plain command function, registered as ``send-segment``;
``pushwire send`` calls it through :func:`tokens_or_segment`, which routes a send to
``--input`` or ``--to-segment`` and refuses the options of the other mode. The ``Segment*``
aliases are the options ``pushwire send`` shows under its "Endpoint store" panel.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from ..store import SegmentFilter, SendReport, client_for
from ..store.backend import DATABASE_URL_VARIABLE
from ..store.sending import Clients
from .errors import EXIT_OK, EXIT_SOME_FAILED, CLIError, user_errors
from .options import (
    SEGMENT,
    BadgeOption,
    BodyOption,
    DataOption,
    DbOption,
    DeepLinkOption,
    ImageUrlOption,
    MessageFileOption,
    SilentOption,
    SoundOption,
    TitleOption,
    UrlOption,
    open_existing_store,
    push_message,
)

# -- the options `pushwire send` shows for --to-segment ---------------------------------------

SegmentFilterOption = Annotated[
    str | None,
    typer.Option(
        "--to-segment",
        help="Send to the enabled endpoints of the store (--db) in this segment instead of "
        "--input: 'app=ios plan=pro,team user=u1' (attribute=value terms), JSON, or 'all'. "
        "Dead tokens are disabled in the store and the run is recorded.",
        rich_help_panel=SEGMENT,
    ),
]
SegmentDb = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DATABASE_URL_VARIABLE,
        help="Store URL for --to-segment: sqlite:///path.db (or a path) or "
        "postgresql://user:pw@host/db.",
        show_default=False,
        rich_help_panel=SEGMENT,
    ),
]
SegmentData = Annotated[
    list[str] | None,
    typer.Option("--data", help="Custom data KEY=VALUE (repeatable).", rich_help_panel=SEGMENT),
]
SegmentImageUrl = Annotated[
    str | None, typer.Option(help="https:// image to show.", rich_help_panel=SEGMENT)
]
SegmentSilent = Annotated[
    bool,
    typer.Option("--silent", help="Background (data-only) message.", rich_help_panel=SEGMENT),
]
SegmentUrl = Annotated[
    str | None, typer.Option(help="Open this web page on tap.", rich_help_panel=SEGMENT)
]
SegmentDeepLink = Annotated[
    str | None, typer.Option(help="Open this app link on tap.", rich_help_panel=SEGMENT)
]
SegmentMessageFile = Annotated[
    Path | None,
    typer.Option(
        "--message",
        dir_okay=False,
        help="The whole message as JSON (PushMessage fields).",
        rich_help_panel=SEGMENT,
    ),
]
SegmentApnsUrl = Annotated[
    str | None,
    typer.Option(
        help="APNs server for --to-segment (default --base-url, else the application's "
        "environment).",
        rich_help_panel=SEGMENT,
    ),
]
SegmentFcmUrl = Annotated[
    str | None,
    typer.Option(
        help="FCM server for --to-segment (default --base-url, else Google's).",
        rich_help_panel=SEGMENT,
    ),
]
SegmentPageSize = Annotated[
    int, typer.Option(min=1, help="Endpoints read per query.", rich_help_panel=SEGMENT)
]
SegmentActor = Annotated[
    str | None, typer.Option(help="Who sends (recorded with the run).", rich_help_panel=SEGMENT)
]
SegmentJson = Annotated[
    bool, typer.Option("--json", help="Print the run's report as JSON.", rich_help_panel=SEGMENT)
]

# -- send-segment -----------------------------------------------------------------------------


def _print_report(report: SendReport) -> None:
    rate = f" ({report.delivery_rate:.1%})" if report.total else ""
    typer.echo(
        f"run {report.run_id}: {report.total} notifications, {report.delivered} delivered"
        f"{rate}, {report.tokens_disabled} tokens disabled"
    )
    for name, tally in report.applications.items():
        typer.echo(
            f"  {name}: {tally.sent} sent, {tally.delivered} delivered, "
            f"{tally.invalid_tokens} invalid tokens ({tally.tokens_disabled} disabled, "
            f"{tally.kept_reregistered} registered again since, {tally.withheld} withheld), "
            f"{tally.retryable} to retry"
        )
    if report.by_reason:
        reasons = sorted(report.by_reason.items(), key=lambda item: -item[1])
        typer.echo("reasons: " + ", ".join(f"{r} {n}" for r, n in reasons))
    for alert in report.alerts:
        typer.echo(f"alert: {alert}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _report_json(report: SendReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "total": report.total,
        "delivered": report.delivered,
        "tokens_disabled": report.tokens_disabled,
        "by_outcome": report.by_outcome,
        "by_reason": report.by_reason,
        "alerts": report.alerts,
        "applications": {
            name: {
                "sent": t.sent,
                "delivered": t.delivered,
                "invalid_tokens": t.invalid_tokens,
                "tokens_disabled": t.tokens_disabled,
                "kept_reregistered": t.kept_reregistered,
                "withheld": t.withheld,
                "retryable": t.retryable,
            }
            for name, t in report.applications.items()
        },
    }


def send_to_segment_command(
    to_segment: Annotated[
        str,
        typer.Option(
            "--to-segment",
            help="Endpoints to send to: 'app=ios plan=pro,team user=u1', JSON, or 'all'.",
        ),
    ],
    title: TitleOption = None,
    body: BodyOption = None,
    data: DataOption = None,
    image_url: ImageUrlOption = None,
    sound: SoundOption = None,
    badge: BadgeOption = None,
    silent: SilentOption = False,
    url: UrlOption = None,
    deep_link: DeepLinkOption = None,
    message_file: MessageFileOption = None,
    apns_url: Annotated[
        str | None, typer.Option(help="APNs server (default: the application's environment).")
    ] = None,
    fcm_url: Annotated[str | None, typer.Option(help="FCM server (tests, proxies).")] = None,
    token_uri: Annotated[str | None, typer.Option(help="OAuth2 token URI for FCM.")] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="Extra CA to trust (a mock server's).")
    ] = None,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-notification s.")] = 10.0,
    page_size: Annotated[int, typer.Option(min=1, help="Endpoints read per query.")] = 2000,
    actor: Annotated[str | None, typer.Option(help="Who sends (recorded with the run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Send one message to every enabled endpoint of a segment, applying the results to the
    store (dead tokens disabled) and recording the run. The same as `pushwire send
    --to-segment`.

    Clients are built from each application's credentials_ref. Exit code 1 when some
    notifications need attention (to retry, refused payload or configuration) or a
    configuration alert was raised; dead tokens alone are not a failure.
    """
    with user_errors(), open_existing_store(db) as store:
        message = push_message(
            message_file, title, body, data, image_url, sound, badge, silent, url, deep_link
        )
        segment = SegmentFilter.parse(to_segment)
        options: dict[str, Any] = {"request_timeout": request_timeout}
        if ca_file is not None:
            options["ca_file"] = ca_file

        async def main() -> SendReport:
            async with AsyncExitStack() as stack:
                clients: dict[str, Any] = {}
                for app in store.segment_applications(segment):
                    base_url = apns_url if app.provider.value == "apns" else fcm_url
                    extra = {"base_url": base_url} if base_url else {}
                    if token_uri and app.provider.value == "fcm":
                        extra["token_uri"] = token_uri
                    client = client_for(app, **options, **extra)
                    clients[app.name] = await stack.enter_async_context(client)
                typed: Clients = clients
                return await store.send_to_segment(
                    segment, message, clients=typed, actor=actor, page_size=page_size
                )

        report = asyncio.run(main())
    if as_json:
        typer.echo(json.dumps(_report_json(report)))
    else:
        _print_report(report)
    unresolved = (
        report.total
        - report.delivered
        - sum(t.invalid_tokens for t in report.applications.values())
    )
    if unresolved or report.alerts:
        raise typer.Exit(EXIT_SOME_FAILED)


# -- `pushwire send --to-segment` --------------------------------------------------------------

#: `pushwire send` options that only apply to a send from --input, with what to do instead.
_INPUT_ONLY = {
    "format": "",
    "strict": "",
    "payload": "; give the message with --title/--body/... or --message",
    "push_type": "; use --silent for a background message",
    "priority": "",
    "topic": "; the topic is the application's (pushwire endpoints add-app --topic)",
    "collapse_id": "",
    "expiration": "",
    "sandbox": "; the environment is the application's",
    "results": "",
    "drop_tokens": "; dead tokens are disabled in the store",
    "resume": "",
    "overwrite": "",
    "max_connections": "",
    "rate_limit": "",
}
_CREDENTIALS = ("p8", "key_id", "team_id", "cert", "key", "p12", "password", "service_account")
_CREDENTIALS_HINT = "; credentials come from each application's credentials_ref in the store"
for _name in (*_CREDENTIALS, "project_id"):
    _INPUT_ONLY[_name] = _CREDENTIALS_HINT
#: `pushwire send` options that only apply with --to-segment.
_SEGMENT_ONLY = (
    "db",
    "data",
    "image_url",
    "silent",
    "url",
    "deep_link",
    "message_file",
    "apns_url",
    "fcm_url",
    "page_size",
    "actor",
    "as_json",
)


def _flag(ctx: typer.Context, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return "--" + name.replace("_", "-")


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was typed (not taken from the environment, a config file or
    its default). By the enum's name: typer bundles its own click."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def tokens_or_segment(ctx: typer.Context) -> Path:
    """Route ``pushwire send``: with ``--to-segment``, send to the store's endpoints (through
    :func:`send_to_segment_command`) and exit; otherwise return the ``--input`` file.

    ``--input`` and ``--to-segment`` exclude each other wherever they come from; options of
    one mode typed on the command line in the other mode are refused (exit 2), while values
    from ``PUSHWIRE_*`` variables or a config file for the other mode are ignored.
    """
    params = ctx.params
    to_segment: str | None = params.get("to_segment")
    source: Path | None = params.get("input")
    with user_errors():
        if to_segment is None:
            typed = [_flag(ctx, n) for n in _SEGMENT_ONLY if _on_command_line(ctx, n)]
            if typed:
                raise CLIError(f"{', '.join(typed)}: only with --to-segment FILTER")
            if source is None:
                raise CLIError(
                    "give --input FILE (rows with device tokens) or --to-segment FILTER "
                    "(endpoints of the store, with --db)"
                )
            return source
        if source is not None:
            raise CLIError(
                "give --input FILE or --to-segment FILTER, not both: --input sends to the "
                "tokens of a file, --to-segment to the endpoints of the store"
            )
        for name, hint in _INPUT_ONLY.items():
            if _on_command_line(ctx, name):
                raise CLIError(f"{_flag(ctx, name)} applies to --input sends only{hint}")
    base_url: str | None = params.get("base_url")
    send_to_segment_command(
        to_segment=to_segment,
        title=params.get("title"),
        body=params.get("body"),
        data=params.get("data"),
        image_url=params.get("image_url"),
        sound=params.get("sound"),
        badge=params.get("badge"),
        silent=bool(params.get("silent")),
        url=params.get("url"),
        deep_link=params.get("deep_link"),
        message_file=params.get("message_file"),
        apns_url=params.get("apns_url") or base_url,
        fcm_url=params.get("fcm_url") or base_url,
        token_uri=params.get("token_uri"),
        ca_file=params.get("ca_file"),
        request_timeout=params.get("request_timeout", 10.0),
        page_size=params.get("page_size", 2000),
        actor=params.get("actor"),
        as_json=bool(params.get("as_json")),
        db=params.get("db"),
    )
    raise typer.Exit(EXIT_OK)
