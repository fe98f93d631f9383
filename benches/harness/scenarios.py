"""Which tool runs which scenario against which server, with which budget, in which order."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import H2LOAD_URIS, MAX_CONNECTIONS, SERVER_MAX_STREAMS, SINGLE_SEND_TASKS

SCENARIOS = [
    "bulk",
    "latency-40ms",
    "rejected-5pct",
    "hang",
    "stream-1m",
    "single-send-10k",
    "fcm-bulk",
    "wire-bytes",
    "stream-10m",
]
#: Run only when named (``--scenario wire-bytes``), not by ``all``: the relay and the 10M
#: count are measurements of their own, minutes long at full size.
EXPLICIT_ONLY = {"wire-bytes", "stream-10m"}
TOOLS = ["pushwire", "h2load", "h2load-no-auth", "aioapns", "httpx"]
SERVERS = ["mock", "nginx"]
PEERS = ["h2load", "aioapns", "httpx"]

#: One repeat, in order: (scenario, server, tools). The pushwire bulk run sits between the
#: runs compared with it (fcm-bulk before; hang, single-send and the peers' bulk runs after),
#: so a neighbour's burst of load is less likely to fall on one side of a ratio only.
MATRIX: list[tuple[str, str, list[str]]] = [
    ("fcm-bulk", "mock", ["pushwire"]),
    ("bulk", "mock", ["pushwire"]),
    ("hang", "mock", ["pushwire"]),
    ("single-send-10k", "mock", ["pushwire"]),
    ("bulk", "mock", PEERS),
    ("latency-40ms", "mock", TOOLS),
    ("rejected-5pct", "mock", TOOLS),
    ("bulk", "nginx", TOOLS),
    ("rejected-5pct", "nginx", TOOLS),
    ("stream-1m", "mock", ["pushwire"]),
    # Through a counting relay; the same headers for both tools.
    # h2load-no-auth: the floor, the same requests without the JWT (nginx checks none).
    ("wire-bytes", "nginx", ["pushwire", "h2load", "h2load-no-auth"]),
    ("wire-bytes", "mock", ["pushwire", "h2load"]),
    # Issue 21: --count notifications from one client core to one server core (--pin split).
    ("stream-10m", "nginx", ["pushwire", "h2load"]),
]

FULL_SIZES = {
    "n": 100_000,
    "aioapns_n": 10_000,
    "httpx_n": 5_000,
    "h2load_n": 200_000,
    "fcm_n": 100_000,
    "hang_n": 100_000,
    "stream_n": 1_000_000,
    "single_n": 100_000,
    "wire_n": 100_000,
    "count": 10_000_000,
    "repeats": 3,
}
QUICK_SIZES = {
    "n": 5_000,
    "aioapns_n": 500,
    "httpx_n": 500,
    "h2load_n": 20_000,
    "fcm_n": 5_000,
    "hang_n": 5_000,
    "stream_n": 50_000,
    "single_n": 5_000,
    "wire_n": 5_000,
    "count": 50_000,
    "repeats": 1,
}


@dataclass
class Config:
    scenarios: list[str]
    tools: list[str]
    servers: list[str]
    sizes: dict[str, int]
    out: Path
    command: str
    pin: bool
    latency_connections: int
    latency_streams: int = SERVER_MAX_STREAMS
    single_tasks: int = SINGLE_SEND_TASKS
    #: Keyword arguments for ``client.stream()`` in stream-10m (e.g. a results mode).
    stream_kwargs: dict[str, Any] = field(default_factory=dict)
    #: stream-10m through ``stream()`` (a Result per notification) or ``send_stream()``
    #: (a BulkReport: Results only for problems).
    stream_api: str = "stream"
    #: stream-10m at this many notifications per second (both tools), or as fast as they go.
    rate: int | None = None
    load_before: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def repeats(self) -> int:
        return self.sizes["repeats"]


@dataclass(frozen=True)
class Planned:
    tool: str
    scenario: str
    server: str
    n: int
    connections: int
    streams: int = SERVER_MAX_STREAMS


def size_for(config: Config, tool: str, scenario: str) -> int:
    sizes = config.sizes
    if tool == "aioapns":
        return sizes["aioapns_n"]
    if tool == "httpx":
        return sizes["httpx_n"]
    # h2load sends as many as pushwire where the two are compared per notification.
    if scenario == "wire-bytes":
        return sizes["wire_n"]
    if scenario == "stream-10m":
        return sizes["count"]
    if tool == "h2load":
        return sizes["h2load_n"]
    return {
        "fcm-bulk": sizes["fcm_n"],
        "hang": sizes["hang_n"],
        "stream-1m": sizes["stream_n"],
        "single-send-10k": sizes["single_n"],
    }.get(scenario, sizes["n"])


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def tool_available(tool: str) -> bool:
    if tool.startswith("h2load"):
        from .tools.h2load_tool import find_h2load

        return find_h2load() is not None
    if tool == "httpx":
        return all(importlib.util.find_spec(m) is not None for m in ("httpx", "h2"))
    if tool == "aioapns":
        return importlib.util.find_spec("aioapns") is not None
    return True


MISSING_TOOL = {
    "h2load": "h2load is not installed (`apt-get install -y nghttp2-client`)",
    "h2load-no-auth": "h2load is not installed (`apt-get install -y nghttp2-client`)",
    "aioapns": "aioapns is not installed (`pip install '.[bench]'`)",
    "httpx": "httpx with HTTP/2 is not installed (`pip install '.[bench]'`)",
}


def plan(config: Config, servers_up: set[str]) -> list[Planned]:
    """One repeat's runs. Tools or servers that are missing are left out (the caller notes
    why); h2load's N is rounded up to a multiple of connections x H2LOAD_URIS so every
    connection cycles through its URI list a whole number of times."""
    planned = []
    for scenario, server, tools in MATRIX:
        if scenario not in config.scenarios or server not in config.servers:
            continue
        if server not in servers_up:
            continue
        for tool in tools:
            if tool not in config.tools or not tool_available(tool):
                continue
            latency = scenario == "latency-40ms"
            connections = config.latency_connections if latency else MAX_CONNECTIONS
            streams = config.latency_streams if latency else SERVER_MAX_STREAMS
            n = size_for(config, tool, scenario)
            if tool.startswith("h2load"):
                n = round_up(n, connections * H2LOAD_URIS)
            planned.append(Planned(tool, scenario, server, n, connections, streams))
    return planned
