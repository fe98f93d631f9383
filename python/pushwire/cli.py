"""The `pushwire` command line: `send`, `check-credentials`, `mock` and `demo`.

Options come from flags, then ``PUSHWIRE_*`` environment variables, then ``--config
FILE.toml``, then defaults. Exit codes: 0 all delivered / all fine, 1 some notifications were
not delivered, 2 usage or configuration error, 130 interrupted. User errors are one line on
stderr, never a traceback; secrets are never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from . import __version__
from ._cli_config import apply_config
from ._cli_credentials import CredentialOptions
from ._cli_errors import user_errors

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    # An unexpected crash must not print local variables: they may hold keys or passwords.
    pretty_exceptions_show_locals=False,
)

#: The keys of pushwire.PUSH_TYPES (a test checks they agree).
PushType = Literal[
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
    "controls",
]

APNS = "APNs credentials"
FCM = "FCM credentials"
ENDPOINT = "Endpoint"
INPUT = "Input"
PAYLOAD = "Payload"
OUTPUT = "Output"
TUNING = "Sending"
SEGMENT = "Endpoint store (--to-segment)"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pushwire {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Fast, reliable push notifications (APNs and FCM) from the command line.

    Options can also be set with PUSHWIRE_* environment variables (shown in each command's
    help) or a TOML file given with --config (keys are option names). Exit codes: 0 ok,
    1 some notifications failed, 2 usage or configuration error, 130 interrupted.
    """


# -- options shared by several commands ------------------------------------------------------

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="PUSHWIRE_CONFIG",
        is_eager=True,
        callback=apply_config,
        dir_okay=False,
        help="TOML file of option defaults (keys are option names; a [send] table applies "
        "to send only).",
    ),
]
P8 = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_P8",
        dir_okay=False,
        help="APNs signing key (AuthKey_XXXXXXXXXX.p8) for token auth.",
        rich_help_panel=APNS,
    ),
]
KeyId = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_KEY_ID",
        help="Key ID of the .p8 (default: the KEYID of an AuthKey_KEYID.p8 file name).",
        rich_help_panel=APNS,
    ),
]
TeamId = Annotated[
    str | None,
    typer.Option(envvar="PUSHWIRE_TEAM_ID", help="Apple team ID.", rich_help_panel=APNS),
]
Cert = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_CERT",
        dir_okay=False,
        help="APNs push certificate, PEM (may hold the key too).",
        rich_help_panel=APNS,
    ),
]
Key = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_KEY",
        dir_okay=False,
        help="Private key of --cert, PEM.",
        rich_help_panel=APNS,
    ),
]
P12 = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_P12",
        dir_okay=False,
        help="APNs push certificate and key, .p12 export.",
        rich_help_panel=APNS,
    ),
]
Password = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_P12_PASSWORD",
        help="Password of --p12 (or of an encrypted --key). Prefer the environment variable: "
        "command lines are visible to other users.",
        show_default=False,
        rich_help_panel=APNS,
    ),
]
ServiceAccount = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_SERVICE_ACCOUNT",
        dir_okay=False,
        help="Firebase service-account key (JSON) for FCM HTTP v1.",
        rich_help_panel=FCM,
    ),
]
ProjectId = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_PROJECT_ID",
        help="Firebase project (default: the service account's).",
        rich_help_panel=FCM,
    ),
]
TokenUri = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_TOKEN_URI",
        help="OAuth2 token endpoint (default: the service account's; a mock's token_uri).",
        rich_help_panel=FCM,
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_BASE_URL",
        help="Send to this server instead of Apple's / Google's (e.g. a `pushwire mock` url).",
        rich_help_panel=ENDPOINT,
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_CA_FILE",
        dir_okay=False,
        help="Extra CA certificate (PEM) to trust, e.g. a mock's ca_file.",
        rich_help_panel=ENDPOINT,
    ),
]
Topic = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_TOPIC",
        help="APNs topic: the app's bundle id (default with a certificate: its first topic).",
        rich_help_panel=PAYLOAD,
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        envvar="PUSHWIRE_REQUEST_TIMEOUT",
        min=0.1,
        help="Seconds to wait for each answer.",
        rich_help_panel=TUNING,
    ),
]


def _credentials(
    p8: Path | None,
    key_id: str | None,
    team_id: str | None,
    cert: Path | None,
    key: Path | None,
    p12: Path | None,
    password: str | None,
    service_account: Path | None,
) -> CredentialOptions:
    return CredentialOptions(p8, key_id, team_id, cert, key, p12, password, service_account)


# -- send ------------------------------------------------------------------------------------


@app.command()
def send(
    ctx: typer.Context,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Rows to send: JSONL (objects with 'token' and optional title, body, badge, "
            "sound, custom / data, collapse_id, apns_id) or CSV with a header and a 'token' "
            "column. '-' reads stdin. Or --to-segment instead.",
            rich_help_panel=INPUT,
        ),
    ] = None,
    format: Annotated[
        Literal["jsonl", "csv"] | None,
        typer.Option(
            "--format",
            help="Input format (default: from the extension, else from the first character).",
            rich_help_panel=INPUT,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Stop at the first bad row (exit 2), sending nothing after it.",
            rich_help_panel=INPUT,
        ),
    ] = False,
    payload: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="JSON file: the full APNs payload, or FCM message fields (notification, data, "
            "android, apns, webpush).",
            rich_help_panel=PAYLOAD,
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)] = None,
    body: Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)] = None,
    badge: Annotated[int | None, typer.Option(min=0, rich_help_panel=PAYLOAD)] = None,
    sound: Annotated[str | None, typer.Option(rich_help_panel=PAYLOAD)] = None,
    push_type: Annotated[
        PushType | None,
        typer.Option(
            help="APNs push type (default alert).",
            rich_help_panel=PAYLOAD,
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            help="APNs priority 10, 5 or 1 (FCM: 10 = HIGH, else NORMAL).",
            rich_help_panel=PAYLOAD,
        ),
    ] = None,
    topic: Topic = None,
    collapse_id: Annotated[
        str | None,
        typer.Option(help="APNs collapse id (FCM: Android collapse key).", rich_help_panel=PAYLOAD),
    ] = None,
    expiration: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="UNIX time after which the provider may drop it (0: try once).",
            rich_help_panel=PAYLOAD,
        ),
    ] = None,
    p8: P8 = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    cert: Cert = None,
    key: Key = None,
    p12: P12 = None,
    password: Password = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox/--production",
            envvar="PUSHWIRE_SANDBOX",
            help="APNs environment.",
            rich_help_panel=ENDPOINT,
        ),
    ] = False,
    service_account: ServiceAccount = None,
    project_id: ProjectId = None,
    token_uri: TokenUri = None,
    base_url: BaseUrl = None,
    ca_file: CaFile = None,
    results: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Write one JSON line per input row (outcome, status, reason, action...), "
            "mode 0600.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    drop_tokens: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Write the tokens to remove (JSONL, or CSV for a .csv name) with reason and "
            "410 timestamp.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted run: skip the rows already in --results, append.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing --results file.", rich_help_panel=OUTPUT),
    ] = False,
    progress: Annotated[
        bool,
        typer.Option(
            help="Live progress bar (only when stdout is a terminal).", rich_help_panel=OUTPUT
        ),
    ] = True,
    request_timeout: RequestTimeout = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(
            envvar="PUSHWIRE_MAX_CONNECTIONS",
            min=1,
            help="HTTP/2 connections to open.",
            rich_help_panel=TUNING,
        ),
    ] = 4,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            envvar="PUSHWIRE_RATE_LIMIT",
            min=1,
            help="At most this many notifications per minute.",
            rich_help_panel=TUNING,
        ),
    ] = None,
    to_segment: Annotated[
        str | None,
        typer.Option(
            "--to-segment",
            help="Send to the enabled endpoints of the store (--db) in this segment instead of "
            "--input: 'app=ios plan=pro,team user=u1' (attribute=value terms), JSON, or 'all'. "
            "Dead tokens are disabled in the store and the run is recorded.",
            rich_help_panel=SEGMENT,
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="PUSHWIRE_DB",
            help="Store URL for --to-segment: sqlite:///path.db (or a path) or "
            "postgresql://user:pw@host/db.",
            show_default=False,
            rich_help_panel=SEGMENT,
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="Custom data KEY=VALUE (repeatable).", rich_help_panel=SEGMENT),
    ] = None,
    image_url: Annotated[
        str | None, typer.Option(help="https:// image to show.", rich_help_panel=SEGMENT)
    ] = None,
    silent: Annotated[
        bool,
        typer.Option("--silent", help="Background (data-only) message.", rich_help_panel=SEGMENT),
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="Open this web page on tap.", rich_help_panel=SEGMENT)
    ] = None,
    deep_link: Annotated[
        str | None, typer.Option(help="Open this app link on tap.", rich_help_panel=SEGMENT)
    ] = None,
    message_file: Annotated[
        Path | None,
        typer.Option(
            "--message",
            dir_okay=False,
            help="The whole message as JSON (PushMessage fields).",
            rich_help_panel=SEGMENT,
        ),
    ] = None,
    apns_url: Annotated[
        str | None,
        typer.Option(
            help="APNs server for --to-segment (default --base-url, else the application's "
            "environment).",
            rich_help_panel=SEGMENT,
        ),
    ] = None,
    fcm_url: Annotated[
        str | None,
        typer.Option(
            help="FCM server for --to-segment (default --base-url, else Google's).",
            rich_help_panel=SEGMENT,
        ),
    ] = None,
    page_size: Annotated[
        int,
        typer.Option(min=1, help="Endpoints read per query.", rich_help_panel=SEGMENT),
    ] = 2000,
    actor: Annotated[
        str | None,
        typer.Option(help="Who sends (recorded with the run).", rich_help_panel=SEGMENT),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the run's report as JSON.", rich_help_panel=SEGMENT),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Send notifications to every token of an input file, or with --to-segment to the
    endpoints of a segment of the store, through APNs or FCM.

    Exit code 0 when every row was delivered, 1 when some were rejected or failed, 2 for a
    usage or configuration error (or a bad row with --strict), 130 when interrupted: Ctrl-C
    stops reading, waits for the notifications in flight and records them; run the same
    command with --resume to send the rest. With --to-segment: 1 when some notifications
    need attention (dead tokens alone are not a failure; they are disabled).
    """
    from ._cli_endpoints import tokens_or_segment
    from ._cli_payload import PayloadFlags
    from ._cli_send import SendOptions, run_send

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
            credentials=_credentials(
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


# -- check-credentials -----------------------------------------------------------------------


@app.command("check-credentials")
def check_credentials(
    p8: P8 = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    cert: Cert = None,
    key: Key = None,
    p12: P12 = None,
    password: Password = None,
    service_account: ServiceAccount = None,
    project_id: ProjectId = None,
    token_uri: TokenUri = None,
    online: Annotated[
        bool,
        typer.Option(
            help="Also make one harmless request: an APNs push to a made-up token, or an FCM "
            "validate-only message.",
            rich_help_panel=ENDPOINT,
        ),
    ] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox/--production",
            envvar="PUSHWIRE_SANDBOX",
            help="APNs environment for --online.",
            rich_help_panel=ENDPOINT,
        ),
    ] = True,
    topic: Topic = None,
    base_url: BaseUrl = None,
    ca_file: CaFile = None,
    request_timeout: RequestTimeout = 10.0,
    config: ConfigOption = None,
) -> None:
    """Check a .p8 key, a .p12 / PEM push certificate or a service-account key, locally
    (and with --online against the service). Exit code 0 when usable, 2 otherwise."""
    from ._cli_check import CheckOptions, run_check

    with user_errors():
        code = run_check(
            CheckOptions(
                credentials=_credentials(
                    p8, key_id, team_id, cert, key, p12, password, service_account
                ),
                online=online,
                sandbox=sandbox,
                topic=topic,
                base_url=base_url,
                ca_file=ca_file,
                token_uri=token_uri,
                project_id=project_id,
                request_timeout=request_timeout,
            )
        )
    raise typer.Exit(code)


# -- mock ------------------------------------------------------------------------------------


@app.command()
def mock(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PREFIX=BEHAVIOR",
            help="Token prefix and behaviour, e.g. dead=unregistered, eeee=hang (repeatable).",
        ),
    ] = None,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="JSON or TOML file mapping token prefix -> behaviour.",
        ),
    ] = None,
    max_streams: Annotated[
        int, typer.Option(min=1, help="SETTINGS_MAX_CONCURRENT_STREAMS.")
    ] = 1000,
    start_at_one: Annotated[
        bool, typer.Option(help="Start connections at 1 stream, like APNs token auth.")
    ] = False,
    cert_dir: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Where to write ca.pem (default: a temp dir)."),
    ] = None,
    fcm: Annotated[
        bool, typer.Option("--fcm", help="Simulate FCM HTTP v1 (and its OAuth2 endpoint).")
    ] = False,
    service_account_public_key: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="FCM: check OAuth2 assertions against this public key (PEM).",
        ),
    ] = None,
    service_account_email: Annotated[
        str | None, typer.Option(help="FCM: the service account those assertions come from.")
    ] = None,
    project_id: Annotated[
        str, typer.Option(help="FCM: the project printed for clients.")
    ] = "demo-project",
    config: ConfigOption = None,
) -> None:
    """Run the mock APNs (or, with --fcm, FCM) server in the foreground for your own tests.

    Prints url= and ca_file= (FCM: also token_uri= and project_id=), then serves until
    Ctrl-C or SIGTERM.
    """
    from ._cli_mock import MockOptions, run_mock

    with user_errors():
        code = run_mock(
            MockOptions(
                port=port,
                rules=tuple(rule or ()),
                rules_file=rules_file,
                max_streams=max_streams,
                start_at_one=start_at_one,
                cert_dir=cert_dir,
                fcm=fcm,
                service_account_public_key=service_account_public_key,
                service_account_email=service_account_email,
                project_id=project_id,
            )
        )
    raise typer.Exit(code)


# -- demo ------------------------------------------------------------------------------------


@app.command()
def demo(
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
        typer.Option(dir_okay=False, help="Results JSONL (default ./pushwire-demo-results.jsonl)."),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Live progress bar (only when stdout is a terminal).")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Send a realistic mixed batch through the embedded mock server and summarise it."""
    from ._demo import DemoOptions, run_demo

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
        typer.echo(f"error: expected {count} results, got {summary.tally.results}", err=True)
        raise typer.Exit(1)


def _add_store_commands() -> None:
    """The endpoint store's commands (`pushwire endpoints ...`, `pushwire send-segment`)."""
    from ._cli_endpoints import endpoints_app, send_to_segment_command

    app.add_typer(endpoints_app, name="endpoints")
    app.command("send-segment")(send_to_segment_command)


_add_store_commands()


def _add_jobs_commands() -> None:
    """Scale-out on Redis Streams (`pushwire enqueue`, `pushwire worker`, `pushwire jobs ...`)."""
    from ._cli_jobs import enqueue_command, jobs_app, worker_command

    app.command("enqueue")(enqueue_command)
    app.command("worker")(worker_command)
    app.add_typer(jobs_app, name="jobs")


_add_jobs_commands()


def _add_bench_command() -> None:
    """`pushwire bench`: the throughput harness of a source checkout."""
    from ._cli_bench import BENCH_CONTEXT, bench_command

    app.command("bench", context_settings=BENCH_CONTEXT)(bench_command)


_add_bench_command()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
