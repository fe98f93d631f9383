"""Throughput benchmark: pushwire, aioapns, httpx (HTTP/2) and h2load against the pushwire
mock and nginx, side by side in one run; writes benches/RESULTS.md.

    python benches/throughput.py --quick        # smoke run, about a minute
    python benches/throughput.py                # full run, writes benches/RESULTS.md
    python benches/throughput.py --scenario bulk --scenario latency-40ms

Scenarios: ``bulk``, ``latency-40ms``, ``rejected-5pct``, ``hang``, ``stream-1m``,
``single-send-10k`` and ``fcm-bulk``; ``all`` runs them all. ``wire-bytes`` (bytes per
notification through a counting relay) and ``stream-10m`` (``--count`` notifications, one core
each with ``--pin split``) run only when named. ``pushwire bench`` runs this
file too. The code lives in ``benches/harness/`` (one module per concern); this file is the
entry point, for the parent and for every measuring child (``--child``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
