"""`pushwire mock`: the mock APNs (or FCM) server in the foreground, until Ctrl-C / SIGTERM.

It prints ``url=`` and ``ca_file=`` (FCM: also ``token_uri=`` and ``project_id=``) lines, one
``key=value`` per line, so scripts can read them, then serves until SIGINT or SIGTERM and
exits 0.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Union

import typer

from ..testing import MockAPNs, MockFCM
from .config import load_mapping
from .errors import CLIError, user_errors
from .options import ConfigOption


@dataclass(frozen=True)
class MockOptions:
    port: int = 0
    rules: tuple[str, ...] = ()
    rules_file: Path | None = None
    max_streams: int = 1000
    start_at_one: bool = False
    cert_dir: Path | None = None
    fcm: bool = False
    service_account_public_key: Path | None = None
    service_account_email: str | None = None
    project_id: str = "demo-project"


def collect_rules(rules: tuple[str, ...], rules_file: Path | None) -> list[str]:
    """``PREFIX=BEHAVIOR`` strings: those of the rules file first, then ``--rule`` ones."""
    collected = []
    if rules_file is not None:
        for prefix, behavior in load_mapping(rules_file).items():
            if not isinstance(behavior, str):
                raise CLIError(
                    f"{rules_file}: the behaviour of {prefix!r} must be a string such as "
                    "'unregistered' or 'delay:200'"
                )
            collected.append(f"{prefix}={behavior}")
    for rule in rules:
        if "=" not in rule:
            raise CLIError(
                f"--rule {rule!r} must look like PREFIX=BEHAVIOR, e.g. dead=unregistered"
            )
        collected.append(rule)
    return collected


def _start(opts: MockOptions, rules: list[str]) -> Union[MockAPNs, MockFCM]:
    if not opts.fcm:
        if opts.service_account_public_key or opts.service_account_email:
            raise CLIError("--service-account-public-key and --service-account-email need --fcm")
        return MockAPNs(
            port=opts.port,
            rules=rules,
            max_concurrent_streams=opts.max_streams,
            start_streams_at_one=opts.start_at_one,
            cert_dir=opts.cert_dir,
        )
    if opts.cert_dir is not None or opts.start_at_one:
        raise CLIError("--cert-dir and --start-at-one are for the APNs mock, not --fcm")
    public_key = None
    if opts.service_account_public_key is not None:
        public_key = opts.service_account_public_key.read_text()
    return MockFCM(
        port=opts.port,
        rules=rules,
        max_concurrent_streams=opts.max_streams,
        service_account_email=opts.service_account_email,
        service_account_public_key_pem=public_key,
        project_id=opts.project_id,
    )


def run_mock(opts: MockOptions) -> int:
    rules = collect_rules(opts.rules, opts.rules_file)
    try:
        server = _start(opts, rules)
    except ValueError as e:  # a bad rule or option, said by the server
        raise CLIError(str(e)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server:
            typer.echo(f"url={server.url}")
            typer.echo(f"ca_file={server.ca_file}")
            if isinstance(server, MockFCM):
                typer.echo(f"token_uri={server.token_uri}")
                typer.echo(f"project_id={server.project_id}")
            sys.stdout.flush()
            typer.echo("serving; Ctrl-C to stop", err=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def mock_command(
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
