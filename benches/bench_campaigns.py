"""Campaign benchmark: one slot of a campaign over 1,000,000 endpoints on SQLite against
``Store.send_to_segment`` over the same segment, and bulk engagement ingest on SQLite and
PostgreSQL.

    python benches/bench_campaigns.py                       # 1M endpoints, 100k events
    python benches/bench_campaigns.py --endpoints 100000 --results benches/RESULTS.md

What it measures:

* segment send: ``send_to_segment("plan=pro", ...)`` in a fresh process (seconds from the
  call to the last result applied; that process's peak RSS);
* campaign slot: a campaign over the same segment, due now, run by ``Scheduler.tick()`` in a
  fresh process (seconds from the slot being due to its last send recorded: planning,
  claiming, a send record per endpoint written before it goes, outcomes written back, the
  run recorded; peak RSS). Goal: within 1.2x of the segment send, RSS under 150 MB;
* engagement ingest: ``record_engagement`` of 100,000 ``opened`` events in one call, each
  naming its endpoint by application and token (looked up in bulk), on SQLite and PostgreSQL.

The mock (``pushwire.testing.MockAPNs``) runs in a process of its own and answers every push
200, so both sends cover the same endpoints. The endpoints are seeded with SQL (the import
path has its own benchmark, bench_store.py). ``--results benches/RESULTS.md`` merges the
report between ``<!-- begin:campaigns -->`` and ``<!-- end:campaigns -->``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benches"))

from bench_store import KEY_ID, TEAM_ID, in_child, load_average, peak_rss_mb, postgres_url  # noqa: E402
from conftest import make_p8  # noqa: E402
from mock_child import mock_in_child  # noqa: E402
from results_md import merge_section  # noqa: E402

TOPIC = "com.example.bench"
RSS_GOAL_MB = 150
RATIO_GOAL = 1.2
EVENTS = 100_000


def token(i: int) -> str:
    return format(i, "064x")


def seed_sqlite(path: str, count: int) -> None:
    """The store's schema through Store.open, then ``count`` endpoints in plain SQL."""
    from pushwire.store import Store

    with Store.open(f"sqlite:///{path}") as store:
        app = store.put_application("ios", provider="apns", topic=TOPIC)
    now = int(time.time() * 1000)
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO endpoints (application_id, token, user_id, enabled, data, attributes, "
            "created_at, updated_at, last_registered_at) VALUES (?, ?, ?, 1, '{}', ?, ?, ?, ?)",
            ((app.id, token(i), f"user{i}", '{"plan":"pro"}', now, now, now) for i in range(count)),
        )
    connection.close()


def _message() -> Any:
    from pushwire.store import PushMessage

    return PushMessage(title="Bench", body="Hello from the campaign benchmark")


def segment_send(url: str, p8: bytes, server: tuple[str, str], connection: Any) -> None:
    import pushwire
    from pushwire.store import Store

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    with Store.open(url) as store:

        async def main() -> dict[str, Any]:
            async with pushwire.APNsClient(credentials, base_url=server[0], ca_file=server[1]) as c:
                started = time.perf_counter()
                report = await store.send_to_segment("plan=pro", _message(), clients={"ios": c})
                return {"sent": report.total, "seconds": time.perf_counter() - started}

        figures = asyncio.run(main())
    figures["peak_rss_mb"] = peak_rss_mb()
    connection.send(figures)


def campaign_slot(url: str, p8: bytes, server: tuple[str, str], connection: Any) -> None:
    import pushwire
    from pushwire.store import Store

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    with Store.open(url) as store:
        campaigns = store.campaigns
        campaign = campaigns.create("bench", segment="plan=pro", message=_message())
        campaigns.schedule(campaign.id)  # immediate: due now

        async def main() -> dict[str, Any]:
            async with pushwire.APNsClient(credentials, base_url=server[0], ca_file=server[1]) as c:
                scheduler = campaigns.scheduler(clients={"ios": c})
                started = time.perf_counter()
                reports = await scheduler.tick()
                return {
                    "sent": sum(r.sent for r in reports),
                    "delivered": sum(r.report.delivered for r in reports if r.report),
                    "seconds": time.perf_counter() - started,
                }

        figures = asyncio.run(main())
    figures["peak_rss_mb"] = peak_rss_mb()
    connection.send(figures)


def ingest(url: str, count: int, *, register: bool) -> float:
    """Events/s of one ``record_engagement`` call with ``count`` opened events."""
    from pushwire.store import Registration, Store

    with Store.open(url) as store:
        if register:
            store.put_application("ios", provider="apns", topic=TOPIC)
            for start in range(0, count, 10_000):
                store.register_many(
                    Registration("ios", token(i)) for i in range(start, min(count, start + 10_000))
                )
        events = [
            {"name": "opened", "engagement": "pw1.1.1.0", "application": "ios", "token": token(i)}
            for i in range(count)
        ]
        started = time.perf_counter()
        recorded = store.campaigns.record_engagement(events)
        elapsed = time.perf_counter() - started
    assert recorded == count
    return count / elapsed


def report(figures: dict[str, Any], command: str, loads: tuple[str, str]) -> str:
    import pushwire

    segment, slot = figures["segment"], figures["campaign"]
    ratio = slot["seconds"] / segment["seconds"]
    goals = (
        f"time {'met' if ratio <= RATIO_GOAL else 'MISSED'} ({ratio:.2f}x, goal {RATIO_GOAL}x); "
        f"RSS {'met' if slot['peak_rss_mb'] < RSS_GOAL_MB else 'MISSED'} "
        f"({slot['peak_rss_mb']:.1f} MB, goal < {RSS_GOAL_MB} MB)"
    )
    n = figures["endpoints"]
    return "\n".join(
        [
            f"## Campaigns: one slot over {n:,} endpoints, engagement ingest",
            "",
            f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
            f"- Machine: nproc={os.cpu_count()}, {platform.platform()}; shared with other "
            f"work (load average {loads[0]} at start, {loads[1]} at end): one run, noisy",
            f"- Python {platform.python_version()}, pushwire {pushwire.__version__}; mock APNs "
            "in its own process, every push answered 200",
            f"- Command: `{command}`",
            "",
            "| run (SQLite) | sent | seconds | endpoints/s | peak RSS MB |",
            "|---|---:|---:|---:|---:|",
            f"| `send_to_segment` | {segment['sent']:,} | {segment['seconds']:.1f} | "
            f"{segment['sent'] / segment['seconds']:,.0f} | {segment['peak_rss_mb']:.1f} |",
            f"| campaign slot (`Scheduler.tick`) | {slot['sent']:,} | {slot['seconds']:.1f} | "
            f"{slot['sent'] / slot['seconds']:,.0f} | {slot['peak_rss_mb']:.1f} |",
            "",
            f"Campaign / segment send: {goals}. The slot does more per endpoint than the "
            "segment send: a send record written before each push (the exactly-once rule), "
            "its treatment assigned by hash, its outcome written back.",
            "",
            "| engagement ingest, one call | events | events/s |",
            "|---|---:|---:|",
            *(
                f"| {backend} | {EVENTS:,} | {rate:,.0f} |"
                for backend, rate in figures["ingest"].items()
            ),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument("--results", type=Path, help="Merge the report into this file.")
    parser.add_argument("--no-postgres", action="store_true", help="Ingest on SQLite only.")
    args = parser.parse_args()
    p8 = make_p8()
    loads = [load_average()]
    figures: dict[str, Any] = {"endpoints": args.endpoints, "ingest": {}}
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/bench.db"
        print(f"seeding {args.endpoints:,} endpoints", file=sys.stderr)
        seed_sqlite(path, args.endpoints)
        url = f"sqlite:///{path}"
        with mock_in_child(p8) as server:
            figures["segment"] = in_child(segment_send, url, p8, server)
        print(f"segment send: {figures['segment']}", file=sys.stderr)
        with mock_in_child(p8) as server:
            figures["campaign"] = in_child(campaign_slot, url, p8, server)
        print(f"campaign slot: {figures['campaign']}", file=sys.stderr)
        figures["ingest"]["SQLite"] = ingest(url, min(EVENTS, args.endpoints), register=False)
    if not args.no_postgres:
        with postgres_url() as pg:
            figures["ingest"]["PostgreSQL"] = ingest(pg, EVENTS, register=True)
    print(json.dumps(figures["ingest"]), file=sys.stderr)
    loads.append(load_average())
    command = "python benches/bench_campaigns.py " + " ".join(sys.argv[1:])
    section = report(figures, command.strip(), (loads[0], loads[1]))
    print(section)
    if args.results is not None:
        merge_section(args.results, "campaigns", section)


if __name__ == "__main__":
    main()
