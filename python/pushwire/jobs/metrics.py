"""Numbers about workers and the queue, as plain dicts (no Prometheus dependency).

:class:`WorkerMetrics` counts what one worker did (notifications, outcomes, latency
percentiles, throughput, in flight, reclaims, dead letters, credential mints, CPU, memory, the
engine's own counters); every worker publishes its snapshot to ``STREAM:worker:CONSUMER`` (a
hash that expires when the worker stops). :func:`queue_metrics` reads the queue's depth, the
consumer group's lag and pending entries, and the live workers' snapshots. Feed either dict
to any exporter: every value is a number, keys are snake_case.
"""

from __future__ import annotations

import bisect
import os
import resource
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .._results import Result
from .keys import Keys

#: Latency histogram bucket upper bounds, seconds (log-spaced, 1 ms to 60 s).
_BOUNDS = [0.001 * (1.25**i) for i in range(50)]


class LatencyHistogram:
    """Fixed log buckets: constant memory, percentiles within one bucket (25%)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.total = 0

    def add_all(self, latencies: Iterable[float]) -> None:
        counts = self.counts
        for value in latencies:
            counts[bisect.bisect_left(_BOUNDS, value)] += 1
            self.total += 1

    def percentile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (0 when empty)."""
        if self.total == 0:
            return 0.0
        rank = q * self.total
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return _BOUNDS[i] if i < len(_BOUNDS) else _BOUNDS[-1]
        return _BOUNDS[-1]


class WorkerMetrics:
    """What one worker process did since it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.notifications = 0
        self.by_outcome: dict[str, int] = {}
        self.latency = LatencyHistogram()
        self.in_flight = 0
        self.max_in_flight = 0
        self.chunks_done = 0
        self.chunk_errors = 0
        self.reclaimed_entries = 0
        #: Notifications sent again from reclaimed entries (had no recorded outcome).
        self.resent = 0
        #: Records that found an outcome already there (two workers on one entry).
        self.duplicate_records = 0
        self.dead_lettered = 0
        self.rate_limit_wait = 0.0
        self.jwt_mints = 0
        self.fcm_token_grants = 0
        self.engine: dict[str, int] = {}
        self._window: list[tuple[float, int]] = []

    def sent(self, n: int) -> None:
        self.in_flight += n
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def recorded(self, results: Iterable[Result], count: int) -> None:
        self.in_flight -= count
        self.notifications += count
        by = self.by_outcome
        latencies = []
        for r in results:
            by[r.outcome.value] = by.get(r.outcome.value, 0) + 1
            latencies.append(r.latency)
        self.latency.add_all(latencies)
        now = time.monotonic()
        self._window.append((now, count))
        while self._window and self._window[0][0] < now - 10.0:
            self._window.pop(0)

    def forget(self, count: int) -> None:
        """Notifications whose outcome will not be recorded by this worker (it gave up)."""
        self.in_flight -= count

    def rate(self) -> float:
        """Notifications recorded per second over the last 10 s."""
        if not self._window:
            return 0.0
        now = time.monotonic()
        span = min(10.0, now - self.started)
        return sum(n for _, n in self._window) / span if span > 0 else 0.0

    def snapshot(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.started
        cpu = os.times()
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024
        out: dict[str, float] = {
            "uptime_seconds": round(elapsed, 3),
            "notifications": self.notifications,
            "notifications_per_second": round(self.rate(), 1),
            "notifications_per_second_lifetime": round(self.notifications / elapsed, 1)
            if elapsed > 0
            else 0.0,
            "latency_p50_seconds": self.latency.percentile(0.5),
            "latency_p99_seconds": self.latency.percentile(0.99),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "chunks_done": self.chunks_done,
            "chunk_errors": self.chunk_errors,
            "reclaimed_entries": self.reclaimed_entries,
            "resent_after_reclaim": self.resent,
            "duplicate_records": self.duplicate_records,
            "dead_lettered": self.dead_lettered,
            "rate_limit_wait_seconds": round(self.rate_limit_wait, 3),
            "jwt_mints": self.jwt_mints,
            "fcm_token_grants": self.fcm_token_grants,
            "cpu_seconds": round(cpu.user + cpu.system, 3),
            "peak_rss_mb": round(rss_mb, 1),
        }
        for outcome, n in self.by_outcome.items():
            out[f"outcome_{outcome}"] = n
        for name, n in self.engine.items():
            out[f"engine_{name}"] = n
        return out


def _number(value: bytes) -> float:
    number = float(value)
    return int(number) if number.is_integer() else number


class WorkerCollector:
    """A prometheus-client collector over one worker: every number of
    :meth:`WorkerMetrics.snapshot` as a gauge ``pushwire_worker_<key>{consumer=NAME}``
    (the engine metrics of its clients come from :mod:`pushwire.metrics`)."""

    def __init__(self, metrics: WorkerMetrics, consumer: str) -> None:
        self._metrics = metrics
        self._consumer = consumer

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for key, value in self._metrics.snapshot().items():
            gauge = GaugeMetricFamily(
                f"pushwire_worker_{key}",
                f"pushwire worker: {key.replace('_', ' ')}",
                labels=["consumer"],
            )
            gauge.add_metric([self._consumer], float(value))
            yield gauge


async def queue_metrics(redis: Any, keys: Keys, group: str) -> dict[str, Any]:
    """Depth, lag and workers of one stream and consumer group.

    ``stream_length``: entries not yet acknowledged (finished entries are deleted);
    ``lag``: entries no worker has read yet (None when Redis cannot tell); ``pending``:
    entries read but not acknowledged (in progress, or on a dead worker until reclaimed);
    ``dead_letters``; ``consumers``; ``workers``: consumer name -> its published metrics.
    """
    import redis.exceptions as rex

    length = await redis.xlen(keys.stream)
    dead = await redis.xlen(keys.dead)
    lag: int | None = None
    pending = consumers = 0
    try:
        groups = await redis.xinfo_groups(keys.stream)
    except rex.ResponseError:  # no stream yet
        groups = []
    for info in groups:
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            pending = int(info.get("pending") or 0)
            consumers = int(info.get("consumers") or 0)
            raw_lag = info.get("lag")
            lag = int(raw_lag) if raw_lag is not None else None
    workers: dict[str, dict[str, float]] = {}
    async for key in redis.scan_iter(match=keys.workers_pattern, count=500):
        values: Mapping[bytes, bytes] = await redis.hgetall(key)
        if values:
            name = key.decode()[len(keys.worker("")) :]
            workers[name] = {k.decode(): _number(v) for k, v in values.items()}
    return {
        "stream": keys.stream,
        "group": group,
        "stream_length": length,
        "lag": lag,
        "pending": pending,
        "consumers": consumers,
        "dead_letters": dead,
        "workers": workers,
    }
