"""A campaign scheduler in a process of its own, for the crash tests (not a test module):
ticks until the campaign named on the command line is completed, then exits 0.

    python campaign_scheduler_child.py --db URL --owner NAME --campaign NAME \\
        (--apns-url URL --ca-file PEM --p8 FILE | --redis URL --stream S --key-prefix P)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pushwire import APNsClient, TokenCredentials
from pushwire.campaigns import State
from pushwire.campaigns.fleet import FleetScheduler
from pushwire.store import Store


async def main(args: argparse.Namespace) -> int:
    with Store.open(args.db) as store:
        if args.redis:
            scheduler = FleetScheduler(
                store,
                redis_url=args.redis,
                stream=args.stream,
                key_prefix=args.key_prefix,
                owner=args.owner,
                lease_seconds=args.lease,
                page_size=args.page_size,
            )
            try:
                return await loop(store, scheduler, args)
            finally:
                await scheduler.aclose()
        key = Path(args.p8).read_bytes()
        credentials = TokenCredentials(key, key_id="ABC123DEFG", team_id="TEAM123456")
        async with APNsClient(credentials, base_url=args.apns_url, ca_file=args.ca_file) as ios:
            scheduler = store.campaigns.scheduler(
                clients={"ios": ios},
                owner=args.owner,
                lease_seconds=args.lease,
                page_size=args.page_size,
            )
            return await loop(store, scheduler, args)


async def loop(store: Store, scheduler: object, args: argparse.Namespace) -> int:
    while store.campaigns.get(args.campaign).state is not State.COMPLETED:
        reports = await scheduler.tick()  # type: ignore[attr-defined]
        for report in reports:
            print(
                f"{args.owner}: slot {report.slot_id} {report.state} sent={report.sent} "
                f"in_doubt={report.in_doubt}",
                flush=True,
            )
        await asyncio.sleep(0.05)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--db", "--owner", "--campaign", "--apns-url", "--ca-file", "--p8", "--redis"):
        parser.add_argument(name)
    parser.add_argument("--stream", default="pushwire:campaigns")
    parser.add_argument("--key-prefix", default="pushwire")
    parser.add_argument("--lease", type=float, default=1.5)
    parser.add_argument("--page-size", type=int, default=200)
    sys.exit(asyncio.run(main(parser.parse_args())))
