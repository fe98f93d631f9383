"""A cheap HTTP/1.1 load generator for the `pushwire serve` benchmarks: keep-alive connections
on raw asyncio protocols (uvloop), every request rendered to bytes before the clock starts
(each with its own body: a new device token per registration), a per-request latency.

Why not httpx: an httpx request costs the client several times the server's CPU for it, so
200 httpx clients on the same cores set the pace themselves. Here a request costs the
generator a few microseconds (its own CPU time is measured and reported).

Two ways to load the server:

* closed loop (``rate=None``): every connection sends its next request when the previous
  answer arrives; the figure is the saturated throughput, and latency is what a client
  waiting its turn sees;
* open loop (``rate=R``): requests are due at R per second whatever the server does
  (arrivals spread evenly), sent on the first idle connection; a request that finds none
  waits in a queue. Latency runs from when the request was *due*, so a server that falls
  behind is not flattered (no coordinated omission).

Answers are parsed just enough: the status line and Content-Length (the server's answers
are never chunked). Anything but the expected status fails the run.
"""

from __future__ import annotations

import asyncio
import collections
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


def render_posts(
    url: str, path: str, headers: dict[str, str], bodies: Sequence[bytes]
) -> list[bytes]:
    """Whole HTTP/1.1 requests, one per body."""
    host = urlsplit(url).netloc
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return [(head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]


@dataclass
class LoadStats:
    #: Answers with the expected status.
    answered: int
    #: Wall time from the first request to the last answer.
    seconds: float
    #: Seconds per request: from sending it (closed loop) or from when it was due (open loop).
    latencies: list[float]
    #: The generator's own user + system CPU over the run, seconds.
    client_cpu: float
    #: Open loop: the most requests waiting for an idle connection at once.
    max_backlog: int = 0
    #: Open loop: the offered rate.
    offered: float | None = None

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class LoadError(RuntimeError):
    """An answer the run did not expect (status, closed connection)."""


class _Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_load", "_started", "_transport")

    def __init__(self, load: _Load) -> None:
        self._load = load
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, started: float) -> None:
        self._started = started
        assert self._transport is not None
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._load.fail(LoadError(f"an answer without Content-Length: {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
        if len(buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        self._load.answered(self, status, body, self._started)

    def connection_lost(self, exc: Exception | None) -> None:
        self._load.lost(self, exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Load:
    def __init__(
        self,
        requests: Sequence[bytes],
        expect: int,
        rate: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.requests = requests
        self.expect = expect
        self.rate = rate
        self.loop = loop
        self.next = 0
        self.latencies: list[float] = []
        # Oldest idle first: every connection keeps busy (an idle one would reach the
        # server's keep-alive timeout).
        self.idle: collections.deque[_Connection] = collections.deque()
        self.backlog: collections.deque[tuple[bytes, float]] = collections.deque()
        self.max_backlog = 0
        self.done = loop.create_future()
        self.closing = False

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def finished(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def answered(self, connection: _Connection, status: int, body: bytes, started: float) -> None:
        now = time.perf_counter()
        if status != self.expect:
            self.fail(LoadError(f"answer {status}: {body[:300]!r}"))
            return
        self.latencies.append(now - started)
        if len(self.latencies) == len(self.requests):
            self.finished()
            return
        if self.rate is None:
            self.send_next(connection, now)
        elif self.backlog:
            request, due = self.backlog.popleft()
            connection.send(request, due)
        else:
            self.idle.append(connection)

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        if not self.closing:
            self.fail(LoadError(f"the server closed a connection: {exc!r}"))

    def send_next(self, connection: _Connection, now: float) -> None:
        if self.next < len(self.requests):
            request = self.requests[self.next]
            self.next += 1
            connection.send(request, now)

    def release_due(self, start: float) -> None:
        """Open loop: hand out every request due by now, then come back in a millisecond."""
        assert self.rate is not None
        now = time.perf_counter()
        due_count = min(len(self.requests), int((now - start) * self.rate) + 1)
        while self.next < due_count:
            due = start + self.next / self.rate
            request = self.requests[self.next]
            self.next += 1
            if self.idle:
                self.idle.popleft().send(request, due)
            else:
                self.backlog.append((request, due))
        self.max_backlog = max(self.max_backlog, len(self.backlog))
        if self.next < len(self.requests) and not self.done.done():
            self.loop.call_later(0.001, self.release_due, start)


async def run_load(
    url: str,
    requests: Sequence[bytes],
    *,
    connections: int = 200,
    rate: float | None = None,
    expect: int = 200,
) -> LoadStats:
    """Send every request over ``connections`` keep-alive connections; closed loop, or open
    loop at ``rate`` requests per second."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    load = _Load(requests, expect, rate, loop)
    opened: list[_Connection] = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(
            lambda: _Connection(load), parts.hostname, parts.port
        )
        opened.append(protocol)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if rate is None:
        for connection in opened:
            load.send_next(connection, start)
    else:
        load.idle.extend(opened)
        load.release_due(start)
    try:
        await load.done
    finally:
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        load.closing = True
        for connection in opened:
            connection.close()
    client_cpu = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return LoadStats(
        answered=len(load.latencies),
        seconds=seconds,
        latencies=load.latencies,
        client_cpu=client_cpu,
        max_backlog=load.max_backlog,
        offered=rate,
    )


def run_load_in_loop(
    url: str,
    requests: Sequence[bytes],
    *,
    connections: int = 200,
    rate: float | None = None,
    expect: int = 200,
) -> LoadStats:
    """:func:`run_load` on a fresh uvloop event loop (a process of its own is best: the
    CPU it reports is then the generator's alone)."""
    import uvloop

    return uvloop.run(run_load(url, requests, connections=connections, rate=rate, expect=expect))
