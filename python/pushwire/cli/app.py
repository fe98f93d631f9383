"""The ``pushwire`` typer application: the root options and every command, registered from the
module that implements it."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .bench import BENCH_CONTEXT, bench_command
from .campaigns import campaigns_app, kpis_command
from .check import check_credentials_command
from .commands import Group, use_pushwire_classes
from .demo import demo_command
from .endpoints import endpoints_app
from .jobs import enqueue_command, jobs_app, worker_command
from .live_activities import live_activities_app
from .mock import mock_command
from .segment import send_to_segment_command
from .send import send_command
from .serve import keys_app, serve_command
from .vapid import vapid_app

app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # An unexpected crash must not print local variables: they may hold keys or passwords.
    pretty_exceptions_show_locals=False,
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
    """Fast, reliable push notifications (APNs and FCM) from the command line.

    Options can also be set with PUSHWIRE_* environment variables (shown in each command's
    help) or a TOML file given with --config (keys are option names). Exit codes: 0 ok,
    1 some notifications failed, 2 usage or configuration error, 130 interrupted.
    """


# Sending from a file, and the tools around it.
app.command("send")(send_command)
app.command("check-credentials")(check_credentials_command)
app.command("mock")(mock_command)
app.command("demo")(demo_command)
# The endpoint store.
app.add_typer(endpoints_app, name="endpoints")
app.command("send-segment")(send_to_segment_command)
# Campaigns on the store, and their KPIs.
app.add_typer(campaigns_app, name="campaigns")
app.command("kpis")(kpis_command)
# Scale-out on Redis Streams.
app.command("enqueue")(enqueue_command)
app.command("worker")(worker_command)
app.add_typer(jobs_app, name="jobs")
# Web Push keys.
app.add_typer(vapid_app, name="vapid")
# The throughput harness of a source checkout.
app.command("bench", context_settings=BENCH_CONTEXT)(bench_command)
# The HTTP API and console, and its API keys.
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
# Live Activities: broadcast channels, push-to-start on a segment, broadcasts.
app.add_typer(live_activities_app, name="live-activities")
# Plain help readable at any width, one-line usage errors: for every command, whoever adds it.
use_pushwire_classes(app)


def run() -> None:
    """Run the command line (``sys.argv``)."""
    app()
