"""`pushwire bench`: the throughput harness (benches/throughput.py) from a source checkout.

The harness is not part of the installed package: it needs the repository (the mock
server's Rust sources, nginx and h2load on the machine). This command finds
``benches/throughput.py`` next to the package's source tree, in the current directory, or at
``--harness PATH``, and runs it with the same interpreter; any other option is passed on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import EXIT_USAGE, echo_error

HARNESS = Path("benches") / "throughput.py"
NOT_FOUND = (
    "the throughput harness lives in the pushwire repository (benches/throughput.py), "
    "not in the installed package: run this from a source checkout, or pass --harness PATH"
)


def find_harness(explicit: Path | None = None) -> Path | None:
    """``explicit`` if it exists, else benches/throughput.py of the source tree this package
    was imported from (python/pushwire/cli/ -> repository root), else of the current directory."""
    if explicit is not None:
        return explicit if explicit.is_file() else None
    candidates = [Path(__file__).resolve().parents[3] / HARNESS, Path.cwd() / HARNESS]
    return next((c for c in candidates if c.is_file()), None)


def harness_argv(
    harness: Path,
    *,
    quick: bool,
    scenarios: list[str],
    repeats: int | None,
    out: Path | None,
    extra: list[str],
) -> list[str]:
    argv = [sys.executable, str(harness)]
    if quick:
        argv.append("--quick")
    for scenario in scenarios:
        argv += ["--scenario", scenario]
    if repeats is not None:
        argv += ["--repeats", str(repeats)]
    if out is not None:
        argv += ["--out", str(out)]
    return argv + extra


def bench_command(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke sizes and 1 repeat (about a minute).")
    ] = False,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="bulk, latency-40ms, rejected-5pct, hang, stream-1m, single-send-10k, "
            "fcm-bulk or all (repeatable; default all); wire-bytes and stream-10m run only "
            "when named."
        ),
    ] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Repeats per measurement (3).")] = None,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Report file (benches/RESULTS.md).")
    ] = None,
    harness: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Path to benches/throughput.py (default: found)."),
    ] = None,
) -> None:
    """Run the throughput benchmark (pushwire, aioapns, httpx, h2load; mock and nginx).

    Needs a source checkout of pushwire and the `bench` extra; nginx and h2load are used when
    installed. Other options (`--n`, `--tool`, `--server`, `--pin`...) go to the harness
    unchanged: `pushwire bench -- --help` lists them.
    """
    found = find_harness(harness)
    if found is None:
        echo_error(NOT_FOUND)
        raise typer.Exit(EXIT_USAGE)
    argv = harness_argv(
        found,
        quick=quick,
        scenarios=scenario or [],
        repeats=repeats,
        out=out,
        extra=list(ctx.args),
    )
    try:
        code = subprocess.call(argv)
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


BENCH_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
