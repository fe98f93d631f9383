"""The job queue with real worker processes (`pushwire worker`) on a real Redis server:
200,000 notifications through 3 workers with one killed by SIGKILL mid-run, 20 workers
starting at once sharing one JWT, graceful SIGTERM, and the CLI's errors."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import pushwire
from pushwire.jobs.model import decode_entry
from pushwire.store import Store
from pushwire.testing import MockAPNs, MockFCM
from support import jobs as jobs_support
from support.cli import invoke
from support.jobs import (
    make_store,
    start_worker,
    stop_workers,
    sync_redis,
    wait_until,
    worker_args,
)
from support.util import tokens

TOTAL = 200_000


class Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args: str) -> Done:
    """``pushwire ARGS`` in this process (the workers are real processes)."""
    result = invoke(list(args), input="")
    return Done(result.exit_code, result.stdout, result.stderr)


def job_status(redis_url: str, stream: str, job: str) -> dict[str, Any]:
    done = cli("jobs", "status", job, "--json", "--redis", redis_url, "--stream", stream)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def complete(client: Any, stream: str, job: str) -> bool:
    """The job is complete (read from Redis directly: cheaper than the CLI in a poll)."""
    meta = {k.decode(): v.decode() for k, v in client.hgetall(f"{stream}:job:{job}").items()}
    return (
        meta.get("state") == "queued"
        and int(meta.get("recorded", 0)) >= int(meta["total"])
        and int(meta.get("chunks_done", 0)) >= int(meta["chunks"])
    )


def held_unrecorded(client: Any, stream: str, group: str, consumer: str) -> tuple[int, int]:
    """(entries pending on ``consumer``, notifications in them without a recorded outcome):
    what a dead worker had taken on and not finished, i.e. at most what may be sent twice."""
    pending = client.xpending_range(stream, group, "-", "+", 10_000, consumername=consumer)
    unrecorded = 0
    for item in pending:
        [(_, fields)] = client.xrange(stream, item["message_id"], item["message_id"])
        entry, _ = decode_entry(fields)
        outcomes = f"{stream}:job:{entry.job}:outcomes"
        pipe = client.pipeline(transaction=False)
        for i in range(entry.first, entry.first + len(entry.tokens)):
            pipe.hexists(outcomes, i)
        unrecorded += sum(1 for exists in pipe.execute() if not exists)
    return len(pending), unrecorded


@pytest.mark.timeout(240)
def test_three_workers_drain_200k_and_one_killed_mid_run_loses_nothing(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    toks = tokens(TOTAL, "f0")
    source = tmp_path / "tokens.txt"
    source.write_text("\n".join(toks) + "\n")
    group = "pushwire-workers"
    client = sync_redis(redis_url)
    with MockAPNs(credentials=credentials) as server:
        extra = [
            "--prefetch", "4", "--window", "4000", "--slice-size", "500",
            "--reclaim-idle", "3", "--metrics-interval", "0.05", "--log-level", "warning",
        ]  # fmt: skip
        procs = [
            start_worker(
                worker_args(redis_url, stream, db, server, f"w{i}", *extra),
                tmp_path / f"w{i}.log",
            )
            for i in range(3)
        ]
        try:
            enqueue = cli(
                "enqueue", "--app", "ios", "-i", str(source), "--title", "Hi", "--body", "there",
                "--redis", redis_url, "--stream", stream, "--db", db, "--json",
            )  # fmt: skip
            assert enqueue.returncode == 0, enqueue.stderr
            job = json.loads(enqueue.stdout)["job_id"]
            meta = f"{stream}:job:{job}"
            assert int(client.hget(meta, "total")) == TOTAL
            wait_until(
                lambda: int(client.hget(meta, "recorded") or 0) >= TOTAL * 0.3,
                90,
                "30% of the outcomes",
                interval=0.01,
            )
            # Kill the worker holding the most unfinished entries, with no warning.
            victim = max(
                range(3),
                key=lambda i: len(
                    client.xpending_range(stream, group, "-", "+", 100, consumername=f"w{i}")
                ),
            )
            last_published = client.hgetall(f"{stream}:worker:w{victim}")
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            entries_held, unrecorded = held_unrecorded(client, stream, group, f"w{victim}")
            published_in_flight = int(float(last_published[b"in_flight"]))
            wait_until(lambda: complete(client, stream, job), 120, "the job", 0.1)
            status = job_status(redis_url, stream, job)
            survivors = [p for i, p in enumerate(procs) if i != victim]
            assert stop_workers(survivors) == [0, 0]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        counts = [server.received(t) for t in toks]
    duplicates = sum(c - 1 for c in counts if c > 1)
    print(
        f"\nkill -9 of w{victim} at {status['total']} notifications: it held {entries_held} "
        f"entries with {unrecorded} notifications without an outcome (last published in "
        f"flight: {published_in_flight}); resent after reclaim: {status['resent']}; "
        f"received twice by the mock: {duplicates}"
    )
    # Every notification reached the server, and exactly one final outcome is recorded each.
    assert min(counts) >= 1 and max(counts) <= 2
    outcomes = f"{stream}:job:{job}:outcomes"
    assert client.hlen(outcomes) == TOTAL
    assert set(jobs_support.outcome_indexes(client, stream, job)) == set(range(TOTAL))
    assert status["recorded"] == status["total"] == TOTAL
    assert status["by_outcome"] == {"delivered": TOTAL}
    assert status["chunks_done"] == status["chunks"] == TOTAL // 1000
    # Sent twice: only what the dead worker had taken on without recording it, all counted.
    assert entries_held > 0
    assert status["resent"] == unrecorded
    assert duplicates <= unrecorded <= 4 * 1000
    assert client.xlen(stream) == 0
    assert all(p.returncode in (0, -signal.SIGKILL) for p in procs), [
        (tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(3)
    ]


@pytest.mark.timeout(180)
def test_twenty_workers_starting_at_once_mint_one_jwt(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    client = sync_redis(redis_url)
    # Slow answers: each worker's first chunk takes a while, so all 20 get one.
    with MockAPNs(credentials=credentials, response_delay=0.3) as server:
        enqueue = cli(
            "enqueue", "--app", "ios", "-i", "-", "--format", "lines", "--body", "hi",
            "--chunk-size", "5", "--redis", redis_url, "--stream", stream, "--json",
        )  # fmt: skip
        assert enqueue.returncode == 2  # stdin is empty here: no job
        assert enqueue.stderr.strip() == "error: the job has no tokens: nothing to send"
        source = tmp_path / "tokens.txt"
        source.write_text("\n".join(tokens(200, "a7")) + "\n")
        enqueue = cli(
            "enqueue", "--app", "ios", "-i", str(source), "--body", "hi", "--chunk-size", "5",
            "--redis", redis_url, "--stream", stream, "--json",
        )  # fmt: skip
        assert enqueue.returncode == 0, enqueue.stderr
        job = json.loads(enqueue.stdout)["job_id"]
        extra = ["--prefetch", "1", "--log-level", "warning", "--metrics-interval", "0.2"]
        procs = [
            start_worker(
                [*worker_args(redis_url, stream, db, server, f"m{i}", *extra)],
                tmp_path / f"m{i}.log",
            )
            for i in range(20)
        ]
        try:
            wait_until(lambda: complete(client, stream, job), 120, "the job", 0.1)
            assert stop_workers(procs) == [0] * 20
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        distinct, rejections = server.distinct_tokens, server.token_update_rejections
    published = [client.hgetall(f"{stream}:worker:m{i}") for i in range(20)]
    mints = sum(int(float(m[b"jwt_mints"])) for m in published)
    senders = sum(1 for m in published if float(m[b"notifications"]) > 0)
    print(f"\n20 workers: {senders} sent notifications, JWTs minted {mints}, distinct {distinct}")
    assert distinct == 1 and rejections == 0
    assert mints == 1
    assert senders >= 10
    assert job_status(redis_url, stream, job)["by_outcome"] == {"delivered": 200}


@pytest.mark.timeout(120)
def test_sigterm_finishes_the_chunks_in_progress_then_exits(
    redis_url, stream, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    client = sync_redis(redis_url)
    with MockAPNs(credentials=credentials, response_delay=1.0) as server:
        source = tmp_path / "tokens.txt"
        source.write_text("\n".join(tokens(2000, "b8")) + "\n")
        enqueue = cli(
            "enqueue", "--app", "ios", "-i", str(source), "--body", "hi", "--chunk-size", "100",
            "--redis", redis_url, "--stream", stream, "--json",
        )  # fmt: skip
        job = json.loads(enqueue.stdout)["job_id"]
        proc = start_worker(
            worker_args(redis_url, stream, db, server, "t1", "--prefetch", "2"),
            tmp_path / "t1.log",
        )
        try:
            wait_until(lambda: server.total_received >= 100, 30, "notifications in flight")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    log = (tmp_path / "t1.log").read_text()
    assert "stopping: finishing 2 chunks in progress" in log and "Traceback" not in log
    status = job_status(redis_url, stream, job)
    # The two chunks it had were sent, recorded and acknowledged; nothing else was read.
    assert status["chunks_done"] == 2 and status["recorded"] == 200
    assert client.xpending(stream, "pushwire-workers")["pending"] == 0
    assert client.xlen(stream) == 18


def test_cli_errors_are_one_clear_line(redis_url, stream, p8_key, tmp_path):
    db = make_store(tmp_path, p8_key)
    source = tmp_path / "tokens.txt"
    source.write_text("aa\nbb\n")
    down = "redis://:hunter2@127.0.0.1:1/0"
    for args in (
        ["enqueue", "--app", "ios", "-i", str(source), "--body", "x", "--redis", down],
        ["worker", "--db", db, "--redis", down],
        ["jobs", "status", "--redis", down],
    ):
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: cannot reach Redis at redis://:***@127.0.0.1:1/0")
        assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
    unknown = cli(
        "enqueue", "--app", "android", "-i", str(source), "--body", "x",
        "--redis", redis_url, "--stream", stream, "--db", db,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: no application named 'android': add it first (Store.put_application, "
        "`pushwire endpoints add-app`)"
    )
    missing = cli("jobs", "status", "nope", "--redis", redis_url, "--stream", stream)
    assert missing.returncode == 2 and "no job 'nope'" in missing.stderr
    usage = cli("enqueue", "--body", "x", "--redis", redis_url)
    assert usage.returncode == 2 and "give --input FILE" in usage.stderr
    no_db = cli("worker", "--redis", redis_url)
    assert no_db.returncode == 2 and "--db" in no_db.stderr


def test_cli_enqueue_status_results_and_dead_letters(
    redis_url, stream, key_prefix, credentials, p8_key, tmp_path
):
    db = make_store(tmp_path, p8_key)
    source = tmp_path / "tokens.jsonl"
    source.write_text(
        "\n".join(json.dumps({"token": t}) for t in tokens(30, "c9")) + "\n{not json\n"
    )
    client = sync_redis(redis_url)
    client.xadd(stream, {"garbage": "1"})
    with MockAPNs(credentials=credentials, rules={"c9": "unregistered"}) as server:
        done = cli(
            "enqueue", "--app", "ios", "-i", str(source), "--title", "T", "--body", "B",
            "--redis", redis_url, "--stream", stream, "--chunk-size", "7",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "skipped: not valid JSON" in done.stderr
        (job,) = done.stdout.splitlines()  # only the id, for J=$(pushwire enqueue ...)
        assert job.startswith("j") and " " not in job
        assert f"job {job}: 30 notifications in 5 chunks" in done.stderr
        proc = start_worker(
            worker_args(redis_url, stream, db, server, "c1", "--metrics-interval", "0.1"),
            tmp_path / "c1.log",
        )
        try:
            wait_until(lambda: complete(client, stream, job), 60, "the job", 0.1)

            def queue_status() -> str:
                queue = cli("jobs", "status", "--redis", redis_url, "--stream", stream)
                assert queue.returncode == 0, queue.stderr
                return queue.stdout

            # The worker publishes its figures every 0.1 s and acknowledges an entry after
            # recording its outcomes: the job can be complete a moment before the queue's
            # status says so.
            expected = (
                "0 entries waiting or in progress, lag 0, pending 0, dead letters 1",
                "worker c1 (running): 30 notifications",
            )

            def shows_the_finished_job() -> bool:
                text = queue_status()
                return all(line in text for line in expected)

            wait_until(shows_the_finished_job, 30, "the queue's status to show the job", 0.1)
            assert stop_workers([proc]) == [0]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()  # reaped here, not as a ResourceWarning in a later test
    text = cli("jobs", "status", job, "--redis", redis_url, "--stream", stream).stdout
    assert f"job {job}: complete, 30 of 30 notifications have their outcome" in text
    assert "outcomes: rejected 30" in text and "actions: drop_token 30" in text
    out = tmp_path / "results.jsonl"
    results = cli("jobs", "results", job, "-o", str(out), "--redis", redis_url, "--stream", stream)
    assert results.returncode == 0, results.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(30))
    assert {r["reason"] for r in rows} == {"Unregistered"}
    assert os.stat(out).st_mode & 0o777 == 0o600
    dead = cli("jobs", "dead-letters", "--redis", redis_url, "--stream", stream)
    assert "no 'data' field" in dead.stdout


def test_cli_cancel_marks_the_job_and_says_what_it_means(redis_url, stream, tmp_path):
    source = tmp_path / "tokens.txt"
    source.write_text("\n".join(tokens(12, "d7")) + "\n")
    done = cli(
        "enqueue", "--app", "ios", "-i", str(source), "--body", "B",
        "--redis", redis_url, "--stream", stream, "--chunk-size", "5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    cancel = cli("jobs", "cancel", job, "--redis", redis_url, "--stream", stream)
    assert cancel.returncode == 0, cancel.stderr
    assert f"job {job}: queued, 0 of 12" in cancel.stdout
    assert "cancelled: chunks not yet taken are recorded failed (JobCancelled)" in cancel.stdout
    status = job_status(redis_url, stream, job)
    assert status["cancelled_at"] > 0 and status["state"] == "queued"
    missing = cli("jobs", "cancel", "nope", "--redis", redis_url, "--stream", stream)
    assert missing.returncode == 2 and "no job 'nope'" in missing.stderr


def test_readme_commands_exist():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Running on many machines", 1)[1].split("\n## ", 1)[0]
    for command in ("pushwire worker", "pushwire enqueue", "pushwire jobs status"):
        assert command in section
    for option in ("--redis", "--stream", "--group", "--consumer", "--db", "--reclaim-idle"):
        assert option in section


def _fcm_store(directory: Path) -> tuple[str, pushwire.ServiceAccountCredentials]:
    """A SQLite store with FCM application ``android`` (a fresh service-account key file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account",
        "project_id": "quota-project",
        "private_key_id": "k1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": "pusher@quota-project.iam.gserviceaccount.com",
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info))
    url = f"sqlite:///{directory}/fcm-store.db"
    with Store.open(url) as store:
        store.put_application("android", provider="fcm", credentials_ref=f"service-account:{path}")
    return url, pushwire.ServiceAccountCredentials(info)


@pytest.mark.timeout(120)
def test_three_workers_share_one_fcm_project_quota(redis_url, stream, tmp_path):
    """60,000/min scaled down to 3,000 per 3-second window on the mock: three worker
    processes reserve from one sliding window in Redis, so together they use (almost) the
    whole quota, almost nothing is answered 429, and every message is delivered once."""
    db, account = _fcm_store(tmp_path)
    total, window, per_window = 9_000, 3.0, 3_000
    toks = tokens(total, "fq")
    source = tmp_path / "tokens.txt"
    source.write_text("\n".join(toks) + "\n")
    client = sync_redis(redis_url)

    def enqueue(path: Path) -> str:
        done = cli(
            "enqueue", "--app", "android", "-i", str(path), "--title", "Hi",
            "--redis", redis_url, "--stream", stream, "--db", db, "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)["job_id"])

    with MockFCM(
        credentials=account,
        quota_per_window=per_window,
        quota_window=window,
        max_concurrent_streams=100,
        response_delay=0.04,
    ) as server:
        extra = [
            "--fcm-url", server.url, "--token-uri", server.token_uri,
            "--fcm-rate-limit", "60000", "--fcm-quota-window", str(window),
            "--slice-size", "100", "--log-level", "warning",
        ]  # fmt: skip
        procs = [
            start_worker(
                worker_args(redis_url, stream, db, server, f"q{i}", *extra),
                tmp_path / f"q{i}.log",
            )
            for i in range(3)
        ]
        try:
            # Warm up (processes started, access token fetched) outside the measured run.
            warm = tmp_path / "warm.txt"
            warm.write_text("warm-a\nwarm-b\nwarm-c\n")
            warm_job = enqueue(warm)
            wait_until(lambda: complete(client, stream, warm_job), 60, "the warm-up job", 0.01)
            started = time.monotonic()
            job = enqueue(source)
            wait_until(lambda: complete(client, stream, job), 90, "the job", 0.01)
            elapsed = time.monotonic() - started
            status = job_status(redis_url, stream, job)
            assert stop_workers(procs) == [0, 0, 0]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        counts = [server.received(t) for t in toks]
        rejected = server.quota_rejections
        received = server.total_received
    used = total / (elapsed * per_window / window)
    print(
        f"\n3 workers: {total} messages in {elapsed:.2f} s = {used:.1%} of the quota; "
        f"{rejected} answered 429 of {received} requests"
    )
    assert status["by_outcome"] == {"delivered": total}
    # Counted on the mock: every message reached it; only the 429-refused were sent again.
    assert sum(counts) == total + rejected and min(counts) >= 1
    assert received == total + 3 + rejected
    assert rejected < 0.01 * received
    assert used >= 0.95, (used, elapsed)
