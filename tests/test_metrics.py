"""Metrics a user watches in production: the counts the engine exports must agree with the
results the same send returned, and the Prometheus text must carry them."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import pushwire
import pushwire.metrics
from pushwire import ConfigurationError, Outcome
from pushwire.testing import MockAPNs, MockFCM
from support.util import tokens

OUTCOME_KEYS = {
    Outcome.DELIVERED: "delivered",
    Outcome.REJECTED: "rejected",
    Outcome.TIMEOUT: "timeout",
    Outcome.FAILED: "failed",
}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (labels in any order)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_counts_and_histogram_match_the_results_of_the_same_send(credentials, message):
    good = tokens(3_000, "a")
    gone = tokens(200, "b0")
    hung = tokens(20, "c0")

    async def main() -> tuple[pushwire.Results, dict[str, object], dict[str, object]]:
        async with server.client(request_timeout=1.0) as client:
            before = client.metrics()
            results = await client.send_to_tokens(message, good + gone + hung)
            return results, before, client.metrics()

    rules = {"b0": "unregistered", "c0": "hang"}
    with MockAPNs(credentials=credentials, rules=rules) as server:
        results, before, after = asyncio.run(main())

    by_outcome = Counter(r.outcome for r in results)
    assert by_outcome == {Outcome.DELIVERED: 3_000, Outcome.REJECTED: 200, Outcome.TIMEOUT: 20}
    # The warm-up of the first send (one PING round trip) is not a notification.
    assert before["latency_count"] == 0
    for outcome, key in OUTCOME_KEYS.items():
        assert after[key] == by_outcome.get(outcome, 0), key
    assert after["latency_count"] == len(results)
    buckets = after["latency_buckets"]
    assert isinstance(buckets, list) and len(buckets) == len(after["latency_bounds"]) + 1
    assert buckets == sorted(buckets) and buckets[-1] == len(results)
    # The hung streams waited their whole second (past the 1.0 bound); every answered one is
    # below it (on a loaded machine answers can take more than half a second).
    bounds = after["latency_bounds"]
    assert isinstance(bounds, list)
    within_the_deadline = buckets[bounds.index(1.0)]
    assert within_the_deadline == 3_200
    assert after["latency_sum"] >= 20 * 1.0
    assert after["timeouts"] == 20 and after["in_flight"] == 0 and after["queued"] == 0
    assert after["auth_refreshes"] == 1  # one JWT for the whole run


def test_prometheus_text_carries_each_client_under_its_own_label(credentials, message):
    registry = CollectorRegistry()

    async def main() -> str:
        async with server.client() as orders, server.client() as news:
            collector = pushwire.metrics.instrument(orders, name="orders", registry=registry)
            collector.add(news, "news")
            await orders.send_to_tokens(message, tokens(300, "d"))
            await news.send_to_tokens(message, tokens(50, "e0"))
            return generate_latest(registry).decode()

    with MockAPNs(credentials=credentials, rules={"e0": "bad-token"}) as server:
        text = asyncio.run(main())

    orders = {"client": "orders", "provider": "apns"}
    news = {"client": "news", "provider": "apns"}
    assert sample(text, "pushwire_outcomes_total", **orders, outcome="delivered") == 300
    assert sample(text, "pushwire_outcomes_total", **news, outcome="rejected") == 50
    assert sample(text, "pushwire_outcomes_total", **news, outcome="delivered") == 0
    assert sample(text, "pushwire_notification_latency_seconds_count", **orders) == 300
    assert sample(text, "pushwire_notification_latency_seconds_bucket", **orders, le="+Inf") == 300
    assert sample(text, "pushwire_connections_opened_total", **orders) >= 1
    assert sample(text, "pushwire_auth_refreshes_total", **orders) >= 1
    assert sample(text, "pushwire_streams_in_flight", **orders) == 0
    assert sample(text, "pushwire_connections_target", **orders) == 4
    assert sample(text, "pushwire_server_max_concurrent_streams", **orders) > 0
    assert "pushwire_timeouts_total" in text and "pushwire_goaways_total" in text
    # Secrets never reach the exposition.
    assert "bearer" not in text.lower() and "eyJ" not in text


def test_closed_and_dropped_clients_leave_the_scrape(credentials, message):
    registry = CollectorRegistry()

    async def main() -> str:
        client = server.client()
        async with client:
            pushwire.metrics.instrument(client, name="gone", registry=registry)
            await client.send_to_tokens(message, tokens(10, "f"))
        return generate_latest(registry).decode()

    with MockAPNs(credentials=credentials) as server:
        text = asyncio.run(main())
    gc.collect()
    assert 'client="gone"' not in text
    assert 'client="gone"' not in generate_latest(registry).decode()


def test_one_name_per_provider_and_client(credentials):
    collector = pushwire.metrics.PushwireCollector()
    a = pushwire.APNsClient(credentials, base_url="https://localhost:1")
    b = pushwire.APNsClient(credentials, base_url="https://localhost:1")
    collector.add(a, "same")
    collector.add(a, "same")  # adding again is harmless
    with pytest.raises(ConfigurationError, match="already exported as 'same'"):
        collector.add(b, "same")
    with pytest.raises(ConfigurationError, match="non-empty"):
        collector.add(b, "")


def test_metrics_off_records_nothing_but_stats_still_count(credentials, message):
    async def main() -> dict[str, object]:
        async with server.client(metrics=False) as client:
            results = await client.send_to_tokens(message, tokens(100, "9"))
            assert all(r.delivered for r in results)
            return client.metrics()

    with MockAPNs(credentials=credentials) as server:
        m = asyncio.run(main())
    assert m["latency_count"] == 0 and m["delivered"] == 0
    assert m["connections_opened"] >= 1


def test_fcm_access_token_fetches_are_counted(service_account):
    message = pushwire.FCMMessage(notification=pushwire.FCMNotification(title="t", body="b"))
    toks = [f"tok{i:05d}:APA91b" + "x" * 140 for i in range(500)]

    async def main() -> tuple[dict[str, object], int]:
        async with server.client() as client:
            results = await client.send_to_tokens(message, toks)
            assert all(r.delivered for r in results)
            return client.metrics(), client.token_refreshes

    with MockFCM(credentials=service_account) as server:
        m, refreshes = asyncio.run(main())
    assert m["auth_refreshes"] == refreshes == 1
    # The OAuth2 exchange has its own pool: it never counts as a notification.
    assert m["delivered"] == m["latency_count"] == 500
