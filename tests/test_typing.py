"""Typing in the documented patterns: tests/typing/check_*.py must pass ``mypy --strict`` with
its ``assert_type`` lines, and each line of fail_*.py marked ``# E: code`` must be an error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
MARK = re.compile(r"#\s*E:\s*([a-z-]+)\s*$")
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


def expected_errors() -> set[tuple[str, int, str]]:
    expected = set()
    for path in sorted(TYPING.glob("fail_*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if mark := MARK.search(line):
                expected.add((path.name, number, mark.group(1)))
    return expected


def test_mypy_strict_accepts_the_patterns_and_refuses_the_mistakes(tmp_path):
    files = sorted(str(p.relative_to(ROOT)) for p in TYPING.glob("*.py"))
    assert any("check_" in f for f in files) and any("fail_" in f for f in files)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "pyproject.toml",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
            *files,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = set()
    for line in done.stdout.splitlines():
        if match := ERROR.match(line):
            errors.add((Path(match["file"]).name, int(match["line"]), match["code"]))
    assert done.stderr == "", done.stderr
    assert errors == expected_errors(), done.stdout
    assert len(expected_errors()) >= 8
