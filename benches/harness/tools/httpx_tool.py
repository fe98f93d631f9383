"""httpx with HTTP/2 (a plain async client baseline), measured inside a child process.

One ``httpx.AsyncClient(http2=True)`` per connection of the budget (an httpx client keeps one
HTTP/2 connection per origin, and httpcore opens at most HTTPX_STREAMS_PER_CONNECTION streams
on it), HTTPX_CONCURRENCY tasks spread over the clients, APNs-shaped POSTs with the ES256
provider token minted by the parent, TLS verified against the server's CA.
"""

from __future__ import annotations

import array
import asyncio
import ssl
import time
from collections import Counter
from typing import Any

from ..common import (
    DELIVERED,
    HTTPX_CONCURRENCY,
    HTTPX_STREAMS_PER_CONNECTION,
    HTTPX_WARMUP,
    PAYLOAD_BYTES,
    TOKENS,
    TOPIC,
    WARMUP_TOKEN_BASE,
    device_token,
    expected_outcomes,
)
from ..measure import Meter, measurement, peak_rss_mb


async def send_all(
    clients: list[Any],
    url: str,
    headers: dict[str, str],
    tokens: list[str],
    seen: bytearray,
    latencies: array.array[float],
    budget: int = HTTPX_CONCURRENCY,
) -> tuple[Counter[str], int]:
    """(outcomes, responses not over HTTP/2)."""
    outcomes: Counter[str] = Counter()
    work = iter(enumerate(tokens))
    not_h2 = 0

    async def worker(client: Any) -> None:
        nonlocal not_h2
        for i, token in work:
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"{url}/3/device/{token}", content=PAYLOAD_BYTES, headers=headers
                )
            except Exception as e:  # a failure is a result here, not a crash
                outcomes[f"exception {type(e).__name__}"] += 1
            else:
                latencies[i] = time.perf_counter() - started
                not_h2 += response.http_version != "HTTP/2"
                if response.status_code == 200:
                    outcomes[DELIVERED] += 1
                else:
                    reason = response.json().get("reason") if response.content else None
                    outcomes[f"{response.status_code} {reason}"] += 1
            seen[i] += 1

    workers = min(HTTPX_CONCURRENCY, budget, len(tokens))
    await asyncio.gather(*(worker(clients[k % len(clients)]) for k in range(workers)))
    return outcomes, not_h2


async def batch(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    context = ssl.create_default_context(cafile=spec["ca_file"])
    headers = {
        "authorization": f"bearer {spec['jwt']}",
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "content-type": "application/json",
    }
    clients = [
        httpx.AsyncClient(
            http2=True,
            verify=context,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for _ in range(spec["connections"])
    ]
    n = spec["n"]
    token_of = TOKENS[spec["scenario"]]
    try:
        warm = [device_token(WARMUP_TOKEN_BASE + i) for i in range(HTTPX_WARMUP)]
        warm_latencies = array.array("d", bytes(8 * HTTPX_WARMUP))
        warm_outcomes, _ = await send_all(
            clients, spec["url"], headers, warm, bytearray(HTTPX_WARMUP), warm_latencies
        )
        if warm_outcomes.get(DELIVERED, 0) != HTTPX_WARMUP:
            raise RuntimeError(f"warm-up failed: {dict(warm_outcomes)}")
        tokens = [token_of(i) for i in range(n)]
        seen = bytearray(n)
        latencies = array.array("d", bytes(8 * n))
        with Meter() as meter:
            budget = spec["connections"] * min(spec["streams"], HTTPX_STREAMS_PER_CONNECTION)
            outcomes, not_h2 = await send_all(
                clients, spec["url"], headers, tokens, seen, latencies, budget
            )
        rss = peak_rss_mb()
    finally:
        for c in clients:
            await c.aclose()
    report = measurement(spec, meter, outcomes, seen, latencies, expected_outcomes(tokens))
    if not_h2:
        report["ok"] = False
        report["error"] = f"{not_h2} responses not over HTTP/2"
    return report | {"maxrss_mb": rss, "connections": len(clients), "warmup": HTTPX_WARMUP}
