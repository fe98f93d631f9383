"""BulkReport: bulk sends that keep Results only for what needs attention.

Every test counts on the mock's side: each notification has exactly one outcome in the
report (``delivered + len(problems) == total == input``), a delivered one was received by the
server exactly once and has its provider id, and a problem says what happened.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import pytest

import pushwire
from pushwire import BulkReport, Notification, Outcome, SendInterruptedError
from pushwire.testing import MockAPNs, MockFCM
from support.util import tokens

SEED = 21


def spread(base: list[str], extra: list[str]) -> list[str]:
    rng = random.Random(SEED)
    out = list(base)
    for t in extra:
        out.insert(rng.randrange(len(out) + 1), t)
    return out


def check_report(report: BulkReport, toks: list[str], received: object) -> dict[int, str]:
    """Exactly one outcome per input position, delivered ones received once with their id;
    returns index -> message id of the delivered."""
    assert report.total == len(toks)
    assert report.delivered + len(report.problems) == len(toks)
    assert sum(report.counts().values()) == len(toks)
    ids = dict(report.message_ids.items())
    assert len(ids) == report.delivered == len(report.message_ids)
    problem_indexes = [r.index for r in report.problems]
    assert problem_indexes == sorted(set(problem_indexes))  # input order, once each
    assert set(ids).isdisjoint(problem_indexes)
    assert set(ids) | set(problem_indexes) == set(range(len(toks)))
    assert all(report.problems[i].token == toks[r.index] for i, r in enumerate(report.problems))
    assert all(received(toks[i]) == 1 for i in ids)  # type: ignore[operator]
    assert all(r.outcome is not Outcome.DELIVERED for r in report.problems)
    return ids


def test_send_to_tokens_keeps_only_problems_and_counts_the_delivered(credentials, message):
    dead, bad = tokens(40, "dead"), tokens(30, "bad0")
    toks = spread(tokens(20_000), dead + bad)

    async def main() -> tuple[BulkReport, pushwire.Results]:
        async with server.client() as client:
            report = await client.send_to_tokens(message, toks, keep="problems")
            full = await client.send_to_tokens(message, toks)
            return report, full

    with MockAPNs(
        credentials=credentials, rules={"dead": "unregistered", "bad0": "bad-token"}
    ) as server:
        report, full = asyncio.run(main())
        ids = check_report(report, toks, lambda t: server.received(t) // 2)
        assert all(server.received(t) == 2 for t in toks)  # once per send, nothing more
    assert report.delivered == len(toks) - 70 and not report.ok
    assert Counter((r.status, r.reason) for r in report.problems) == {
        (410, "Unregistered"): 40,
        (400, "BadDeviceToken"): 30,
    }
    # The same decisions as the full Results of the same send.
    assert report.summary().by_outcome == full.summary().by_outcome
    assert report.summary().by_reason == full.summary().by_reason
    # (the 410 timestamps differ between the two sends: compare tokens and reasons)
    dropped = sorted((t.token, t.reason) for t in report.tokens_to_drop())
    assert dropped == sorted((t.token, t.reason) for t in full.tokens_to_drop())
    assert {t.token for t in report.tokens_to_drop()} == set(dead + bad)  # no burst: 30 in 20k
    assert [r.token for r in report.problems] == [r.token for r in full if not r.delivered]
    # Ids read back exactly as the server sent them (a delivered Result carries the same form).
    full_id = full[next(i for i in ids)].apns_id
    assert full_id is not None and len(full_id) == 36
    assert all(len(v) == 36 and v.count("-") == 4 for v in ids.values())
    assert len(set(ids.values())) == len(ids)


def test_send_many_keep_problems_matches_send_many(credentials, message):
    toks = tokens(3_000)
    given_ids = {i: pushwire.new_apns_id() for i in range(0, 3_000, 7)}
    items = [Notification(t, message, given_ids.get(i)) for i, t in enumerate(toks)]

    async def main() -> BulkReport:
        async with server.client() as client:
            return await client.send_many(items, keep="problems")

    with MockAPNs(credentials=credentials) as server:
        report = asyncio.run(main())
        ids = check_report(report, toks, server.received)
    assert report.ok and report.delivered == 3_000 and report.problems == []
    # An apns-id we chose comes back as we wrote it.
    assert all(ids[i] == v for i, v in given_ids.items())
    assert repr(report) == "BulkReport(total=3000, delivered=3000)"


def test_send_stream_reads_lazily_and_turns_bad_items_into_problems(credentials, message):
    n = 30_000
    toks = tokens(n)
    pulled = 0

    def source() -> Iterator[Notification]:
        nonlocal pulled
        for i, t in enumerate(toks):
            pulled += 1
            yield Notification("not-hex" if i == 777 else t, message)

    async def main() -> BulkReport:
        async with server.client(max_in_flight=1_000) as client:
            return await client.send_stream(source())

    with MockAPNs(credentials=credentials) as server:
        report = asyncio.run(main())
        assert server.total_received == n - 1
        sent = [("not-hex" if i == 777 else t) for i, t in enumerate(toks)]
        check_report(report, sent, server.received)
    assert pulled == n
    [bad] = report.problems
    assert (bad.index, bad.outcome, bad.maybe_delivered) == (777, Outcome.FAILED, False)
    assert "token" in (bad.error or "")


def test_send_stream_without_message_ids_counts_and_keeps_no_id(credentials, message):
    """``message_ids=False``: the ten-million case, where 20 bytes an id would be 200 MB."""
    toks = tokens(5_000, "c0")
    rules = {toks[10]: "unregistered"}

    async def main() -> tuple[BulkReport, BulkReport]:
        async with server.client() as client:
            lean = await client.send_stream(
                (Notification(t, message) for t in toks), message_ids=False
            )
            full = await client.send_stream(Notification(t, message) for t in toks[:100])
            return lean, full

    with MockAPNs(credentials=credentials, rules=rules) as server:
        lean, full = asyncio.run(main())
        assert server.total_received == 5_100
    assert (lean.total, lean.delivered, len(lean.message_ids)) == (5_000, 4_999, 0)
    assert lean.message_ids.nbytes == 0
    [gone] = lean.problems
    assert (gone.index, gone.reason) == (10, "Unregistered")
    assert (full.delivered, len(full.message_ids)) == (99, 99)


def test_send_stream_strict_raises_on_a_bad_item(credentials, message):
    async def main() -> None:
        async with server.client() as client:
            await client.send_stream([Notification("zz", message)], strict=True)

    with MockAPNs(credentials=credentials) as server, pytest.raises(pushwire.PayloadError):
        asyncio.run(main())


def test_hang_and_goaway_each_notification_once_counted_on_the_server(credentials, message):
    """Hung streams time out within the deadline, a GOAWAY mid-run leaves some maybe
    delivered; every notification is in the report exactly once."""
    hung, away = tokens(50, "dd"), tokens(3, "90a7")
    toks = spread(tokens(20_000), hung + away)

    async def main() -> BulkReport:
        async with server.client(request_timeout=1.0, max_in_flight=20_000) as client:
            return await asyncio.wait_for(
                client.send_stream(Notification(t, message) for t in toks), 60
            )

    with MockAPNs(credentials=credentials, rules={"dd": "hang", "90a7": "goaway"}) as server:
        report = asyncio.run(main())
        check_report(report, toks, server.received)
        by_token = {r.token: r for r in report.problems}
        for t in hung:
            r = by_token[t]
            # Timed out, or lost with a connection the GOAWAY closed: maybe delivered either way.
            assert r.outcome in (Outcome.TIMEOUT, Outcome.FAILED) and r.maybe_delivered
            assert server.received(t) <= 1
        assert (
            sum(
                r.outcome is Outcome.TIMEOUT and server.received(r.token) == 1
                for r in report.problems
            )
            > 0
        )
        for r in report.problems:
            if not r.maybe_delivered:  # never processed: the server never saw it
                assert server.received(r.token) == 0
            else:
                assert server.received(r.token) <= 1
        assert all(server.received(t) <= 1 for t in toks)
    counts = report.counts()
    assert counts[Outcome.TIMEOUT] > 0 and counts[Outcome.DELIVERED] > 0


def test_close_during_send_stream_hands_back_the_report_of_what_was_submitted(credentials, message):
    toks = tokens(200_000)

    async def main() -> tuple[SendInterruptedError, int]:
        async with server.client(max_in_flight=2_000) as client:

            async def close_soon() -> None:
                while server.total_received < 5_000:
                    await asyncio.sleep(0.01)
                await client.aclose()

            closer = asyncio.ensure_future(close_soon())
            with pytest.raises(SendInterruptedError) as caught:
                await client.send_stream(Notification(t, message) for t in toks)
            await closer
            return caught.value, server.total_received

    with MockAPNs(credentials=credentials) as server:
        error, _ = asyncio.run(main())
        report = error.report
        assert isinstance(error, pushwire.ClientClosedError)
        assert 5_000 <= report.total < len(toks)
        ids = check_report(report, toks[: report.total], server.received)
        # Nothing beyond what the report accounts for reached the server.
        assert server.total_received == report.delivered + sum(
            server.received(r.token) for r in report.problems
        )
        assert len(ids) == report.delivered


def test_fcm_message_names_are_kept_compactly(service_account):
    toks = [format(i, "0152x") for i in range(2_000)]
    message = pushwire.FCMMessage(data={"k": "v"})

    async def main() -> BulkReport:
        async with server.client() as client:
            return await client.send_to_tokens(message, toks, keep="problems")

    with MockFCM(credentials=service_account) as server:
        report = asyncio.run(main())
        ids = check_report(report, toks, server.received)
    assert all(v.startswith("projects/demo-project/messages/") for v in ids.values())
    assert len(set(ids.values())) == len(toks)
    # The shared prefix is stored once: well under the ~40 bytes each name spells out.
    assert report.message_ids.nbytes < 2_000 * 30


def test_sync_client_and_bad_keep(credentials, message):
    toks = tokens(500)
    with MockAPNs(credentials=credentials) as server:
        with server.sync_client() as client:
            report = client.send_to_tokens(message, toks, keep="problems")
            again = client.send_many([Notification(t, message) for t in toks], keep="problems")
            streamed = client.send_stream(Notification(t, message) for t in toks)
            with pytest.raises(pushwire.ConfigurationError, match="keep"):
                client.send_to_tokens(message, toks, keep="some")  # type: ignore[call-overload]
        assert all(server.received(t) == 3 for t in toks)
    assert report.delivered == again.delivered == streamed.delivered == 500


def test_message_ids_pack_uuids_and_names():
    ids = pushwire.MessageIds()
    ids.add(0, "EABEAE54-14A8-11E5-B60B-1697F925EC7B")
    ids.add(1, "eabeae54-14a8-11e5-b60b-1697f925ec7b")
    ids.add(2, "projects/p/messages/0:1")
    ids.add(3, "projects/p/messages/0:2")
    assert dict(ids.items()) == {
        0: "EABEAE54-14A8-11E5-B60B-1697F925EC7B",
        1: "eabeae54-14a8-11e5-b60b-1697f925ec7b",
        2: "projects/p/messages/0:1",
        3: "projects/p/messages/0:2",
    }
    assert len(ids) == 4 and ids.nbytes < 4 * 36
