"""Prometheus metrics of pushwire clients, for watching a send in production.

    from prometheus_client import start_http_server
    import pushwire.metrics

    client = pushwire.APNsClient(...)
    pushwire.metrics.instrument(client, name="orders")   # default registry
    start_http_server(9100)

Everything is counted in the Rust engine as it happens (a few atomic adds per outcome) and read
only when Prometheus scrapes, so instrumenting costs the send path nothing measurable
(benches/bench_metrics.py). Needs ``prometheus-client`` (``pip install 'pushwire[metrics]'``).

Exported per client (labels ``client`` and ``provider``):

- ``pushwire_notification_latency_seconds`` histogram: submission to outcome of every notification
- ``pushwire_outcomes_total{outcome=delivered|rejected|timeout|failed}``
- ``pushwire_streams_in_flight`` and ``pushwire_queued`` gauges, ``pushwire_connections_live``,
  ``pushwire_connections_target`` (the pool's size, which FCMClient plans live) and
  ``pushwire_server_max_concurrent_streams`` (the server's SETTINGS limit)
- counters: connections opened, connect failures, timeouts, GOAWAYs, stream resets, retries,
  PING failures, connections declared dead, stream-id rotations, late answers, and
  ``pushwire_auth_refreshes_total`` (APNs JWTs minted / FCM access tokens fetched)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from ._client import AnyPushClient

__all__ = ["COUNTERS", "GAUGES", "PushwireCollector", "instrument"]

#: stats key -> (metric name without the ``pushwire_`` prefix and ``_total``, help text)
COUNTERS: dict[str, tuple[str, str]] = {
    "connections_opened": ("connections_opened", "HTTP/2 connections opened (reconnects included)"),
    "connect_failures": ("connect_failures", "Connection attempts that failed"),
    "timeouts": ("timeouts", "Streams that got no answer before their deadline"),
    "goaways": ("goaways", "GOAWAY frames received"),
    "resets": ("stream_resets", "Streams reset by the server"),
    "retries": ("retries", "Requests resent after never reaching the server"),
    "ping_failures": ("ping_failures", "Liveness PINGs not acknowledged in time"),
    "dead_by_timeouts": ("dead_connections", "Connections declared dead after repeated timeouts"),
    "rotations": ("stream_id_rotations", "Connections retired before running out of stream ids"),
    "late_answers": ("late_answers", "Answers that arrived after their stream timed out"),
    "auth_refreshes": ("auth_refreshes", "APNs JWTs minted / FCM OAuth2 access tokens fetched"),
}

#: stats key -> (metric name without the ``pushwire_`` prefix, help text)
GAUGES: dict[str, tuple[str, str]] = {
    "in_flight": ("streams_in_flight", "Streams sent and not yet answered or timed out"),
    "queued": ("queued", "Notifications waiting for a free stream"),
    "connections_live": ("connections_live", "Connections currently taking requests"),
    "max_connections": ("connections_target", "Connections the pool aims for (resizable live)"),
    "peer_max_streams": (
        "server_max_concurrent_streams",
        "The server's SETTINGS_MAX_CONCURRENT_STREAMS on live connections (0: none open)",
    ),
}

OUTCOMES = ("delivered", "rejected", "timeout", "failed")


class PushwireCollector:
    """A ``prometheus_client`` collector over any number of clients. Clients are held weakly:
    a closed and dropped client disappears from the next scrape."""

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[AnyPushClient, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def add(self, client: AnyPushClient, name: str = "default") -> None:
        if not name or not isinstance(name, str):
            raise ConfigurationError("a metrics client name must be a non-empty str", field="name")
        with self._lock:
            taken = {(type(c).PROVIDER, n) for c, n in self._clients.items() if c is not client}
            if (type(client).PROVIDER, name) in taken:
                raise ConfigurationError(
                    f"another {type(client).PROVIDER} client is already exported as {name!r}; "
                    "give each client its own name",
                    field="name",
                )
            self._clients[client] = name

    def remove(self, client: AnyPushClient) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def describe(self) -> list[Any]:
        # Families are known up front; describing none keeps registration from scraping clients.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._lock:
            clients = [(c, n) for c, n in self._clients.items() if not c.closed]
        labels = ["client", "provider"]
        latency = HistogramMetricFamily(
            "pushwire_notification_latency_seconds",
            "Time from submission to outcome of each notification",
            labels=labels,
        )
        outcomes = CounterMetricFamily(
            "pushwire_outcomes", "Notifications by outcome", labels=[*labels, "outcome"]
        )
        counters = {
            key: CounterMetricFamily(f"pushwire_{name}", text, labels=labels)
            for key, (name, text) in COUNTERS.items()
        }
        gauges = {
            key: GaugeMetricFamily(f"pushwire_{name}", text, labels=labels)
            for key, (name, text) in GAUGES.items()
        }
        for client, name in clients:
            try:
                m = client.metrics()
            except Exception:  # closed between the look and the read: nothing to report
                continue
            values = [name, type(client).PROVIDER]
            bounds = [*(repr(float(b)) for b in m["latency_bounds"]), "+Inf"]
            buckets = list(zip(bounds, m["latency_buckets"], strict=True))
            latency.add_metric(values, buckets, sum_value=m["latency_sum"])
            for outcome in OUTCOMES:
                outcomes.add_metric([*values, outcome], m[outcome])
            for key, counter in counters.items():
                counter.add_metric(values, m[key])
            for key, gauge in gauges.items():
                gauge.add_metric(values, m[key])
        yield latency
        yield outcomes
        yield from counters.values()
        yield from gauges.values()


#: One collector per registry, so each metric family appears once however many clients.
_collectors: weakref.WeakKeyDictionary[Any, PushwireCollector] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def instrument(
    client: AnyPushClient,
    *,
    name: str = "default",
    registry: CollectorRegistry | None = None,
) -> PushwireCollector:
    """Export ``client``'s metrics under the label ``client=name`` in ``registry``
    (prometheus-client's default registry when None). Returns the registry's pushwire
    collector, which every client instrumented into that registry shares."""
    try:
        from prometheus_client import REGISTRY
    except ImportError as e:
        raise ConfigurationError(
            "pushwire.metrics needs prometheus-client: pip install 'pushwire[metrics]'",
            field="metrics",
        ) from e
    target = REGISTRY if registry is None else registry
    with _collectors_lock:
        collector = _collectors.get(target)
        if collector is None:
            collector = PushwireCollector()
            target.register(collector)
            _collectors[target] = collector
    collector.add(client, name)
    return collector
