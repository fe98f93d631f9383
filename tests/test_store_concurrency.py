"""Four processes apply 100,000 registrations and 410 results to the same endpoints at once:
no update is lost and the final state is the one the rules give in any sequential order
(latest registration wins; disabled exactly when the latest 410 is after it)."""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import datetime, timezone

import pytest

import pushwire
from pushwire import Outcome
from pushwire.store import EventKind, Registration, Store
from pushwire.store.clock import to_datetime, to_ms
from support.store import BACKENDS, apns_token, database_url

WORKERS = 4
BATCH = 500
T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
#: Operations per backend: 100k on PostgreSQL (the shared-deployment backend); SQLite
#: serialises writers, so the same check runs on fewer operations.
OPERATIONS = {"postgresql": (2500, 40), "sqlite": (1000, 20)}  # tokens, operations each

Operation = tuple[str, str, int, str]  # (register | drop, token, epoch ms, user)


def plan(tokens: int, per_token: int, seed: int = 7) -> list[Operation]:
    rng = random.Random(seed)
    base = to_ms(T0, "T0")
    operations: list[Operation] = []
    for t in range(tokens):
        token = apns_token(t)
        # Distinct moments per token, so "the latest" is always one operation.
        for k, offset in enumerate(rng.sample(range(1, 50_000_000), per_token)):
            kind = "register" if k % 2 else "drop"
            operations.append((kind, token, base + offset, f"user{rng.randrange(50)}"))
    rng.shuffle(operations)
    return operations


def expected_state(operations: list[Operation]) -> dict[str, tuple]:
    """What the rules give, applied one by one in any order."""
    base = to_ms(T0, "T0")
    registered: dict[str, tuple[int, str]] = {}
    invalid: dict[str, int] = {}
    for kind, token, at, user in operations:
        if kind == "register":
            registered[token] = max(registered.get(token, (base, "initial")), (at, user))
        else:
            invalid[token] = max(invalid.get(token, 0), at)
    expected = {}
    for token in set(registered) | set(invalid):
        last, user = registered.get(token, (base, "initial"))
        since = invalid.get(token)
        enabled = since is None or last >= since
        reason = None if enabled else "Unregistered"
        expected[token] = (enabled, last, user, since, since, reason)
    return expected


def rejected_410(token: str, at: int, index: int) -> pushwire.Result:
    return pushwire.Result(
        index, token, Outcome.REJECTED, 410, "Unregistered", None, at, None, 1, 1, 0.01, 1,
        None, False,
    )  # fmt: skip


def work(url: str, operations: list[Operation], seed: int, answer) -> None:
    """One process: apply its share in batches, registrations and results interleaved."""
    rng = random.Random(seed)
    with Store.open(url) as store:
        for start in range(0, len(operations), BATCH):
            batch = operations[start : start + BATCH]
            registrations = [
                Registration("ios", token, user_id=user, registered_at=to_datetime(at))
                for kind, token, at, user in batch
                if kind == "register"
            ]
            results = [
                rejected_410(token, at, i)
                for i, (kind, token, at, _) in enumerate(batch)
                if kind == "drop"
            ]
            steps = ["register", "apply"]
            rng.shuffle(steps)
            for step in steps:
                if step == "register":
                    store.register_many(registrations, cause="concurrency")
                else:
                    store.apply_results("ios", results)
        # A few single registrations too: the path apps use.
        for kind, token, at, user in operations[:50]:
            if kind == "register":
                store.register("ios", token, user_id=user, registered_at=to_datetime(at))
    answer.send("done")


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_lose_no_update(backend, tmp_path):
    tokens, per_token = OPERATIONS[backend]
    operations = plan(tokens, per_token)
    with database_url(backend, tmp_path) as url:
        with Store.open(url) as store:
            store.put_application("ios", provider="apns", topic="com.example.app")
            for start in range(0, tokens, 5000):
                store.register_many(
                    Registration("ios", apns_token(t), user_id="initial", registered_at=T0)
                    for t in range(start, min(tokens, start + 5000))
                )
        context = multiprocessing.get_context("spawn")
        pipes = [context.Pipe(duplex=False) for _ in range(WORKERS)]
        workers = [
            context.Process(target=work, args=(url, operations[i::WORKERS], i, pipes[i][1]))
            for i in range(WORKERS)
        ]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker, (receive, _) in zip(workers, pipes, strict=True):
            assert receive.poll(120), "a worker did not finish"
            assert receive.recv() == "done"
            worker.join(30)
            assert worker.exitcode == 0
        elapsed = time.monotonic() - started
        with Store.open(url) as store:
            final = {
                e.token: (
                    e.enabled,
                    to_ms(e.last_registered_at, "t"),
                    e.user_id,
                    to_ms(e.invalid_since, "t") if e.invalid_since else None,
                    to_ms(e.last_410_at, "t") if e.last_410_at else None,
                    e.disabled_reason,
                )
                for e in store.endpoints()
            }
            # The log agrees with the state: each disabled endpoint has one more "disabled"
            # than "re_enabled" event, each enabled one as many.
            balance: dict[str, int] = {}
            after = 0
            while True:
                events = store.events(
                    kinds=[EventKind.DISABLED, EventKind.RE_ENABLED], after_id=after, limit=5000
                )
                if not events:
                    break
                for event in events:
                    step = 1 if event.kind is EventKind.DISABLED else -1
                    balance[event.token] = balance.get(event.token, 0) + step
                after = events[-1].id
    expected = expected_state(operations)
    assert len(final) == tokens
    wrong = {t: (final[t], expected[t]) for t in expected if final[t] != expected[t]}
    assert not wrong, f"{len(wrong)} endpoints differ, e.g. {next(iter(wrong.items()))}"
    assert all(balance.get(t, 0) == (0 if state[0] else 1) for t, state in final.items())
    assert 0 < sum(not state[0] for state in final.values()) < tokens
    print(f"{backend}: {len(operations)} operations by {WORKERS} processes in {elapsed:.1f} s")
