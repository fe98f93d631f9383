"""The `pushwire` command line."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__

app = typer.Typer(
    help="Fast, reliable push notifications (APNs) from Python.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    """pushwire: bulk APNs sends, a local APNs simulator, and a demo of both."""


@app.command()
def demo(
    count: Annotated[int, typer.Option(min=1, help="Notifications to send.")] = 200_000,
    dead_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of dead tokens (410).")
    ] = 2.0,
    bad_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of bad tokens (400).")
    ] = 1.0,
    hang_percent: Annotated[
        float, typer.Option(min=0, max=100, help="% of tokens the server never answers.")
    ] = 0.5,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-stream deadline, s.")] = 2.0,
    results: Annotated[
        Path | None, typer.Option(help="Results JSONL (default ./pushwire-demo-results.jsonl).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
) -> None:
    """Send a realistic mixed batch through the embedded mock APNs server and summarise it."""
    from ._demo import DemoOptions, run_demo

    console = Console()
    opts = DemoOptions(
        count=count,
        dead_percent=dead_percent,
        bad_percent=bad_percent,
        hang_percent=hang_percent,
        request_timeout=request_timeout,
        results_path=results,
        progress=progress and console.is_terminal,
    )
    summary = run_demo(opts, console)
    if summary.unique_indexes != count or summary.sent != count:
        console.print(f"[red]expected {count} results, got {summary.sent}[/]")
        raise typer.Exit(1)


@app.command()
def mock(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    rule: Annotated[
        list[str] | None,
        typer.Option(help="PREFIX=BEHAVIOR, e.g. dead=unregistered, eeee=hang (repeatable)."),
    ] = None,
    max_streams: Annotated[int, typer.Option(help="SETTINGS_MAX_CONCURRENT_STREAMS.")] = 1000,
    start_at_one: Annotated[
        bool, typer.Option(help="Start connections at 1 stream, like APNs token auth.")
    ] = False,
    cert_dir: Annotated[
        Path | None, typer.Option(help="Where to write ca.pem (default: a temp dir).")
    ] = None,
) -> None:
    """Run the mock APNs server in the foreground, for your own integration tests."""
    from .testing import MockAPNs

    try:
        server = MockAPNs(
            port=port,
            rules=rule or [],
            max_concurrent_streams=max_streams,
            start_streams_at_one=start_at_one,
            cert_dir=cert_dir,
        )
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    with server:
        typer.echo(f"url={server.url}")
        typer.echo(f"ca_file={server.ca_file}")
        sys.stdout.flush()
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


def main() -> None:
    # sigwait needs the signals blocked in this thread before they arrive.
    if len(sys.argv) > 1 and sys.argv[1] == "mock":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    app()
