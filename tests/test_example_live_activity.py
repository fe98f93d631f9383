"""examples/live_activity_score.py runs end to end against the mock and says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "live_activity_score.py"


def test_match_score_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--watchers", "500", "--goals", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # 4 goal updates and the end event: 5 broadcast requests for 500 watchers.
    assert done.stdout.split() == [
        "started=500",
        "updates=4",
        "ended=1",
        "deleted=1",
        "broadcast_requests=5",
    ]
