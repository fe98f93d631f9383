"""pushwire, measured inside a child process: ``send_to_tokens`` batches, FCM v1, the hang
case, ``stream()`` and many concurrent single ``send`` calls."""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..common import (
    DELIVERED,
    FCM_DATA,
    FCM_EMAIL,
    FCM_NOTIFICATION,
    FCM_PROJECT,
    HANG_PREFIX,
    HANG_REQUEST_TIMEOUT,
    KEY_ID,
    PAYLOAD,
    PUSHWIRE_MAX_IN_FLIGHT,
    STREAM_LATENCY_SAMPLES,
    TEAM_ID,
    TIMEOUT,
    TOKENS,
    TOPIC,
    WARMUP,
    WARMUP_TOKEN_BASE,
    device_token,
    expected_outcomes,
    fcm_token,
    hangs,
)
from ..measure import Meter, measurement, peak_rss_mb


def outcome_key(result: Any) -> str:
    """The same outcome names for every tool: delivered, timeout, or 'STATUS Reason'."""
    outcome = result.outcome.value
    if outcome == "rejected":
        return f"{result.status} {result.reason}"
    if outcome == "failed":
        return f"failed {result.reason or result.status}"
    return str(outcome)


def client(spec: dict[str, Any], request_timeout: float = 10) -> Any:
    import pushwire

    creds = pushwire.TokenCredentials(spec["key_file"], key_id=KEY_ID, team_id=TEAM_ID)
    return pushwire.APNsClient(
        creds,
        base_url=spec["url"],
        ca_file=spec["ca_file"],
        request_timeout=request_timeout,
        max_connections=spec["connections"],
        max_streams_per_connection=spec["streams"],
        max_in_flight=PUSHWIRE_MAX_IN_FLIGHT,
        rate_limit=spec["rate"] * 60 if spec.get("rate") else None,
    )


def fcm_client(spec: dict[str, Any]) -> Any:
    import pushwire

    service_account = pushwire.ServiceAccountCredentials(
        {
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key": Path(spec["sa_key_file"]).read_text(),
            "client_email": FCM_EMAIL,
        }
    )
    return pushwire.FCMClient(
        service_account,
        base_url=spec["url"],
        token_uri=spec["token_uri"],
        ca_file=spec["ca_file"],
        request_timeout=10,
        max_connections=spec["connections"],
        max_in_flight=PUSHWIRE_MAX_IN_FLIGHT,
    )


async def warm_up(client: Any, message: Any, tokens: list[str] | None = None) -> None:
    if tokens is None:
        tokens = [device_token(WARMUP_TOKEN_BASE + i) for i in range(WARMUP)]
    results = await client.send_to_tokens(message, tokens)
    bad = [r for r in results if not r.delivered]
    if bad:
        raise RuntimeError(f"warm-up failed: {len(bad)} not delivered, first: {bad[0]!r}")


def positions_seen(results: list[Any], n: int) -> bytearray:
    """Results come back in input order: a shifted index would mean a lost or doubled one."""
    seen = bytearray(n)
    for position, r in enumerate(results):
        if position < n and r.index == position:
            seen[position] += 1
    return seen


def list_report(
    spec: dict[str, Any],
    meter: Meter,
    results: list[Any],
    expected: Mapping[str, int] | None = None,
    latencies: list[float] | None = None,
) -> dict[str, Any]:
    n = spec["n"]
    outcomes = Counter(outcome_key(r) for r in results)
    if latencies is None:
        latencies = [r.latency for r in results]
    report = measurement(spec, meter, outcomes, positions_seen(results, n), latencies, expected)
    if len(results) != n:
        report["ok"] = False
        report["error"] = f"{len(results)} results for {n} notifications"
    return report


async def batch(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``send_to_tokens`` call (bulk, latency-40ms, rejected-5pct)."""
    import pushwire

    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    token_of = TOKENS[spec["scenario"]]
    tokens = [token_of(i) for i in range(spec["n"])]
    async with client(spec) as c:
        await warm_up(c, message)
        with Meter() as meter:
            results = await c.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        connections = c.stats()["connections_opened"]
    report = list_report(spec, meter, results, expected_outcomes(tokens))
    wrong = sum(1 for r, t in zip(results, tokens, strict=False) if r.token != t)
    if wrong:
        report["ok"] = False
        report["error"] = f"{wrong} results carry another token than their position's"
    return report | {"maxrss_mb": rss, "warmup": WARMUP, "connections": connections}


async def fcm_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    """FCM v1 through the OAuth2 flow; the access token is granted during the warm-up."""
    import pushwire

    message = pushwire.FCMMessage(
        notification=pushwire.FCMNotification(**FCM_NOTIFICATION), data=FCM_DATA
    )
    tokens = [fcm_token(i) for i in range(spec["n"])]
    async with fcm_client(spec) as c:
        await warm_up(c, message, [fcm_token(i, "warm") for i in range(WARMUP)])
        with Meter() as meter:
            results = await c.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        connections = c.stats()["connections_opened"]
        grants = c.token_refreshes
    report = list_report(spec, meter, results)
    errors = [report["error"]] if report["error"] else []
    name_prefix = f"projects/{FCM_PROJECT}/messages/"
    unnamed = sum(
        1 for r in results if r.delivered and not (r.message_id or "").startswith(name_prefix)
    )
    if unnamed:
        errors.append(f"{unnamed} delivered without a message name {name_prefix}...")
    if grants != 1:
        errors.append(f"{grants} OAuth2 access tokens obtained, expected 1")
    report |= {"ok": report["ok"] and not errors, "error": "; ".join(errors) or None}
    return report | {
        "maxrss_mb": rss,
        "warmup": WARMUP,
        "connections": connections,
        "oauth_grants": grants,
    }


class AnswerClock:
    """When the last answer of a batch reached the event loop.

    ``send_to_tokens`` hands back every result at once, after the last timeout, so the time
    the answered notifications were done is read where outcome batches arrive: pushwire's
    (private) ``Dispatcher.deliver``, wrapped only inside the timed window of this child.
    """

    def __init__(self) -> None:
        self.answered = 0
        self.last_answer_at: float | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[AnswerClock]:
        from pushwire import _dispatch
        from pushwire._record import OUTCOME

        original = _dispatch.Dispatcher.deliver
        clock = self

        def deliver(dispatcher: Any, batch: list[tuple[Any, ...]]) -> None:
            answered = sum(1 for record in batch if record[OUTCOME] == DELIVERED)
            if answered:
                clock.answered += answered
                clock.last_answer_at = time.perf_counter()
            original(dispatcher, batch)

        _dispatch.Dispatcher.deliver = deliver  # type: ignore[method-assign]
        try:
            yield self
        finally:
            _dispatch.Dispatcher.deliver = original  # type: ignore[method-assign]


async def hang(spec: dict[str, Any]) -> dict[str, Any]:
    """1 token in HANG_EVERY never answered: those, and only those, must time out."""
    import pushwire

    n = spec["n"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    token_of = TOKENS["hang"]
    tokens = [token_of(i) for i in range(n)]
    hung = sum(1 for i in range(n) if hangs(i))
    clock = AnswerClock()
    async with client(spec, request_timeout=HANG_REQUEST_TIMEOUT) as c:
        await warm_up(c, message)
        before = c.stats()
        with clock.watching(), Meter() as meter:
            results = await c.send_to_tokens(message, tokens)
        rss = peak_rss_mb()
        after = c.stats()
    answered_latencies = [r.latency for r in results if r.delivered]
    timeout_latencies = [r.latency for r in results if r.outcome.value == TIMEOUT]
    expected = {DELIVERED: n - hung, TIMEOUT: hung}
    report = list_report(spec, meter, results, expected, answered_latencies)
    errors = [report["error"]] if report["error"] else []
    wrong = [
        r.index
        for r in results
        if (r.outcome.value == TIMEOUT) != hangs(r.index)
        or (hangs(r.index) and not r.token.startswith(HANG_PREFIX))
    ]
    if wrong:
        errors.append(f"{len(wrong)} results where timeout != hung token, first index {wrong[0]}")
    answered_s = None
    if clock.last_answer_at is not None and clock.answered == n - hung:
        answered_s = clock.last_answer_at - meter.t0
    else:
        errors.append(f"the answer clock saw {clock.answered} answers, expected {n - hung}")
    engine = {
        key: after[key] - before[key] for key in ("timeouts", "dead_by_timeouts", "late_answers")
    }
    if engine["timeouts"] != hung:
        errors.append(f"the engine counted {engine['timeouts']} timeouts for {hung} hung tokens")
    report |= {"ok": report["ok"] and not errors, "error": "; ".join(errors) or None}
    return report | {
        "maxrss_mb": rss,
        "warmup": WARMUP,
        "connections": after["connections_opened"],
        "hung": hung,
        "answered": n - hung,
        "answered_s": answered_s,
        "answered_rate": None if not answered_s else (n - hung) / answered_s,
        "tail_s": None if answered_s is None else meter.wall_s - answered_s,
        "timeout_latency_min_s": min(timeout_latencies, default=None),
        "timeout_latency_max_s": max(timeout_latencies, default=None),
        "engine": engine,
    }


async def stream(spec: dict[str, Any]) -> dict[str, Any]:
    import pushwire

    n = spec["n"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    # A generator: the full list of notifications never exists.
    notifications = (pushwire.Notification(device_token(i), message) for i in range(n))
    stride = max(1, n // STREAM_LATENCY_SAMPLES)
    outcomes: Counter[str] = Counter()
    seen = bytearray(n)
    latencies = array.array("d")
    async with client(spec) as c:
        await warm_up(c, message)
        with Meter() as meter:
            async for r in c.stream(notifications):
                outcomes[outcome_key(r)] += 1
                if 0 <= r.index < n:
                    seen[r.index] += 1
                if r.index % stride == 0:
                    latencies.append(r.latency)
        rss = peak_rss_mb()
        connections = c.stats()["connections_opened"]
    report = measurement(spec, meter, outcomes, seen, latencies)
    return report | {"maxrss_mb": rss, "warmup": WARMUP, "connections": connections}


async def single_send(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec['tasks']`` concurrent tasks, each looping ``await client.send(...)`` of one
    notification until N have been sent (the embedded-service pattern)."""
    import pushwire

    n, tasks = spec["n"], spec["tasks"]
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    outcomes: Counter[str] = Counter()
    seen = bytearray(n)
    latencies = array.array("d", bytes(8 * n))
    wrong_token = 0
    next_index = itertools.count()

    async def worker(c: Any) -> None:
        nonlocal wrong_token
        for i in next_index:
            if i >= n:
                return
            token = device_token(i)
            started = time.perf_counter()
            r = await c.send(pushwire.Notification(token, message))
            latencies[i] = time.perf_counter() - started
            outcomes[outcome_key(r)] += 1
            seen[i] += 1
            wrong_token += r.token != token

    async with client(spec) as c:
        await warm_up(c, message)
        with Meter() as meter:
            await asyncio.gather(*(worker(c) for _ in range(min(tasks, n))))
        rss = peak_rss_mb()
        connections = c.stats()["connections_opened"]
    report = measurement(spec, meter, outcomes, seen, latencies)
    if wrong_token:
        report["ok"] = False
        report["error"] = f"{wrong_token} results for another token"
    return report | {
        "maxrss_mb": rss,
        "warmup": WARMUP,
        "connections": connections,
        "tasks": min(tasks, n),
    }


def current_rss_mb() -> float:
    """Resident memory now (not the peak): /proc/self/statm's second field, in pages."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _send_stream_count(
    spec: dict[str, Any],
    c: Any,
    notifications: Iterable[Any],
    seen: bytearray,
    rss_samples: list[float],
) -> dict[str, Any]:
    """``stream-10m --stream-api send_stream``: one BulkReport; every index is accounted for
    from its packed message ids (delivered) and its problems, after the clock stops. With
    ``send_stream_counts`` (``message_ids=False``) no id is kept: the delivered are counted,
    so each index is checked only among the problems and the totals must add up."""
    n = spec["n"]
    keep_ids = spec["stream_api"] == "send_stream"

    async def sample_rss() -> None:  # no per-result hook here: sample on a clock instead
        while True:
            await asyncio.sleep(1.0)
            rss_samples.append(current_rss_mb())

    sampler = asyncio.ensure_future(sample_rss())
    try:
        with Meter() as meter:
            report = await c.send_stream(notifications, message_ids=keep_ids)
    finally:
        sampler.cancel()
    rss_samples.append(current_rss_mb())
    rss = peak_rss_mb()
    for index, _message_id in report.message_ids.items():
        if 0 <= index < n:
            seen[index] += 1
    if not keep_ids and report.total == n:
        # No ids: every index not among the problems was counted delivered.
        seen[:] = b"\x01" * n
        problem_indices = {p.index for p in report.problems}
        for index in problem_indices:
            if 0 <= index < n:
                seen[index] = 0
    outcomes: Counter[str] = Counter()
    for problem in report.problems:
        outcomes[outcome_key(problem)] += 1
        if 0 <= problem.index < n:
            seen[problem.index] += 1
    outcomes[DELIVERED] += report.delivered
    measured = measurement(spec, meter, outcomes, seen, [])
    return measured | {
        "maxrss_mb": rss,
        "rss_samples_mb": [round(x, 1) for x in rss_samples],
        "warmup": WARMUP,
        "connections": c.stats()["connections_opened"],
        "stream_kwargs": {"api": spec["stream_api"]},
        "message_ids_bytes": report.message_ids.nbytes,
    }


async def stream_count(spec: dict[str, Any]) -> dict[str, Any]:
    """``stream-10m``: ``spec['n']`` notifications through ``client.stream()`` over a
    generator, every result counted by its index, resident memory sampled at every tenth
    of the way so a growth shows up (peak RSS alone would hide when it happened).
    ``spec['stream_kwargs']`` is passed to ``stream()`` as keyword arguments."""
    import pushwire

    n = spec["n"]
    kwargs = spec.get("stream_kwargs") or {}
    message = pushwire.Message(PAYLOAD, topic=TOPIC)
    notifications = (pushwire.Notification(device_token(i), message) for i in range(n))
    stride = max(1, n // STREAM_LATENCY_SAMPLES)
    tenth = max(1, n // 10)
    outcomes: Counter[str] = Counter()
    # One byte per notification (10 MB for 10M): part of the peak RSS reported.
    seen = bytearray(n)
    latencies = array.array("d")
    rss_samples: list[float] = []
    done = 0
    async with client(spec) as c:
        await warm_up(c, message)
        rss_samples.append(current_rss_mb())
        if spec.get("stream_api") in ("send_stream", "send_stream_counts"):
            return await _send_stream_count(spec, c, notifications, seen, rss_samples)
        with Meter() as meter:
            async for r in c.stream(notifications, **kwargs):
                outcomes[outcome_key(r)] += 1
                if 0 <= r.index < n:
                    seen[r.index] += 1
                if r.index % stride == 0:
                    latencies.append(r.latency)
                done += 1
                if done % tenth == 0:
                    rss_samples.append(current_rss_mb())
        rss = peak_rss_mb()
        connections = c.stats()["connections_opened"]
    report = measurement(spec, meter, outcomes, seen, latencies)
    return report | {
        "maxrss_mb": rss,
        "rss_samples_mb": [round(x, 1) for x in rss_samples],
        "warmup": WARMUP,
        "connections": connections,
        "stream_kwargs": kwargs,
    }
