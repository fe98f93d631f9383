"""The job queue on a real Redis server, with workers in this process: enqueue, send,
exactly one recorded outcome per notification, idempotent records, reclaiming, dead letters,
collapse ids, shared credentials and rate limits, bad input."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest

import pushwire
from pushwire.jobs import (
    ClientOptions,
    JobExistsError,
    JobInputError,
    Queue,
    QueueUnavailableError,
    UnknownJobError,
    Worker,
    WorkerSettings,
    with_collapse,
)
from pushwire.jobs.clients import collapse_id
from pushwire.jobs.keys import Keys
from pushwire.jobs.model import OutcomeRecord
from pushwire.jobs.outcomes import OutcomeRecorder
from pushwire.jobs.quota import SharedQuota
from pushwire.jobs.shared_auth import SharedAPNsClient, SharedAuth, SharedFCMClient
from pushwire.store import APNsOverride, FCMOverride, PushMessage, Store
from pushwire.store.model import Application, Provider
from pushwire.testing import MockAPNs, MockFCM
from support.jobs import KEY_ID, TEAM_ID, make_store
from support.util import tokens

MESSAGE = PushMessage(title="Hi", body="there")


def settings(redis_url: str, stream: str, key_prefix: str, **extra: Any) -> WorkerSettings:
    extra.setdefault("consumer", "w1")
    extra.setdefault("metrics_interval", 0.1)
    return WorkerSettings(redis_url=redis_url, stream=stream, key_prefix=key_prefix, **extra)


async def all_outcomes(queue: Queue, job: str) -> dict[int, OutcomeRecord]:
    return {index: record async for index, record in queue.outcomes(job)}


class RunningWorker:
    """A Worker running in this event loop until the block ends."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.final: dict[str, float] = {}

    async def __aenter__(self) -> Worker:
        self._task = asyncio.ensure_future(self.worker.run())
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.worker.stop()
        self.final = await asyncio.wait_for(self._task, 60)


def test_a_job_through_a_worker_gives_every_notification_one_outcome(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    live, dead = tokens(5000, "a1"), tokens(50, "dead")
    all_tokens = live + dead
    with Store.open(db) as store:
        store.register_many([{"application": "ios", "token": t} for t in dead])
    with MockAPNs(credentials=credentials, rules={"dead": "unregistered"}) as server:

        async def main() -> tuple[Any, dict[int, OutcomeRecord], dict[str, Any], RunningWorker]:
            with Store.open(db) as store:
                options = ClientOptions(apns_url=server.url, ca_file=server.ca_file)
                running = RunningWorker(
                    Worker(settings(redis_url, stream, key_prefix), store=store, options=options)
                )
                async with running, Queue(redis_url, stream=stream, chunk_size=700) as q:
                    job = await q.enqueue("ios", iter(all_tokens), MESSAGE)
                    status = await q.wait(job, timeout=60, poll=0.05)
                    outcomes = await all_outcomes(q, job)
                    stats = await q.stats()
                return status, outcomes, stats, running

        status, outcomes, stats, running = asyncio.run(main())
        assert all(server.received(t) == 1 for t in all_tokens)
        assert server.distinct_tokens == 1
    n = len(all_tokens)
    assert status.complete and status.total == status.recorded == n
    assert status.chunks == status.chunks_done == math.ceil(n / 700)
    assert status.by_outcome == {"delivered": 5000, "rejected": 50}
    assert status.by_action == {"delivered": 5000, "drop_token": 50}
    assert status.resent == status.dead_lettered == 0
    assert status.applications == ["ios"]
    assert sorted(outcomes) == list(range(n))
    assert all(outcomes[i].token == t for i, t in enumerate(all_tokens))
    assert {outcomes[i].reason for i in range(5000, n)} == {"Unregistered"}
    assert stats["stream_length"] == 0 and stats["pending"] == 0 and stats["lag"] == 0
    final = running.final
    assert final["notifications"] == n and final["chunks_done"] == status.chunks
    assert final["jwt_mints"] == 1 and final["in_flight"] == 0
    assert final["outcome_delivered"] == 5000 and final["latency_p99_seconds"] > 0
    with Store.open(db) as store:  # results applied: the dead tokens are disabled
        assert all(not store.get("ios", t).enabled for t in dead)


def test_a_worker_exports_its_own_and_its_clients_metrics_to_prometheus(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from pushwire.jobs.metrics import WorkerCollector

    db = make_store(tmp_path, p8_key)
    registry = CollectorRegistry()
    with MockAPNs(credentials=credentials, rules={"ba": "bad-token"}) as server:

        async def main() -> str:
            with Store.open(db) as store:
                options = ClientOptions(
                    apns_url=server.url, ca_file=server.ca_file, metrics_registry=registry
                )
                worker = Worker(
                    settings(redis_url, stream, key_prefix), store=store, options=options
                )
                registry.register(WorkerCollector(worker.metrics, "w1"))
                async with RunningWorker(worker), Queue(redis_url, stream=stream) as q:
                    job = await q.enqueue("ios", tokens(900, "a2") + tokens(100, "ba"), MESSAGE)
                    await q.wait(job, timeout=60, poll=0.05)
                    # Scraped while the worker runs (a stopped worker's clients are closed).
                    return generate_latest(registry).decode()

        text = asyncio.run(main())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ios = (("client", "ios"), ("provider", "apns"))
    assert samples[("pushwire_outcomes_total", (*ios[:1], ("outcome", "delivered"), ios[1]))] == 900
    assert samples[("pushwire_outcomes_total", (*ios[:1], ("outcome", "rejected"), ios[1]))] == 100
    assert samples[("pushwire_notification_latency_seconds_count", ios)] == 1000
    assert samples[("pushwire_worker_notifications", (("consumer", "w1"),))] == 1000
    assert samples[("pushwire_worker_outcome_rejected", (("consumer", "w1"),))] == 100


def test_outcome_records_are_idempotent_and_counters_never_double_count(redis_url, stream):
    async def main() -> tuple[Any, Any, Any]:
        async with Queue(redis_url, stream=stream) as q:
            job = await q.enqueue("ios", ["aa", "bb", "cc"], MESSAGE)
            recorder = OutcomeRecorder(q._redis, q.keys)
            first = [
                (0, OutcomeRecord("aa", "delivered", "delivered", 200)),
                (1, OutcomeRecord("bb", "rejected", "drop_token", 410, "Unregistered")),
            ]
            again = [
                (1, OutcomeRecord("bb", "delivered", "delivered", 200)),  # a second send
                (2, OutcomeRecord("cc", "delivered", "delivered", 200)),
            ]
            counts = (await recorder.record(job, first), await recorder.record(job, again))
            await recorder.record(job, again)
            return counts, await q.status(job), await all_outcomes(q, job)

    counts, status, outcomes = asyncio.run(main())
    assert counts == ((2, 0), (1, 1))
    assert status.recorded == 3 and status.state == "running"  # its chunk is not acknowledged
    assert status.by_outcome == {"delivered": 2, "rejected": 1}
    assert outcomes[1].reason == "Unregistered"  # the first record stays


def test_collapse_id_from_the_job_unless_the_message_has_one():
    now = datetime.now(timezone.utc)
    ios = Application("ios", Provider.APNS, "production", "com.example.app", None, None, now, now)
    android = Application("android", Provider.FCM, None, None, "demo-project", None, now, now)
    message = with_collapse(MESSAGE, "j1")
    assert message.render(ios).collapse_id == collapse_id("j1") == "pw-j1"
    assert b'"collapse_key":"pw-j1"' in message.render(android).encoded
    own = PushMessage(
        title="Hi",
        apns=APNsOverride(collapse_id="mine"),
        fcm=FCMOverride(android=pushwire.AndroidConfig(collapse_key="theirs")),
    )
    kept = with_collapse(own, "j1")
    assert kept.render(ios).collapse_id == "mine"
    assert b'"collapse_key":"theirs"' in kept.render(android).encoded
    block = with_collapse(
        PushMessage(title="Hi", fcm=FCMOverride(android=pushwire.AndroidConfig(priority="HIGH"))),
        "j2",
    )
    assert b'"collapse_key":"pw-j2"' in block.render(android).encoded
    # iOS devices behind FCM collapse by the APNs header, in a rendered block or the caller's.
    assert json.loads(message.render(android).encoded)["apns"]["headers"] == {
        "apns-collapse-id": "pw-j1"
    }
    theirs = with_collapse(
        PushMessage(
            title="Hi",
            fcm=FCMOverride(apns=pushwire.ApnsConfig(headers={"apns-priority": "5"})),
        ),
        "j3",
    )
    assert json.loads(theirs.render(android).encoded)["apns"]["headers"] == {
        "apns-priority": "5",
        "apns-collapse-id": "pw-j3",
    }


def test_entries_of_a_dead_consumer_are_reclaimed_and_only_unrecorded_ones_resent(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    toks = tokens(1000, "b2")
    with MockAPNs(credentials=credentials) as server:

        async def main() -> tuple[Any, Any]:
            async with Queue(redis_url, stream=stream, chunk_size=500) as q:
                job = await q.enqueue("ios", toks, MESSAGE)
                # A consumer reads both chunks, records 300 outcomes of the first, then dies.
                await q._redis.xreadgroup(q.group, "dead", {stream: ">"}, count=10)
                recorder = OutcomeRecorder(q._redis, q.keys)
                done = [
                    (i, OutcomeRecord(toks[i], "delivered", "delivered", 200)) for i in range(300)
                ]
                await recorder.record(job, done)
                with Store.open(db) as store:
                    options = ClientOptions(apns_url=server.url, ca_file=server.ca_file)
                    worker = Worker(
                        settings(redis_url, stream, key_prefix, reclaim_idle=0.3),
                        store=store,
                        options=options,
                    )
                    running = RunningWorker(worker)
                    async with running:
                        status = await q.wait(job, timeout=30, poll=0.05)
                return status, running.final

        status, final = asyncio.run(main())
        sent = [server.received(t) for t in toks]
    assert sent[:300] == [0] * 300  # recorded before the crash: not sent again
    assert sent[300:] == [1] * 700
    assert status.complete and status.recorded == 1000 and status.resent == 700
    assert status.by_outcome == {"delivered": 1000} and status.chunks_done == 2
    assert final["reclaimed_entries"] == 2 and final["resent_after_reclaim"] == 700


CHUNK = '{"job":"x","app":"ios","first":0,"tokens":%s,"message":{}%s}'


def test_malformed_entries_go_to_the_dead_letter_stream_and_never_block_the_group(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    toks = tokens(100, "c3")
    bad_entries = [
        {"hello": "world"},
        {"job": "x", "chunk": "0", "data": "{not json"},
        {"job": "x", "chunk": "0", "data": CHUNK % ("[]", "")},
        {"job": "x", "chunk": "0", "data": CHUNK % ('["aa"]', ',"v":9')},
    ]
    with MockAPNs(credentials=credentials) as server:

        async def main() -> tuple[Any, list[dict[str, str]], dict[str, Any]]:
            async with Queue(redis_url, stream=stream) as q:
                for fields in bad_entries:
                    await q._redis.xadd(stream, fields)
                job = await q.enqueue("ios", toks, MESSAGE)
                with Store.open(db) as store:
                    options = ClientOptions(apns_url=server.url, ca_file=server.ca_file)
                    w = Worker(
                        settings(redis_url, stream, key_prefix), store=store, options=options
                    )
                    async with RunningWorker(w):
                        status = await q.wait(job, timeout=30, poll=0.05)
                return status, await q.dead_letters(), await q.stats()

        status, dead, stats = asyncio.run(main())
        assert all(server.received(t) == 1 for t in toks)
    assert status.complete and status.by_outcome == {"delivered": 100}
    reasons = [d["reason"] for d in reversed(dead)]
    assert len(reasons) == 4
    assert "no 'data' field" in reasons[0]
    assert "not a job chunk" in reasons[1]
    assert "1 to 10000 tokens" in reasons[2]
    assert "version 9 is not supported" in reasons[3]
    assert all(d["consumer"] == "w1" and d["entry"] for d in dead)
    assert stats["stream_length"] == 0 and stats["pending"] == 0 and stats["dead_letters"] == 4


def test_unknown_application_dead_letters_the_chunk_and_records_every_notification_failed(
    redis_url, stream, key_prefix, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)

    async def main() -> tuple[Any, dict[int, OutcomeRecord], list[dict[str, str]]]:
        async with Queue(redis_url, stream=stream, chunk_size=10) as q:
            job = await q.enqueue("nosuchapp", tokens(25, "d4"), MESSAGE)
            with Store.open(db) as store:
                w = Worker(settings(redis_url, stream, key_prefix), store=store)
                async with RunningWorker(w):
                    status = await q.wait(job, timeout=30, poll=0.05)
            return status, await all_outcomes(q, job), await q.dead_letters()

    status, outcomes, dead = asyncio.run(main())
    assert status.complete and status.recorded == 25 and status.dead_lettered == 3
    assert status.by_outcome == {"failed": 25} and status.by_action == {"fix_config": 25}
    assert sorted(outcomes) == list(range(25))
    assert all(not r.maybe_delivered for r in outcomes.values())
    assert "no application named 'nosuchapp'" in outcomes[0].error
    assert len(dead) == 3 and all("no application named 'nosuchapp'" in d["reason"] for d in dead)
    assert {d["job"] for d in dead} == {status.job_id}


def test_a_cancelled_job_sends_no_chunk_a_worker_had_not_taken(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    """Cancel mid-job: chunks being sent finish, the rest are recorded failed (JobCancelled,
    never sent); every notification has one outcome and the mock saw only the sent ones."""
    db = make_store(tmp_path, p8_key)
    all_tokens = tokens(2000, "c5")
    with MockAPNs(credentials=credentials, response_delay=0.05) as server:

        async def main() -> tuple[Any, Any, dict[int, OutcomeRecord]]:
            with Store.open(db) as store:
                options = ClientOptions(apns_url=server.url, ca_file=server.ca_file)
                # One chunk at a time, so most are still queued when the cancel comes.
                worker = Worker(
                    settings(redis_url, stream, key_prefix, prefetch=1, slice_size=100),
                    store=store,
                    options=options,
                )
                async with (
                    RunningWorker(worker),
                    Queue(redis_url, stream=stream, chunk_size=100) as q,
                ):
                    job = await q.enqueue("ios", iter(all_tokens), MESSAGE)
                    while (await q.status(job)).recorded == 0:
                        await asyncio.sleep(0.01)
                    first = await q.cancel(job)
                    again = await q.cancel(job)
                    status = await q.wait(job, timeout=60, poll=0.05)
                    with pytest.raises(UnknownJobError):
                        await q.cancel("j0nosuchjob0000000")
                    return (first, again), status, await all_outcomes(q, job)

        (first, again), status, outcomes = asyncio.run(main())
        received = {t: server.received(t) for t in all_tokens}
    assert first.cancelled_at is not None and again.cancelled_at == first.cancelled_at
    assert status.complete and status.total == status.recorded == 2000
    assert sorted(outcomes) == list(range(2000))
    cancelled = [r for r in outcomes.values() if r.reason == "JobCancelled"]
    delivered = [r for r in outcomes.values() if r.outcome == "delivered"]
    assert len(cancelled) + len(delivered) == 2000
    assert 100 <= len(delivered) < 2000 and len(cancelled) % 100 == 0
    assert all(r.outcome == "failed" and not r.maybe_delivered for r in cancelled)
    assert status.by_outcome == {"delivered": len(delivered), "failed": len(cancelled)}
    # Counted on the server: each delivered token once, each cancelled one never.
    assert all(received[r.token] == 1 for r in delivered)
    assert all(received[r.token] == 0 for r in cancelled)


def test_an_entry_that_keeps_killing_workers_is_dead_lettered(
    redis_url, stream, key_prefix, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)

    async def main() -> tuple[Any, list[dict[str, str]]]:
        async with Queue(redis_url, stream=stream) as q:
            job = await q.enqueue("ios", tokens(5, "e5"), MESSAGE)
            await q._redis.xreadgroup(q.group, "dead", {stream: ">"}, count=1)
            for _ in range(3):  # three more workers claimed it and died
                await asyncio.sleep(0.02)
                await q._redis.xautoclaim(stream, q.group, "dead", 1, "0-0")
            with Store.open(db) as store:
                w = Worker(
                    settings(redis_url, stream, key_prefix, reclaim_idle=0.2, max_deliveries=4),
                    store=store,
                )
                async with RunningWorker(w):
                    status = await q.wait(job, timeout=30, poll=0.05)
            return status, await q.dead_letters()

    status, dead = asyncio.run(main())
    assert status.complete and status.by_outcome == {"failed": 5} and status.dead_lettered == 1
    assert "delivered 5 times without being acknowledged" in dead[0]["reason"]


def test_bad_input_gives_clear_errors(redis_url, stream):
    async def main() -> None:
        async with Queue(redis_url, stream=stream) as q:
            with pytest.raises(UnknownJobError, match="no job 'nope'"):
                await q.status("nope")
            with pytest.raises(JobInputError, match="token 1 must be"):
                await q.enqueue("ios", ["aa", ""], MESSAGE)
            with pytest.raises(JobInputError, match="iterable of token strings"):
                await q.enqueue("ios", "aabb", MESSAGE)
            with pytest.raises(JobInputError, match="a job id is"):
                await q.enqueue("ios", ["aa"], MESSAGE, job_id="bad id")
            with pytest.raises(pushwire.PayloadError, match="body"):
                await q.enqueue("ios", ["aa"], {"sound": "default"})
            await q.enqueue("ios", ["aa"], MESSAGE, job_id="fixed-1")
            with pytest.raises(JobExistsError, match="exists already"):
                await q.enqueue("ios", ["aa"], MESSAGE, job_id="fixed-1")

    asyncio.run(main())
    with pytest.raises(JobInputError, match="chunk_size"):
        Queue(redis_url, chunk_size=0)
    with pytest.raises(JobInputError, match="redis://"):
        Queue("http://localhost")
    with pytest.raises(JobInputError, match="stream must be"):
        Queue(redis_url, stream="has space")
    with pytest.raises(JobInputError, match="slice_size"):
        WorkerSettings(window=10, slice_size=20).check()


def test_redis_unreachable_is_a_clear_error_without_the_password():
    url = "redis://:sekrit-pw@127.0.0.1:1/0"

    async def main() -> None:
        with pytest.raises(QueueUnavailableError) as caught:
            async with Queue(url):
                pass
        assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in str(caught.value)
        assert "sekrit" not in str(caught.value)
        worker = Worker(WorkerSettings(redis_url=url), store=None)
        with pytest.raises(QueueUnavailableError, match="while starting the worker"):
            await worker.run()

    asyncio.run(main())
    assert isinstance(QueueUnavailableError("x"), pushwire.PushwireError)


def test_fcm_workers_share_one_access_token(redis_url, key_prefix, service_account):
    with MockFCM(credentials=service_account) as server:

        async def main() -> list[int]:
            import redis.asyncio

            conn = redis.asyncio.Redis.from_url(redis_url)
            clients = [
                SharedFCMClient(
                    service_account,
                    shared=SharedAuth(conn, key_prefix, f"w{i}"),
                    base_url=server.url,
                    token_uri=server.token_uri,
                    ca_file=server.ca_file,
                )
                for i in range(6)
            ]
            try:
                message = pushwire.FCMMessage(data={"k": "v"})
                results = await asyncio.gather(
                    *(c.send_to_tokens(message, [f"tok{i}"]) for i, c in enumerate(clients))
                )
                assert all(r[0].delivered for r in results)
                return [c.grants for c in clients]
            finally:
                for c in clients:
                    await c.aclose()
                await conn.aclose()

        grants = asyncio.run(main())
        assert server.oauth_tokens_issued == 1
    assert sorted(grants) == [0, 0, 0, 0, 0, 1]


def test_after_a_401_one_new_access_token_is_fetched_and_shared(
    redis_url, key_prefix, service_account
):
    with MockFCM(credentials=service_account) as server:

        async def main() -> None:
            import redis.asyncio

            conn = redis.asyncio.Redis.from_url(redis_url)
            clients = [
                SharedFCMClient(
                    service_account,
                    shared=SharedAuth(conn, key_prefix, f"w{i}"),
                    base_url=server.url,
                    token_uri=server.token_uri,
                    ca_file=server.ca_file,
                )
                for i in range(3)
            ]
            message = pushwire.FCMMessage(data={"k": "v"})
            try:
                for c in clients:
                    assert (await c.send_to_tokens(message, ["t"]))[0].delivered
                server.expire_oauth_tokens()
                for c in clients:  # each gets a 401, then resends with the new shared token
                    assert (await c.send_to_tokens(message, ["t"]))[0].delivered
            finally:
                for c in clients:
                    await c.aclose()
                await conn.aclose()

        asyncio.run(main())
        assert server.oauth_tokens_issued == 2


def test_shared_quota_is_one_sliding_window_per_project(redis_url, key_prefix):
    """10 messages in any second (600/min counted in 1-second windows, one slice, no guard):
    reservations from two workers share it, a full window makes the next wait until enough
    of the oldest leave it, another project has its own, and a settled reservation counts
    from the moment its messages were answered."""

    async def main() -> tuple[list[float], float, float, float]:
        import redis.asyncio

        conn = redis.asyncio.Redis.from_url(redis_url)
        try:
            make = functools.partial(
                SharedQuota, conn, key_prefix, per_minute=600, window=1.0, slices=1, guard=0.0
            )
            a, b, other = make(project="p1"), make(project="p1"), make(project="p2")
            started = time.monotonic()
            waits = [
                (await a.reserve(6)).wait,
                (await b.reserve(4)).wait,  # the window is full now
                (await a.reserve(5)).wait,  # once the first 6 left: a second after them
                (await b.reserve(5)).wait,  # once the 4 left too
                (await other.reserve(10)).wait,
            ]
            # Redis reads its clock in whole milliseconds.
            elapsed = time.monotonic() - started + 0.002
            # More than a window's share is placed in parts, one window after another.
            big = (await make(project="p3").reserve(25)).wait
            settled = make(project="p4")
            first = await settled.reserve(10)
            await asyncio.sleep(0.3)
            await settled.settle(first)
            after_settle = (await settled.reserve(1)).wait
            return waits, elapsed, big, after_settle
        finally:
            await conn.aclose()

    waits, elapsed, big, after_settle = asyncio.run(main())
    assert waits[0] == waits[1] == 0 == waits[4]
    assert 1.0 - elapsed <= waits[2] <= 1.0
    assert 1.0 - elapsed <= waits[3] <= 1.0
    assert 2.0 - elapsed <= big <= 2.0
    # Counted from the settle, not from the reservation 0.3 s before it.
    assert 0.95 <= after_settle <= 1.0
    with pytest.raises(JobInputError):
        SharedQuota(None, "p", "x", 0)
    with pytest.raises(JobInputError):
        SharedQuota(None, "p", "x", 10, window=61.0)


def test_shared_jwt_is_minted_once_and_adopted(redis_url, key_prefix, p8_key):
    async def main() -> list[pushwire.TokenCredentials]:
        import redis.asyncio

        conn = redis.asyncio.Redis.from_url(redis_url)
        creds = [
            pushwire.TokenCredentials(p8_key, key_id=KEY_ID, team_id=TEAM_ID) for _ in range(8)
        ]
        try:
            await asyncio.gather(
                *(SharedAuth(conn, key_prefix, f"w{i}").share_jwt(c) for i, c in enumerate(creds))
            )
        finally:
            await conn.aclose()
        return creds

    creds = asyncio.run(main())
    assert sum(c.mints for c in creds) == 1
    assert len({c.authorization() for c in creds}) == 1
    assert sum(c.mints for c in creds) == 1  # adopted tokens are not minted again
    assert "bearer" not in repr(creds[0]) and "hidden" in repr(creds[0])


class _Clock:
    """Epoch seconds moved by hand: the JWTs' ``iat``."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_an_expired_shared_jwt_is_replaced_once_for_every_worker(
    redis_url, key_prefix, p8_key, message
):
    """APNs calls the shared JWT expired on every worker at once: one worker mints the
    replacement under the lease, the others adopt it (fifty local mints would be
    TooManyProviderTokenUpdates), and every notification is resent once and delivered."""
    clock = _Clock(time.time() - 25 * 60)  # iat 25 minutes ago: past the mock's 20
    creds = [
        pushwire.TokenCredentials(p8_key, key_id=KEY_ID, team_id=TEAM_ID, clock=clock)
        for _ in range(4)
    ]
    toks = tokens(400, "e1")

    async def main() -> tuple[list[pushwire.Results], list[SharedAPNsClient]]:
        import redis.asyncio

        conn = redis.asyncio.Redis.from_url(redis_url)
        auths = [SharedAuth(conn, key_prefix, f"w{i}") for i in range(4)]
        await asyncio.gather(*(a.share_jwt(c) for a, c in zip(auths, creds, strict=True)))
        clock.now = time.time()  # 25 minutes later: a new JWT may be minted
        clients = [
            SharedAPNsClient(c, shared=a, base_url=server.url, ca_file=server.ca_file)
            for a, c in zip(auths, creds, strict=True)
        ]
        try:
            results = await asyncio.gather(
                *(cl.send_to_tokens(message, toks[i::4]) for i, cl in enumerate(clients))
            )
        finally:
            for cl in clients:
                await cl.aclose()
            await conn.aclose()
        return list(results), clients

    with MockAPNs(credentials=creds[0], jwt_max_age=20 * 60) as server:
        results, clients = asyncio.run(main())
        assert all(r.delivered for batch in results for r in batch)
        # Each was refused once with the expired JWT and then sent once with the new one.
        assert all(server.received(t) == 2 for t in toks)
        assert server.distinct_tokens == 1 and server.token_update_rejections == 0
    assert sum(c.mints for c in creds) == 2  # the first JWT and its one replacement
    assert len({c.authorization() for c in creds}) == 1
    assert all(cl.expired_renewals == 1 for cl in clients)


def test_an_expired_jwt_is_renewed_locally_when_redis_is_away(p8_key, message):
    clock = _Clock(time.time() - 25 * 60)
    creds = pushwire.TokenCredentials(p8_key, key_id=KEY_ID, team_id=TEAM_ID, clock=clock)
    creds.authorization()  # minted 25 minutes ago

    async def main() -> pushwire.Results:
        import redis.asyncio

        conn = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        clock.now = time.time()
        client = SharedAPNsClient(
            creds,
            shared=SharedAuth(conn, "unreachable", "w1"),
            base_url=server.url,
            ca_file=server.ca_file,
        )
        try:
            return await client.send_to_tokens(message, tokens(50, "e2"))
        finally:
            await client.aclose()
            await conn.aclose()

    with MockAPNs(credentials=creds, jwt_max_age=20 * 60) as server:
        results = asyncio.run(main())
        assert all(r.delivered for r in results) and server.total_received == 2 * 50
    assert creds.mints == 2


def test_keys_are_derived_from_the_stream():
    keys = Keys("app:jobs")
    assert keys.job("j1") == "app:jobs:job:j1" and keys.dead == "app:jobs:dead"
    assert msgspec.json.decode(msgspec.json.encode(OutcomeRecord("t", "delivered", "delivered")))
