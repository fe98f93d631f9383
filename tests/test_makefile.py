"""The Makefile's checks are CI's: each command of `make lint`, `make test-rust` and
`make test` is one scripts/test.sh runs, so a green `make` means a green CI lint step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def recipes() -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([\w-]+):", line):
            current = match.group(1)
            targets[current] = []
        elif line.startswith("\t") and current is not None:
            targets[current].append(line.strip().replace("$(PYTHON)", "python3"))
    return targets


def test_the_documented_targets_exist():
    assert {"install", "build-dev", "format", "lint", "test", "test-rust", "bench"} <= set(
        recipes()
    )


def test_lint_and_test_targets_run_what_ci_runs():
    ci = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    targets = recipes()
    commands = targets["lint"] + targets["test-rust"] + targets["test"]
    assert len(targets["lint"]) >= 6
    missing = [command for command in commands if command not in ci]
    assert missing == []
