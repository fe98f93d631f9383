"""Cancelling a campaign whose slot is already on the worker fleet: the jobs no worker has
taken are recalled (recorded ``cancelled``, never sent), the rest deliver once; counted on the
mock's side, per token, and in the campaign's send records and KPIs."""

from __future__ import annotations

import asyncio
from typing import Any

from pushwire.campaigns import State
from pushwire.campaigns.fleet import FleetScheduler
from pushwire.jobs import ClientOptions, Queue, Worker, WorkerSettings
from pushwire.store import PushMessage, Store
from pushwire.testing import MockAPNs
from support.campaigns import register_bulk
from support.jobs import make_store

ENDPOINTS = 3000
MESSAGE = PushMessage(title="Flash sale", body="Two hours only")


def _states(store: Store) -> dict[str, int]:
    rows = store.database.read(
        lambda c: c.query("SELECT state, COUNT(*) FROM campaign_sends GROUP BY state")
    )
    return {state: int(n) for state, n in rows}


def test_cancel_recalls_the_fleet_jobs_no_worker_has_taken(
    tmp_path, credentials, p8_key, redis_url, stream, key_prefix
):
    url = make_store(tmp_path, p8_key)
    with Store.open(url) as store:
        tokens = register_bulk(store, ENDPOINTS, plan="pro")
        campaigns = store.campaigns
        campaigns.schedule(campaigns.create("flash", segment="plan=pro", message=MESSAGE).id)

    async def main(apns: MockAPNs) -> tuple[Any, int, list[Any]]:
        with Store.open(url) as store:
            scheduler = FleetScheduler(
                store, redis_url=redis_url, stream=stream, key_prefix=key_prefix,
                owner="s1", page_size=200,
            )  # fmt: skip
            try:
                (report,) = await scheduler.tick()  # 15 jobs of 200 on the stream
                assert report.state == "dispatched" and report.sent == ENDPOINTS
                settings = WorkerSettings(
                    redis_url=redis_url, stream=stream, key_prefix=key_prefix,
                    consumer="w1", prefetch=1, slice_size=100, metrics_interval=0.1,
                )  # fmt: skip
                options = ClientOptions(apns_url=apns.url, ca_file=apns.ca_file)
                worker = Worker(settings, store=store, options=options)
                running = asyncio.ensure_future(worker.run())
                try:
                    while apns.total_received < 200:  # the first job is under way
                        await asyncio.sleep(0.01)
                    store.campaigns.cancel("flash", actor="ops")
                    recalled = await scheduler.recall_cancelled()
                    assert await scheduler.recall_cancelled() == 0  # once is enough
                    for _ in range(600):
                        await scheduler.tick()
                        (slot,) = store.campaigns.slots("flash")
                        if slot.state == "done":
                            break
                        await asyncio.sleep(0.05)
                finally:
                    worker.stop()
                    await asyncio.wait_for(running, 60)
                async with Queue(redis_url, stream=stream) as q:
                    jobs = [await q.status(j) for j in await q.jobs(50)]
                return slot, recalled, jobs
            finally:
                await scheduler.aclose()

    with MockAPNs(credentials=credentials, response_delay=0.05) as apns:
        slot, recalled, jobs = asyncio.run(main(apns))
        received = {t: apns.received(t) for t in tokens}
    with Store.open(url) as store:
        states = _states(store)
        kpis = store.campaigns.kpis("flash")
        campaign = store.campaigns.get("flash")
        delivered_tokens = {
            r[0]
            for r in store.database.read(
                lambda c: c.query(
                    "SELECT e.token FROM campaign_sends s JOIN endpoints e "
                    "ON e.id = s.endpoint_id WHERE s.state = 'delivered'"
                )
            )
        }
    assert campaign.state is State.CANCELLED and slot.state == "done"
    # Every job not yet complete is marked, the one being sent too (it finishes).
    assert 1 <= recalled <= 15 and all(j.complete for j in jobs)
    assert sum(1 for j in jobs if j.cancelled_at is not None) == recalled
    # One outcome per endpoint: delivered once, or recalled and never sent.
    assert set(states) == {"delivered", "cancelled"}
    assert states["delivered"] + states["cancelled"] == ENDPOINTS
    assert states["cancelled"] >= 200 and states["cancelled"] % 200 == 0
    assert all(received[t] == (1 if t in delivered_tokens else 0) for t in tokens)
    assert sum(received.values()) == states["delivered"]
    assert slot.counts["recalled"] == states["cancelled"]
    # The KPIs count what was sent: the recalled notifications are not "sent".
    assert sum(k.sent for k in kpis) == sum(k.successful_deliveries for k in kpis)
    assert sum(k.sent for k in kpis) == states["delivered"]
