"""Micro-benchmarks of the per-batch costs around the engine (pytest-benchmark).

    python -m pytest benches/bench_ffi.py --benchmark-only -q

- JWT signing: one ES256 provider token (minted at most every 20-50 minutes per key, so this
  bounds how cheap a key rotation is, not the send path).
- Into the engine: 10,000 tokens validated across the FFI (the check `send_to_tokens` makes
  before anything is sent), and 10,000 submitted (validated again, turned into requests and
  queued) to a pool whose server is the in-process mock.
- Out of the engine: 10,000 outcomes drained into Python tuples, and turned into `Result`s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pushwire
from conftest import make_p8
from pushwire import _core
from pushwire._record import ID
from pushwire._results import result_from_record
from pushwire.testing import MockAPNs

N = 10_000
MESSAGE = pushwire.Message({"aps": {"alert": {"title": "Hi", "body": "there"}}}, topic="com.b")
TOKENS = [f"{i:064x}" for i in range(N)]


@pytest.fixture(scope="module")
def credentials() -> pushwire.TokenCredentials:
    return pushwire.TokenCredentials(make_p8(), key_id="ABC123DEFG", team_id="TEAM123456")


@pytest.fixture(scope="module")
def engine_and_pool(credentials: pushwire.TokenCredentials) -> Iterator[tuple[Any, int]]:
    with MockAPNs(credentials=credentials) as server:
        engine = _core.Engine(max_in_flight=1_000_000)
        pool = engine.add_pool(server.url, pushwire.PoolOptions(), ca_file=str(server.ca_file))
        engine.set_authorization(pool, credentials.authorization())
        yield engine, pool
        engine.close(grace=5.0)


def wait_for_outcomes(engine: Any) -> None:
    """Until every submitted request has its outcome waiting in the engine's inbox."""
    deadline = time.monotonic() + 60
    while engine.outstanding() > 0:
        assert time.monotonic() < deadline, "the mock did not answer in time"
        time.sleep(0.01)


def test_mint_one_es256_provider_token(benchmark, credentials) -> None:
    token = benchmark(lambda: credentials._mint(time.time()))
    assert token.count(".") == 2


def test_validate_10k_tokens_across_the_ffi(benchmark, engine_and_pool) -> None:
    engine, _ = engine_and_pool
    benchmark(engine.validate_tokens, MESSAGE._template, TOKENS)


def test_submit_10k_tokens(benchmark, engine_and_pool) -> None:
    engine, pool = engine_and_pool
    ids = iter(range(1, 1_000_000))

    def submit() -> None:
        engine.submit_tokens(pool, next(ids) << 32, MESSAGE._template, TOKENS)

    def drain_all() -> None:
        wait_for_outcomes(engine)
        while engine.drain(N):
            pass

    benchmark.pedantic(submit, setup=drain_all, rounds=10, iterations=1)
    drain_all()


def test_drain_10k_outcomes_and_build_results(benchmark, engine_and_pool) -> None:
    engine, pool = engine_and_pool
    ids = iter(range(1, 1_000_000))
    drained: list[int] = []

    def ready() -> None:
        engine.submit_tokens(pool, (1000 + next(ids)) << 32, MESSAGE._template, TOKENS)
        wait_for_outcomes(engine)

    def drain() -> None:
        got = 0
        while got < N:
            records = engine.drain(N)
            results = [result_from_record(record, record[ID] & 0xFFFFFFFF) for record in records]
            got += len(results)
        drained.append(got)

    benchmark.pedantic(drain, setup=ready, rounds=10, iterations=1)
    assert drained and all(n == N for n in drained)
