"""Helpers shared by the test modules."""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest


def tokens(n: int, prefix: str = "", start: int = 0) -> list[str]:
    """n distinct 64-hex-char tokens starting with ``prefix``."""
    width = 64 - len(prefix)
    return [prefix + format(i, f"0{width}x") for i in range(start, start + n)]


class ThrowawayServer:
    """A server the tests need (PostgreSQL, Redis): the one named by ``url_variable``, or one
    started on first use by ``script start DIR`` (scripts/postgres.sh, scripts/redis.sh, which
    print ``URL_VARIABLE=url``) and stopped when the run ends. Skipped only when told
    (``no_variable=1``); otherwise a failure fails every test that needs it, diagnosed once."""

    def __init__(
        self,
        name: str,
        url_variable: str,
        no_variable: str,
        script: Path,
        probe: Callable[[str], None],
        shown: Callable[[str], str] = lambda url: url,
    ) -> None:
        self.name, self.url_variable, self.no_variable = name, url_variable, no_variable
        self.script, self.probe, self.shown = script, probe, shown
        self._url: str | None = None
        self._failure: str | None = None

    def url(self) -> str:
        if os.environ.get(self.no_variable) == "1":
            pytest.skip(f"{self.no_variable}=1: {self.name} tests skipped on request")
        if self._failure is not None:
            pytest.fail(self._failure, pytrace=False)
        if self._url is None:
            url = os.environ.get(self.url_variable) or self._start()
            try:
                self.probe(url)
            except Exception as e:
                self._fail(f"{self._expected()} but {self.shown(url)} is unreachable: {e}")
            self._url = url
        return self._url

    def _expected(self) -> str:
        return f"{self.name} is expected (set {self.no_variable}=1 to skip these tests)"

    def _fail(self, message: str) -> NoReturn:
        self._failure = message
        pytest.fail(message, pytrace=False)

    def _start(self) -> str:
        state = tempfile.mkdtemp(prefix=f"pushwire-{self.script.stem}-")
        error = ""
        done: subprocess.CompletedProcess[str] | None
        try:
            done = subprocess.run(
                ["bash", str(self.script), "start", state],
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
            self._fail(
                f"{self._expected()}; {self.url_variable} is not set and {self.script.name} "
                f"could not start one:\n{details}"
            )
        atexit.register(
            subprocess.run,
            ["bash", str(self.script), "stop", state],
            capture_output=True,
            check=False,
        )
        for line in done.stdout.splitlines():
            if line.startswith(self.url_variable + "="):
                return line.split("=", 1)[1]
        self._fail(f"{self.script.name} printed no {self.url_variable}= line")
