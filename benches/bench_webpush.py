"""Web Push bulk: pushwire vs pywebpush, notifications/s and CPU per notification, the
RFC 8291 encryption and VAPID included.

    python benches/bench_webpush.py                 # 20,000 subscriptions, 3 push services
    python benches/bench_webpush.py --scale 100000  # 100k with dead (410) and hung ones,
                                                    # through the endpoint store: one outcome
                                                    # each, dead ones disabled, hung time out
    python benches/bench_webpush.py --write-results # merge the section into RESULTS.md
                                                    # (<!-- begin:webpush --> ... end:webpush;
                                                    # with --scale: webpush-scale)

pushwire: ``WebPushClient.send_to_subscriptions`` against three mock push services running in
a process of their own (their CPU, including decrypting every message, is not counted), over
real TLS HTTP/2. CPU is this process's user+system time.

pywebpush cannot reach the mock: it sends with ``requests`` (and ``webpush_async`` with
aiohttp), both HTTP/1.1 only, and the mock speaks HTTP/2 only. So its side is measured as the
work it does per notification before the network: ``webpush()`` with one shared
``requests.Session`` whose transport adapter answers 201 at once (VAPID signing, encryption,
request preparation; no socket). That is a lower bound on its CPU per notification and an
upper bound on its rate. The async variant needs an HTTP/1.1 server and is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pushwire
from pushwire import _core
from pushwire.webpush import WebPushMessage, WebPushSubscription
from results_md import merge_section

PAYLOAD = {"title": "Sale", "body": "50% off everything today", "url": "https://example.com/"}


#: Rules of the --scale run: subscription ids starting "dead" answer 410, "hung" never answer.
SCALE_RULES = {"dead": "unregistered", "hung": "hang"}


def _serve(services: int, connection: Any, rules: dict[str, str] | None = None) -> None:
    from pushwire.testing import MockWebPush

    with MockWebPush(services=services, rules=rules) as mock:
        connection.send((mock.urls, str(mock.ca_file)))
        connection.recv()
        connection.send(mock.total_received)


@contextmanager
def mock_in_child(
    services: int, rules: dict[str, str] | None = None
) -> Iterator[tuple[list[str], str]]:
    context = multiprocessing.get_context("spawn")
    parent, child_end = context.Pipe()
    child = context.Process(target=_serve, args=(services, child_end, rules))
    child.start()
    if not parent.poll(60):
        child.kill()
        raise SystemExit("the mock push services did not start")
    try:
        yield parent.recv()
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


def run_pushwire(
    urls: list[str], ca_file: str, subs: list[WebPushSubscription]
) -> dict[str, float]:
    message = WebPushMessage(PAYLOAD, ttl=3600)

    async def main() -> tuple[float, float, int]:
        key = pushwire.VapidKey.generate()
        async with pushwire.WebPushClient(
            key, subject="mailto:ops@example.com", ca_file=ca_file
        ) as client:
            await client.send_to_subscriptions(message, subs[: len(urls)])  # connect first
            cpu, wall = time.process_time(), time.perf_counter()
            results = await client.send_to_subscriptions(message, subs)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall, cpu, sum(r.delivered for r in results)

    wall, cpu, delivered = asyncio.run(main())
    return {"rate": len(subs) / wall, "cpu_us": cpu / len(subs) * 1e6, "delivered": delivered}


def run_pywebpush(subs: list[WebPushSubscription], count: int) -> dict[str, float]:
    import requests
    from pywebpush import webpush

    class Answer201(requests.adapters.BaseAdapter):
        """No network: every request is answered 201 at once."""

        def send(self, request: Any, **kwargs: Any) -> requests.Response:
            response = requests.Response()
            response.status_code = 201
            response.request = request
            response._content = b""
            return response

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("https://", Answer201())
    key = pushwire.VapidKey.generate()
    raw = key._key.private_numbers().private_value.to_bytes(32, "big")
    private = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    data = __import__("json").dumps(PAYLOAD)
    cpu, wall = time.process_time(), time.perf_counter()
    for sub in subs[:count]:
        webpush(
            {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
            data,
            vapid_private_key=private,
            vapid_claims={"sub": "mailto:ops@example.com"},
            ttl=3600,
            requests_session=session,
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rate": count / wall, "cpu_us": cpu / count * 1e6}


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
        mock_in_child(services, SCALE_RULES) as (urls, ca_file),
    ):
        subs = subscriptions(urls, count, scale_id)
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
                key, subject="mailto:ops@example.com", ca_file=ca_file, request_timeout=timeout
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
    parser.add_argument("--pywebpush-count", type=int, default=2_000)
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
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
    with mock_in_child(args.services) as (urls, ca_file):
        subs = subscriptions(urls, args.count)
        ours = run_pushwire(urls, ca_file, subs)
    theirs = run_pywebpush(subs, min(args.pywebpush_count, args.count))
    assert ours["delivered"] == args.count, ours
    ours_row = f"| pushwire `send_to_subscriptions` (HTTP/2, real TLS) | {ours['rate']:,.0f} |"
    ours_row += f" {ours['cpu_us']:,.0f} µs |"
    n_theirs = min(args.pywebpush_count, args.count)
    theirs_row = f"| pywebpush `webpush()`, shared session, no network ({n_theirs:,}) |"
    theirs_row += f" {theirs['rate']:,.0f} | {theirs['cpu_us']:,.0f} µs |"
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""## Web Push bulk (benches/bench_webpush.py)

{args.count:,} subscriptions over {args.services} mock push services (another process; every
message decrypted there), one message, encryption and VAPID included. {when},
{platform.machine()}, {os.cpu_count()} cores, **shared with other jobs (busy machine)**:
compare ratios, not absolute figures.

| sender | notifications/s | CPU per notification |
|---|---:|---:|
{ours_row}
{theirs_row}

pywebpush cannot reach the HTTP/2-only mock (requests and aiohttp speak HTTP/1.1), so its row
is the work before the network (a transport adapter answers 201 at once): a lower bound on its
CPU, an upper bound on its rate. Its async variant (`webpush_async`, aiohttp) was not measured.
pywebpush signs a VAPID JWT per call; pushwire signs one per push service and half-day.
pushwire's rate is bounded by the mock here: its process decrypts every message (RustCrypto
P-256, slower than the engine's ring) on the same 2 busy cores.
"""
    print(body)
    if args.write_results:
        merge_section(Path(__file__).resolve().parent / "RESULTS.md", "webpush", body)


if __name__ == "__main__":
    main()
