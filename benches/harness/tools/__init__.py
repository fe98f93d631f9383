"""One module per tool. pushwire, aioapns and httpx measure inside a child process
(``throughput.py --child``); h2load is a process of its own, run by the parent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import aioapns_tool, httpx_tool, pushwire_tool

#: (tool, scenario) -> the child's coroutine function.
CHILD_RUNNERS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("pushwire", "bulk"): pushwire_tool.batch,
    ("pushwire", "latency-40ms"): pushwire_tool.batch,
    ("pushwire", "rejected-5pct"): pushwire_tool.batch,
    ("pushwire", "fcm-bulk"): pushwire_tool.fcm_bulk,
    ("pushwire", "hang"): pushwire_tool.hang,
    ("pushwire", "stream-1m"): pushwire_tool.stream,
    ("pushwire", "single-send-10k"): pushwire_tool.single_send,
    ("pushwire", "wire-bytes"): pushwire_tool.batch,
    ("pushwire", "stream-10m"): pushwire_tool.stream_count,
    ("aioapns", "bulk"): aioapns_tool.batch,
    ("aioapns", "latency-40ms"): aioapns_tool.batch,
    ("aioapns", "rejected-5pct"): aioapns_tool.batch,
    ("httpx", "bulk"): httpx_tool.batch,
    ("httpx", "latency-40ms"): httpx_tool.batch,
    ("httpx", "rejected-5pct"): httpx_tool.batch,
}
