"""Cost of classifying and summarizing a 100,000-result batch (pure Python, no I/O).

    pip install pytest-benchmark
    python -m pytest benches/bench_classify.py --benchmark-only -q

The batch mimics a healthy send: 90% delivered, 5% 410 ``Unregistered`` with timestamps,
3% 400 ``BadDeviceToken`` (spread out, so no environment-mismatch burst), 2% split between
429, 500, 503 and an unknown reason. The order is shuffled with a fixed seed.
"""

from __future__ import annotations

import random

import pytest

import pushwire
from pushwire import Action, classify, summarize

N = 100_000
TIMESTAMP_MS = 1_700_000_000_000

# (share of the batch, status, reason) -- shares in thousandths.
MIX = [
    (900, 200, None),
    (50, 410, "Unregistered"),
    (30, 400, "BadDeviceToken"),
    (5, 429, "TooManyRequests"),
    (5, 500, "InternalServerError"),
    (5, 503, "ServiceUnavailable"),
    (5, 400, "SomeReasonAppleAddsLater"),
]


def make_batch(n: int = N, seed: int = 1) -> list[pushwire.Result]:
    specs = [(status, reason) for share, status, reason in MIX for _ in range(n * share // 1000)]
    random.Random(seed).shuffle(specs)
    batch = []
    for index, (status, reason) in enumerate(specs):
        outcome = pushwire.Outcome.DELIVERED if status == 200 else pushwire.Outcome.REJECTED
        batch.append(
            pushwire.Result(
                index,
                format(index, "064x"),
                outcome,
                status,
                reason,
                None,
                TIMESTAMP_MS + index if status == 410 else None,
                None,
                1,
                1,
                0.001,
                1,
                None,
                False,
            )
        )
    return batch


@pytest.fixture(scope="module")
def batch() -> list[pushwire.Result]:
    results = make_batch()
    assert len(results) == N
    return results


def classify_all(results: list[pushwire.Result]) -> list[object]:
    return [classify(r) for r in results]


def test_classify_100k(benchmark, batch):
    verdicts = benchmark(classify_all, batch)
    assert sum(v.action is Action.DELIVERED for v in verdicts) == N * 900 // 1000


def test_summarize_100k(benchmark, batch):
    summary = benchmark(summarize, batch)
    assert summary.total == N
    assert not summary.environment_mismatch_suspected
    assert len(summary.tokens_to_drop) == N * (50 + 30) // 1000
    assert len(summary.retryable) == N * 15 // 1000
