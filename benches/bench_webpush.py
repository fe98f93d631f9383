"""Web Push bulk: pushwire vs pywebpush, notifications/s and CPU per notification, the
RFC 8291 encryption and VAPID included.

    python benches/bench_webpush.py                 # 20,000 per row (pywebpush sync: 2,000),
                                                    # 3 HTTP/2 + 3 HTTP/1.1-only push services
    python benches/bench_webpush.py --scale 100000  # 100k with dead (410) and hung ones,
                                                    # through the endpoint store: one outcome
                                                    # each, dead ones disabled, hung time out
    python benches/bench_webpush.py --write-results # merge the section into RESULTS.md
                                                    # (<!-- begin:webpush --> ... end:webpush;
                                                    # with --scale: webpush-scale)

One mock process of its own (its CPU, decrypting every message, is not counted) runs
``--services`` HTTP/2 push services and as many HTTP/1.1-only ones (ALPN ``http/1.1``), all
checking VAPID and decrypting. Against it, in one run, each with connections opened first:

- pushwire ``WebPushClient.send_to_subscriptions`` to the HTTP/2 services, and to the
  HTTP/1.1-only ones (one request at a time per connection, ``max_connections`` connections
  per service; one row per ``--h1-connections`` value);
- pywebpush ``webpush()`` with one shared ``requests.Session`` (``verify=`` the mock's CA) to
  the HTTP/1.1-only services, one call at a time, on ``--pywebpush-count`` subscriptions (it is
  slow: fewer than the others);
- pywebpush ``webpush_async()`` with one shared aiohttp session (its connector trusting the
  mock's CA) to the HTTP/1.1-only services, ``--in-flight`` calls at a time.

Each row: notifications/s and CPU per notification (this process's user+system time). Every
row is checked on the mock's side: its counters grew by exactly the row's count, and each
subscription (distinct ids per row) received exactly one request; the sender saw 201 for all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pushwire
from pushwire import _core
from pushwire.webpush import WebPushMessage, WebPushSubscription
from results_md import merge_section

#: The packages whose versions the results name.
VERSIONED = ("pywebpush", "requests", "aiohttp")

PAYLOAD = {"title": "Sale", "body": "50% off everything today", "url": "https://example.com/"}


#: Rules of the --scale run: subscription ids starting "dead" answer 410, "hung" never answer.
SCALE_RULES = {"dead": "unregistered", "hung": "hang"}


def _serve(
    services: int, connection: Any, rules: dict[str, str] | None = None, http1_services: int = 0
) -> None:
    from pushwire.testing import MockWebPush

    with MockWebPush(services=services, rules=rules, http1_services=http1_services) as mock:
        connection.send((mock.urls, str(mock.ca_file)))
        while (request := connection.recv()) != "stop":
            # ("count", subscriptions): the total received, and how many of these
            # subscriptions did not receive exactly one request (counted here, off the clock).
            subs = request[1]
            connection.send((mock.total_received, sum(mock.received(s) != 1 for s in subs)))
        connection.send(mock.total_received)


class MockProcess:
    """The mock push services' process: its urls, CA file and counters."""

    def __init__(self, connection: Any, urls: list[str], ca_file: str) -> None:
        self._connection, self.urls, self.ca_file = connection, urls, ca_file

    def count(self, subs: list[WebPushSubscription]) -> tuple[int, int]:
        """(total received on the mock, how many of ``subs`` did not receive exactly once)."""
        self._connection.send(("count", subs))
        result: tuple[int, int] = self._connection.recv()
        return result


@contextmanager
def mock_in_child(
    services: int, rules: dict[str, str] | None = None, http1_services: int = 0
) -> Iterator[MockProcess]:
    context = multiprocessing.get_context("spawn")
    parent, child_end = context.Pipe()
    child = context.Process(target=_serve, args=(services, child_end, rules, http1_services))
    child.start()
    if not parent.poll(60):
        child.kill()
        raise SystemExit("the mock push services did not start")
    try:
        yield MockProcess(parent, *parent.recv())
    finally:
        parent.send("stop")
        parent.poll(30)
        child.join(30)


def scale_id(i: int) -> str:
    """Every 20th subscription is dead, every 97th (not dead) hangs."""
    return ("dead" if i % 20 == 0 else "hung" if i % 97 == 0 else "live") + f"{i:x}"


def subscriptions(
    urls: list[str], count: int, name: Any = lambda i: f"b{i:x}"
) -> list[WebPushSubscription]:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    subs = []
    for i in range(count):
        sub_id = name(i)
        p256dh, auth = _core.mock_webpush_keys(sub_id)
        subs.append(
            WebPushSubscription(f"{urls[i % len(urls)]}/wp/{sub_id}", b64(p256dh), b64(auth))
        )
    return subs


def checked(
    mock: MockProcess,
    subs: list[WebPushSubscription],
    before: int,
    accepted: int,
    wall: float,
    cpu: float,
) -> dict[str, float]:
    """The run's figures, once the mock's side shows exactly ``len(subs)`` more requests, one
    per subscription, and the sender saw every one accepted (201)."""
    after, not_once = mock.count(subs)
    n = len(subs)
    assert accepted == n, f"{accepted} of {n} accepted"
    assert after - before == n and not_once == 0, (after - before, n, not_once)
    return {"n": n, "rate": n / wall, "cpu_us": cpu / n * 1e6}


def run_pushwire(
    mock: MockProcess,
    subs: list[WebPushSubscription],
    warm: list[WebPushSubscription],
    **options: Any,
) -> dict[str, float]:
    """``WebPushClient.send_to_subscriptions`` once for all ``subs`` (connections opened
    first with ``warm``, one subscription per push service, not counted)."""
    message = WebPushMessage(PAYLOAD, ttl=3600)

    async def main() -> dict[str, float]:
        key = pushwire.VapidKey.generate()
        async with pushwire.WebPushClient(
            key, subject="mailto:ops@example.com", ca_file=mock.ca_file, **options
        ) as client:
            await client.send_to_subscriptions(message, warm)
            before, _ = mock.count([])
            cpu, wall = time.process_time(), time.perf_counter()
            results = await client.send_to_subscriptions(message, subs)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return checked(mock, subs, before, sum(r.delivered for r in results), wall, cpu)

    return asyncio.run(main())


def _pywebpush_args() -> tuple[str, str]:
    """(VAPID private key as pywebpush takes it, the payload)."""
    key = pushwire.VapidKey.generate()
    raw = key._key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), json.dumps(PAYLOAD)


def _info(sub: WebPushSubscription) -> dict[str, Any]:
    return {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}


def run_pywebpush(
    mock: MockProcess, subs: list[WebPushSubscription], warm: list[WebPushSubscription]
) -> dict[str, float]:
    """pywebpush ``webpush()``, one call per subscription, one shared ``requests.Session``
    trusting the mock's CA (keep-alive HTTP/1.1), over the network."""
    import requests
    from pywebpush import webpush

    private, data = _pywebpush_args()
    session = requests.Session()
    session.verify = mock.ca_file
    # Else requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the session's `verify`.
    session.trust_env = False

    def send(subs: list[WebPushSubscription]) -> int:
        accepted = 0
        for sub in subs:
            response = webpush(
                _info(sub),
                data,
                vapid_private_key=private,
                # A new dict per call: pywebpush writes the first endpoint's `aud` into it.
                vapid_claims={"sub": "mailto:ops@example.com"},
                ttl=3600,
                requests_session=session,
            )
            accepted += response.status_code == 201
        return accepted

    with session:
        send(warm)
        before, _ = mock.count([])
        cpu, wall = time.process_time(), time.perf_counter()
        accepted = send(subs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return checked(mock, subs, before, accepted, wall, cpu)


def run_pywebpush_async(
    mock: MockProcess,
    subs: list[WebPushSubscription],
    warm: list[WebPushSubscription],
    in_flight: int,
) -> dict[str, float]:
    """pywebpush ``webpush_async`` (aiohttp), one shared ``ClientSession`` trusting the mock's
    CA, ``in_flight`` calls at a time (a semaphore), over the network."""
    import ssl

    import aiohttp
    from pywebpush import webpush_async

    private, data = _pywebpush_args()

    async def main() -> dict[str, float]:
        connector = aiohttp.TCPConnector(
            ssl=ssl.create_default_context(cafile=mock.ca_file), limit=in_flight
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            gate = asyncio.Semaphore(in_flight)

            async def one(sub: WebPushSubscription) -> bool:
                async with gate:
                    response = await webpush_async(
                        _info(sub),
                        data,
                        vapid_private_key=private,
                        vapid_claims={"sub": "mailto:ops@example.com"},
                        ttl=3600,
                        aiohttp_session=session,
                    )
                    return getattr(response, "status", 0) == 201

            async def send(subs: list[WebPushSubscription]) -> int:
                return sum(await asyncio.gather(*(one(s) for s in subs)))

            await send(warm)
            before, _ = mock.count([])
            cpu, wall = time.process_time(), time.perf_counter()
            accepted = await send(subs)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return checked(mock, subs, before, accepted, wall, cpu)

    return asyncio.run(main())


def run_scale(count: int, services: int, timeout: float) -> str:
    """``count`` subscriptions with dead and hung ones, registered in an endpoint store
    (SQLite) and sent as a segment: exactly one outcome each (the run's counts by outcome),
    the dead 410 and disabled in the store (exactly them), the hung ``timeout`` at their
    deadline and still enabled, the rest delivered."""
    import tempfile

    from pushwire.store import PushMessage, Registration, SegmentFilter, Store

    message = PushMessage(title=PAYLOAD["title"], body=PAYLOAD["body"])
    registered_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Store.open(f"sqlite:///{tmp}/scale.db") as store,
        mock_in_child(services, SCALE_RULES) as mock,
    ):
        subs = subscriptions(mock.urls, count, scale_id)
        store.put_application("web", provider="webpush")
        started = time.perf_counter()
        for start in range(0, count, 5000):
            store.register_many(
                Registration("web", s.endpoint, p256dh=s.p256dh, auth=s.auth,
                             registered_at=registered_at)
                for s in subs[start : start + 5000]
            )  # fmt: skip
        registered = time.perf_counter() - started

        async def main() -> tuple[float, Any]:
            key = pushwire.VapidKey.generate()
            async with pushwire.WebPushClient(
                key, subject="mailto:ops@example.com", ca_file=mock.ca_file, request_timeout=timeout
            ) as client:
                started = time.perf_counter()
                report = await store.send_to_segment(
                    SegmentFilter(applications=["web"]), message, clients={"web": client}
                )
                return time.perf_counter() - started, report

        elapsed, report = asyncio.run(main())
        disabled = {e.token for e in store.endpoints(enabled=False)}
        enabled = sum(1 for _ in store.endpoints(enabled=True))
    kinds = [scale_id(i)[:4] for i in range(count)]
    dead = {s.endpoint for s, kind in zip(subs, kinds, strict=True) if kind == "dead"}
    tally = report.applications["web"]
    assert report.total == tally.sent == count, report
    assert report.delivered == kinds.count("live"), report
    assert tally.timed_out == kinds.count("hung"), tally
    assert tally.rejected == tally.invalid_tokens == kinds.count("dead"), tally
    assert tally.failed == 0, tally
    assert disabled == dead and tally.tokens_disabled == len(dead), tally
    assert enabled == count - len(dead)
    return (
        f"{count:,} subscriptions over {services} push services, registered in the endpoint "
        f"store (SQLite, {registered:.1f} s) and sent as a segment: {kinds.count('live'):,} "
        f"delivered, {kinds.count('dead'):,} dead (410) and exactly those disabled in the "
        f"store, {kinds.count('hung'):,} hung (`timeout` at the {timeout:g} s deadline, still "
        f"enabled), one outcome each, sent in {elapsed:.1f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--pywebpush-count", type=int, default=2_000, help="pywebpush sync")
    parser.add_argument("--pywebpush-async-count", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=100, help="pywebpush async")
    parser.add_argument(
        "--h1-connections", type=int, nargs="+", default=[2, 32],
        help="pushwire's max_connections per HTTP/1.1 push service (one row each)",
    )  # fmt: skip
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument(
        "--machine",
        default="a machine shared with other jobs (busy)",
        help="the machine's state, as the results should say it",
    )
    parser.add_argument("--scale", type=int, default=0, help="run the fault scale check only")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.scale:
        line = run_scale(args.scale, args.services, args.timeout)
        print(line)
        if args.write_results:
            body = f"## Web Push at scale (benches/bench_webpush.py --scale)\n\n{line}\n"
            merge_section(Path(__file__).resolve().parent / "RESULTS.md", "webpush-scale", body)
        return
    load = os.getloadavg()[0]
    h2_rows, h1_rows = [], []
    n, n_sync, n_async = args.count, args.pywebpush_count, args.pywebpush_async_count
    with mock_in_child(args.services, http1_services=args.services) as mock:
        h2_urls, h1_urls = mock.urls[: args.services], mock.urls[args.services :]

        def subs(prefix: str, urls: list[str], count: int) -> list[WebPushSubscription]:
            # Distinct ids per run: each subscription must be received exactly once.
            return subscriptions(urls, count, lambda i: f"{prefix}{i:x}")

        def warm(prefix: str, urls: list[str]) -> list[WebPushSubscription]:
            return subs(f"{prefix}warm", urls, len(urls))

        h2 = run_pushwire(mock, subs("h2", h2_urls, n), warm("h2", h2_urls))
        h2_rows.append(("pushwire `send_to_subscriptions`, HTTP/2 (`max_connections=2`)", h2))
        for conns in args.h1_connections:
            h1 = run_pushwire(
                mock, subs(f"h1c{conns}", h1_urls, n), warm(f"h1c{conns}", h1_urls),
                max_connections=conns,
            )  # fmt: skip
            h1_rows.append(
                (f"pushwire `send_to_subscriptions`, HTTP/1.1 (`max_connections={conns}`)", h1)
            )
        sync = run_pywebpush(mock, subs("pws", h1_urls, n_sync), warm("pws", h1_urls))
        h1_rows.append(("pywebpush `webpush()`, shared `requests.Session`", sync))
        asy = run_pywebpush_async(
            mock, subs("pwa", h1_urls, n_async), warm("pwa", h1_urls), args.in_flight
        )
        h1_rows.append(
            (f"pywebpush `webpush_async()`, shared aiohttp session, {args.in_flight} in flight",
             asy)
        )  # fmt: skip

    def row(service: str, name: str, r: dict[str, float]) -> str:
        return f"| {service} | {name} | {r['n']:,.0f} | {r['rate']:,.0f} | {r['cpu_us']:,.0f} µs |"

    rows = "\n".join(
        [row("HTTP/2", name, r) for name, r in h2_rows]
        + [row("HTTP/1.1 only", name, r) for name, r in h1_rows]
    )
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONED)
    command = (
        f"python benches/bench_webpush.py --count {n} --pywebpush-count {n_sync}"
        f" --pywebpush-async-count {n_async} --in-flight {args.in_flight}"
        f" --h1-connections {' '.join(map(str, args.h1_connections))}"
        f" --services {args.services}"
    )
    body = f"""## Web Push bulk (benches/bench_webpush.py)

    {command}

One run ({versions}), one mock process (its own; its CPU, decrypting every message, is
not counted) with {args.services} HTTP/2 push services and {args.services}
HTTP/1.1-only ones; subscriptions spread evenly over them. One message, encryption and
VAPID included; CPU is the sender process's user+system time per notification. Every row
was checked on the mock's side: its counters grew by exactly the row's count and each
subscription received exactly one request (201 for all). {when}, {platform.machine()},
{os.cpu_count()} cores, load average {load:.1f} at the start, **{args.machine}**: compare
ratios, not absolute figures.

| push services | sender | notifications | notifications/s | CPU per notification |
|---|---|---:|---:|---:|
{rows}

pywebpush sync sends one request at a time, so it runs on fewer subscriptions ({n_sync:,}).
pywebpush signs a VAPID JWT per call; pushwire signs one per push service and half-day. Over
HTTP/1.1 pushwire sends one request at a time per connection and opens up to
`max_connections` connections per push service. pushwire's rates are bounded by the mock: its
process decrypts every message (RustCrypto P-256) on the same busy cores, so more connections
or HTTP/2 do not raise them here; the CPU column is the sender's own cost.
"""
    print(body)
    if args.write_results:
        merge_section(Path(__file__).resolve().parent / "RESULTS.md", "webpush", body)


if __name__ == "__main__":
    main()
