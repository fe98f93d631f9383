"""aioapns, measured inside a child process: AIOAPNS_CONCURRENCY workers calling
``send_notification`` (a bounded gather)."""

from __future__ import annotations

import array
import asyncio
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..common import (
    AIOAPNS_CONCURRENCY,
    DELIVERED,
    KEY_ID,
    PAYLOAD,
    TEAM_ID,
    TOKENS,
    TOPIC,
    WARMUP,
    WARMUP_TOKEN_BASE,
    device_token,
    expected_outcomes,
)
from ..measure import Meter, measurement, peak_rss_mb


def zeros(n: int) -> array.array[float]:
    return array.array("d", bytes(8 * n))


def point_at(url: str) -> None:
    """aioapns has no base_url: its protocol classes carry the host and port as class
    attributes, so the child patches them (the installed package is left untouched)."""
    from aioapns import connection

    parts = urlsplit(url)
    for cls in (connection.APNsProductionClientProtocol, connection.APNsDevelopmentClientProtocol):
        cls.APNS_SERVER = parts.hostname
        cls.APNS_PORT = parts.port


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """What aioapns builds by default (create_default_context), plus trust in the server's
    CA, plus ALPN h2: nginx speaks HTTP/2 over TLS only to clients that ask for it."""
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["h2"])
    return context


async def send_all(
    client: Any,
    tokens: list[str],
    seen: bytearray,
    latencies: array.array[float],
    budget: int = AIOAPNS_CONCURRENCY,
) -> Counter[str]:
    """Send with AIOAPNS_CONCURRENCY workers pulling from one iterator."""
    from aioapns import NotificationRequest, PushType

    outcomes: Counter[str] = Counter()
    work = iter(enumerate(tokens))

    async def worker() -> None:
        for i, token in work:
            request = NotificationRequest(
                device_token=token, message=PAYLOAD, push_type=PushType.ALERT
            )
            started = time.perf_counter()
            try:
                response = await client.send_notification(request)
            except Exception as e:  # a failure is a result here, not a crash
                outcomes[f"exception {type(e).__name__}"] += 1
            else:
                latencies[i] = time.perf_counter() - started
                ok = response.is_successful
                outcomes[DELIVERED if ok else f"{response.status} {response.description}"] += 1
            seen[i] += 1

    # aioapns has no stream cap of its own: its concurrency is the same budget as the others'.
    workers = min(AIOAPNS_CONCURRENCY, budget, len(tokens))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return outcomes


async def batch(spec: dict[str, Any]) -> dict[str, Any]:
    from aioapns import APNs

    point_at(spec["url"])
    client = APNs(
        key=Path(spec["key_file"]).read_text(),
        key_id=KEY_ID,
        team_id=TEAM_ID,
        topic=TOPIC,
        use_sandbox=False,
        max_connections=spec["connections"],
        max_connection_attempts=3,
        ssl_context=ssl_context(spec["ca_file"]),
    )
    n = spec["n"]
    token_of = TOKENS[spec["scenario"]]
    try:
        warm = [device_token(WARMUP_TOKEN_BASE + i) for i in range(WARMUP)]
        warm_outcomes = await send_all(client, warm, bytearray(WARMUP), zeros(WARMUP))
        if warm_outcomes.get(DELIVERED, 0) != WARMUP:
            raise RuntimeError(f"warm-up failed: {dict(warm_outcomes)}")
        tokens = [token_of(i) for i in range(n)]
        seen = bytearray(n)
        latencies = zeros(n)
        with Meter() as meter:
            budget = spec["connections"] * spec["streams"]
            outcomes = await send_all(client, tokens, seen, latencies, budget)
        rss = peak_rss_mb()
        connections = len(client.pool.connections)
    finally:
        client.pool.close()
    if any(key.startswith("exception") for key in outcomes):
        latencies = array.array("d")  # latencies of failed sends are not measured
    report = measurement(spec, meter, outcomes, seen, latencies, expected_outcomes(tokens))
    return report | {"maxrss_mb": rss, "connections": connections, "warmup": WARMUP}
