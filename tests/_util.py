"""Helpers shared by the test modules."""

from __future__ import annotations

import atexit
import subprocess
import tempfile
from pathlib import Path

import pytest


def tokens(n: int, prefix: str = "", start: int = 0) -> list[str]:
    """n distinct 64-hex-char tokens starting with ``prefix``."""
    width = 64 - len(prefix)
    return [prefix + format(i, f"0{width}x") for i in range(start, start + n)]


def start_throwaway_server(script: Path, prefix: str, hint: str) -> list[str]:
    """Start a server with ``script start DIR`` (scripts/postgres.sh, scripts/redis.sh), stop
    it when the test run ends, and return the script's output lines. A failure fails the test
    with ``hint`` (how to skip on purpose) and the script's error: never a silent skip."""
    state = tempfile.mkdtemp(prefix=prefix)
    error = ""
    done: subprocess.CompletedProcess[str] | None
    try:
        done = subprocess.run(
            ["bash", str(script), "start", state],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        done = None
        error = str(e)
    if done is None or done.returncode != 0:
        details = error if done is None else done.stderr[-2000:]
        pytest.fail(f"{hint}; {script.name} could not start one:\n{details}", pytrace=False)
    atexit.register(
        subprocess.run, ["bash", str(script), "stop", state], capture_output=True, check=False
    )
    return done.stdout.strip().splitlines()
