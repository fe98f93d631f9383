"""The fault matrix: 20,000 notifications in flight under each server or network fault.

Every test counts, for every notification of the batch:

- exactly one result, in input order (``index`` and ``token``);
- ``delivered`` only if the server received it exactly once (``server.received(token) == 1``);
- ``failed`` with ``maybe_delivered == False`` only if the server never received it — except
  REFUSED_STREAM, which the mock counts as received before refusing: such a notification was
  resent (never processed) and its count equals its ``attempts``;
- nothing received twice, unless the test opts into ``retry_uncertain=True``;

and then that the same client (when it still can) sends a NEXT batch of 1,000 entirely.
Loopback only; every wait is bounded. ``docs/faults.md`` sums up what these tests prove.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import pushwire
from pushwire import Notification, Outcome, RetryPolicy
from pushwire.testing import MockAPNs
from support.util import tokens

N = 20_000
NEXT = 1_000
SEED = 20_240_611
#: Enough room to put the whole batch in flight at once.
WINDOW = {"max_in_flight": N}
#: Connect failures end quickly: the whole batch fails as not sent within a second or two.
FAST_GIVE_UP = {"max_connect_attempts": 2, "backoff_base": 0.01, "backoff_max": 0.05}
MAX_RETRIES = 5  # the engine's default


# --- helpers ---------------------------------------------------------------------------------


def notifications(toks: list[str], message: pushwire.Message) -> list[Notification]:
    return [Notification(t, message) for t in toks]


def spread(base: list[str], triggers: list[str], seed: int = SEED) -> list[str]:
    """``base`` with ``triggers`` inserted at seeded random positions."""
    rng = random.Random(seed)
    out = list(base)
    for t in triggers:
        out.insert(rng.randrange(len(out) + 1), t)
    return out


def next_batch(message: pushwire.Message) -> list[Notification]:
    return notifications(tokens(NEXT, "fe"), message)


def tally(results: list[pushwire.Result]) -> Counter[str]:
    return Counter(f"{r.outcome.value}{'(maybe)' if r.maybe_delivered else ''}" for r in results)


def report(name: str, results: list[pushwire.Result], **figures: Any) -> None:
    """The figures of a run, on stdout (``pytest -s`` shows them)."""
    extra = " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"[fault-matrix] {name}: {dict(sorted(tally(results).items()))} {extra}")


def check_accounting(
    received: Callable[[str], int],
    toks: list[str],
    results: list[pushwire.Result],
    *,
    refused: frozenset[str] = frozenset(),
    may_duplicate: bool = False,
) -> None:
    """One result per notification, nothing claimed that the server did not do."""
    assert len(results) == len(toks)
    assert [r.index for r in results] == list(range(len(toks)))
    assert [r.token for r in results] == toks
    for r in results:
        n = received(r.token)
        if r.delivered:
            assert not r.maybe_delivered
            assert n == 1 or (may_duplicate and n >= 1), f"{r.token}: delivered, received {n}"
        elif r.outcome is Outcome.FAILED and not r.maybe_delivered:
            if r.token in refused:
                # REFUSED_STREAM is counted by the mock, then refused: never processed.
                assert n == r.attempts == MAX_RETRIES + 1, (r, n)
                assert "refused stream" in (r.error or "")
            else:
                assert n == 0, f"{r.token}: reported not sent, received {n}: {r.error}"
        elif not may_duplicate:
            assert n <= 1, f"{r.token}: {r.outcome.value}, received {n}"
        if may_duplicate:
            assert n <= r.attempts, f"{r.token}: received {n}, sent {r.attempts}"


async def wait_until(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def wait_stable(value: Callable[[], int], quiet: float = 0.3, limit: float = 10.0) -> int:
    """Wait until ``value()`` stops changing for ``quiet`` seconds; return it."""
    deadline = time.monotonic() + limit
    last, since = value(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the server never went quiet"
        await asyncio.sleep(0.02)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
    return last


def send_and_next(
    server: MockAPNs, items: list[Notification], message: pushwire.Message, **options: Any
) -> tuple[list[pushwire.Result], list[pushwire.Result], dict[str, int]]:
    """The batch, then the NEXT batch on the same client; and the client's counters."""

    async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], dict[str, int]]:
        async with server.client(**{**WINDOW, **options}) as client:
            first = await asyncio.wait_for(client.send_many(items), 120)
            second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
            return first, second, client.stats()

    return asyncio.run(main())


def assert_next_batch_delivered(server: MockAPNs, second: list[pushwire.Result]) -> None:
    assert len(second) == NEXT
    assert all(r.delivered for r in second), tally(second)
    assert all(server.received(r.token) == 1 for r in second)


class TcpRelay:
    """A TCP relay in front of the mock: ``stop()`` drops every connection and closes the port
    (a server going down), ``start()`` listens on the same port again (the server is back,
    same certificate)."""

    def __init__(self, target_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = ("127.0.0.1", target_port)
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0

    def start(self) -> TcpRelay:
        listener = socket.create_server((self.host, self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class PlainTcpServer:
    """A loopback TCP server that is not a TLS server: it closes at once, sends garbage, or
    accepts and says nothing."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "silent":
                self._held.append(conn)
                continue
            if self.mode == "garbage":
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)))
            conn.close()

    def close(self) -> None:
        self._listener.close()
        for c in self._held:
            c.close()


def fails_not_sent_quickly(
    client_factory: Callable[[], pushwire.APNsClient], message: pushwire.Message
) -> tuple[list[pushwire.Result], float]:
    async def main() -> list[pushwire.Result]:
        async with client_factory() as client:
            return await asyncio.wait_for(client.send_many(notifications(tokens(N), message)), 60)

    start = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert len(results) == N and [r.index for r in results] == list(range(N))
    assert {(r.outcome, r.maybe_delivered, r.status) for r in results} == {
        (Outcome.FAILED, False, 0)
    }
    assert all((r.error or "").startswith("not sent") for r in results)
    return results, elapsed


# --- GOAWAY ----------------------------------------------------------------------------------


def test_graceful_goaway_every_few_thousand_streams_delivers_everything_once(credentials, message):
    after = random.Random(SEED).randint(1_500, 3_500)
    toks = tokens(N)
    with MockAPNs(credentials=credentials, goaway_after_streams=after) as server:
        first, second, stats = send_and_next(server, notifications(toks, message), message)
        check_accounting(server.received, toks, first)
        assert tally(first) == {"delivered": N}
        # Every connection went away after `after` streams: new ones took the rest.
        assert server.connections_accepted >= N // after
        assert_next_batch_delivered(server, second)
        report(
            "graceful GOAWAY",
            first,
            goaway_after=after,
            connections=server.connections_accepted,
            goaways=stats["goaways"],
            retries=stats["retries"],
        )


def test_abrupt_goaway_at_random_points_reports_in_flight_work_as_uncertain(credentials, message):
    triggers = tokens(6, "90a7")
    toks = spread(tokens(N), triggers)
    with MockAPNs(credentials=credentials, rules={"90a7": "goaway"}) as server:
        first, second, _ = send_and_next(server, notifications(toks, message), message)
        check_accounting(server.received, toks, first)
        counts = tally(first)
        # Work queued behind the GOAWAY is sent on new connections; only requests in flight
        # on a connection that went away are uncertain (at most 1,000 streams each).
        assert set(counts) <= {"delivered", "failed(maybe)"}
        assert counts["failed(maybe)"] <= len(triggers) * 1_000
        assert counts["delivered"] >= N + len(triggers) - len(triggers) * 1_000
        by_token = {r.token: r for r in first}
        assert all(
            by_token[t].outcome is Outcome.FAILED and by_token[t].maybe_delivered for t in triggers
        )
        assert sum(server.received(t) for t in triggers) >= 1
        assert server.connections_accepted >= 2
        assert_next_batch_delivered(server, second)
        report(
            "abrupt GOAWAY",
            first,
            uncertain_received=sum(server.received(r.token) for r in first if r.maybe_delivered),
            connections=server.connections_accepted,
        )


# --- RST_STREAM, REFUSED_STREAM --------------------------------------------------------------


def test_rst_stream_and_refused_stream_on_random_streams(credentials, message):
    reset, cancel, refused = tokens(200, "5e70"), tokens(200, "5e71"), tokens(200, "5ef0")
    toks = spread(tokens(N), reset + cancel + refused)
    rules = {"5e70": "reset", "5e71": "reset:cancel", "5ef0": "refused"}
    with MockAPNs(credentials=credentials, rules=rules) as server:
        first, second, stats = send_and_next(server, notifications(toks, message), message)
        check_accounting(server.received, toks, first, refused=frozenset(refused))
        by_token = {r.token: r for r in first}
        # Reset after the server read the request: it may have been processed, never resent.
        for t in reset + cancel:
            r = by_token[t]
            assert (r.outcome, r.maybe_delivered, r.attempts) == (Outcome.FAILED, True, 1)
            assert server.received(t) == 1
        # REFUSED_STREAM: not processed (RFC 9113 8.7), resent max_retries times, then failed
        # as not delivered.
        for t in refused:
            r = by_token[t]
            assert (r.outcome, r.maybe_delivered) == (Outcome.FAILED, False)
        others = [r for r in first if r.token not in set(reset + cancel + refused)]
        assert all(r.delivered and r.attempts == 1 for r in others)
        assert stats["retries"] == len(refused) * MAX_RETRIES
        assert stats["resets"] == len(reset) + len(cancel) + len(refused) * (MAX_RETRIES + 1)
        assert_next_batch_delivered(server, second)
        report("RST_STREAM / REFUSED_STREAM", first, retries=stats["retries"])


# --- connections dropped, server restarted ----------------------------------------------------


def test_connection_dropped_mid_batch_at_random_points(credentials, message):
    triggers = tokens(5, "c105e")
    toks = spread(tokens(N), triggers)
    with MockAPNs(credentials=credentials, rules={"c105e": "close"}) as server:
        first, second, _ = send_and_next(server, notifications(toks, message), message)
        check_accounting(server.received, toks, first)
        counts = tally(first)
        assert set(counts) <= {"delivered", "failed(maybe)"}
        assert counts["failed(maybe)"] <= len(triggers) * 1_000
        by_token = {r.token: r for r in first}
        assert all(by_token[t].maybe_delivered for t in triggers)
        assert server.connections_accepted >= 2
        assert_next_batch_delivered(server, second)
        report("connection closed", first, connections=server.connections_accepted)


def test_dropped_connections_with_retry_uncertain_resend_and_may_duplicate(credentials, message):
    """The opt-in: requests in flight on a dropped connection are resent (up to
    ``max_retries``), so some are received more than once — the price of the option. A request
    that makes the server drop the connection is resent too, and takes the requests resent with
    it down again each time (they share the front of the queue): those give up after
    ``max_retries + 1`` attempts, still with one result each."""
    triggers = tokens(3, "c105e")
    toks = spread(tokens(N), triggers)
    with MockAPNs(credentials=credentials, rules={"c105e": "close"}) as server:
        first, second, stats = send_and_next(
            server, notifications(toks, message), message, retry_uncertain=True
        )
        check_accounting(server.received, toks, first, may_duplicate=True)
        by_token = {r.token: r for r in first}
        for t in triggers:
            r = by_token[t]
            assert (r.outcome, r.maybe_delivered) == (Outcome.FAILED, True)
            assert r.attempts == MAX_RETRIES + 1
        for r in first:
            # Never received more often than sent; what is not delivered ran out of attempts.
            assert server.received(r.token) <= r.attempts
            if not r.delivered:
                assert (r.outcome, r.maybe_delivered) == (Outcome.FAILED, True)
                assert r.attempts == MAX_RETRIES + 1
                assert f"gave up after {MAX_RETRIES + 1} attempts" in (r.error or "")
        delivered = sum(r.delivered for r in first)
        assert delivered >= N // 2
        assert stats["retries"] >= len(triggers) * MAX_RETRIES
        assert_next_batch_delivered(server, second)
        received = [server.received(r.token) for r in first if r.delivered]
        report(
            "connection closed, retry_uncertain",
            first,
            delivered_more_than_once=sum(n > 1 for n in received),
            most_receptions=max(received),
            retries=stats["retries"],
            connections=server.connections_accepted,
        )


RETRY_UNCERTAIN_BUG = (
    "engine bug: with retry_uncertain=True, a request whose earlier attempt may have been "
    "processed (timed out / reset / connection lost after it was written) is resent, and when a "
    "later attempt ends as 'never processed' (REFUSED_STREAM, above a GOAWAY, no connection, "
    "queue timeout, client closed) the final outcome says maybe_delivered=False ('safe to "
    "resend') although the first attempt may have been delivered. rust/core/src/connection.rs "
    "Driver::retry_or_fail_at / on_deadline / fail_after_send and rust/core/src/pool.rs "
    "PoolShared::fail_unsent / expire_queued build the outcome from the last attempt only; "
    "Request needs a sticky 'may have been processed' flag OR-ed into maybe_delivered."
)


@pytest.mark.parametrize("then", ["refused", "server gone"])
def test_retry_uncertain_remembers_that_an_earlier_attempt_may_have_been_delivered(
    credentials, message, then
):
    token = tokens(1, "dd")[0]
    server = MockAPNs(credentials=credentials, rules={"dd": "hang"})

    async def main() -> pushwire.Result:
        async with server.client(
            request_timeout=1.0, retry_uncertain=True, max_retries=2, **FAST_GIVE_UP
        ) as client:
            sending = asyncio.ensure_future(client.send(Notification(token, message)))
            await wait_until(lambda: server.received(token) == 1, 10, "the first attempt")
            # The server has the request: from now on it may have been delivered.
            if then == "refused":
                server.set_rules({"dd": "refused"})
            else:
                server.stop()
            return await asyncio.wait_for(sending, 30)

    try:
        result = asyncio.run(main())
    finally:
        server.stop()
    assert result.outcome is Outcome.FAILED and result.attempts >= 1
    assert result.maybe_delivered, result


def test_server_restarted_on_the_same_port_with_a_new_ca_fails_queued_work_as_not_sent(
    credentials, message, tmp_path
):
    """The server comes back on the same port with a certificate from another CA (a rotated
    certificate the client was not told about): the client cannot verify it, so everything that
    was waiting fails as not sent (never a hang, never "maybe"), the new server receives
    nothing, and only a client given the new CA file can send again."""
    toks = tokens(N)
    port: int
    snapshot: dict[str, int] = {}

    async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], MockAPNs]:
        nonlocal port
        first_server = MockAPNs(credentials=credentials, cert_dir=tmp_path)
        port = first_server.port
        old_ca = first_server.ca_file.read_bytes()
        client = first_server.client(**WINDOW, **FAST_GIVE_UP)
        sending = asyncio.ensure_future(client.send_many(notifications(toks, message)))
        await wait_until(lambda: first_server.total_received >= 5_000, 30, "5,000 received")
        # From now on the first server answers nothing: what it received is final once all
        # of the client's stream slots are taken.
        first_server.set_rules({"": "hang"})
        await wait_stable(lambda: first_server.total_received)
        snapshot.update({t: first_server.received(t) for t in toks})
        first_server.stop()
        second_server = MockAPNs(credentials=credentials, cert_dir=tmp_path / "new", port=port)
        assert second_server.port == port
        assert second_server.ca_file.read_bytes() != old_ca
        results = await asyncio.wait_for(sending, 60)
        again = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
        await client.aclose()
        return results, again, second_server

    results, again, second_server = asyncio.run(main())
    with second_server:
        check_accounting(lambda t: snapshot[t] + second_server.received(t), toks, results)
        counts = tally(results)
        assert set(counts) == {"delivered", "failed(maybe)", "failed"}
        assert counts["delivered"] >= 5_000 - 4_000
        # In flight when the server stopped: at most the 4 x 1,000 streams, uncertain.
        assert counts["failed(maybe)"] <= 4_000
        # Queued work failed while the server was down (refused) or once it was back (its
        # certificate is not trusted): never sent, never received.
        not_sent = [r for r in results if r.outcome is Outcome.FAILED and not r.maybe_delivered]
        for r in not_sent:
            error = r.error or ""
            assert error.startswith("not sent"), error
            assert "invalid peer certificate" in error or "refused" in error, error
        assert second_server.total_received == 0
        # The same client cannot verify the new server: the next batch fails as not sent.
        assert {(r.outcome, r.maybe_delivered) for r in again} == {(Outcome.FAILED, False)}
        assert "invalid peer certificate" in (again[0].error or "")  # BadSignature: same CA name

        # A client trusting the new CA sends the next batch.
        async def fresh() -> list[pushwire.Result]:
            async with second_server.client() as client:
                return await client.send_many(next_batch(message))

        assert_next_batch_delivered(second_server, asyncio.run(fresh()))
        report("server restarted (new CA)", results)


def test_server_process_restarted_with_its_cert_dir_is_trusted_again_and_gets_the_queued_work(
    credentials, message, tmp_path
):
    """A real restart: the first server stops (its connections close), a new one starts on the
    same port from the same ``cert_dir`` (it keeps the CA key, so the client's ``ca.pem`` still
    verifies it). Everything that waited is delivered by the new server; only what was in
    flight on the stopped one is uncertain; each notification is counted once across both."""
    toks = tokens(N)
    snapshot: dict[str, int] = {}

    async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], MockAPNs]:
        first_server = MockAPNs(credentials=credentials, cert_dir=tmp_path, response_delay=0.05)
        port = first_server.port
        client = first_server.client(
            max_connect_attempts=100, backoff_base=0.02, backoff_max=0.1, **WINDOW
        )
        sending = asyncio.ensure_future(client.send_many(notifications(toks, message)))
        await wait_until(lambda: first_server.total_received >= 5_000, 30, "5,000 received")
        # From now on the first server answers nothing: what it received is final once all
        # of the client's stream slots are taken, and it is lost with the server.
        first_server.set_rules({"": "hang"})
        await wait_stable(lambda: first_server.total_received)
        snapshot.update({t: first_server.received(t) for t in toks})
        first_server.stop()
        await asyncio.sleep(0.3)  # down for a moment: connects are refused meanwhile
        assert not sending.done()
        second_server = MockAPNs(credentials=credentials, cert_dir=tmp_path, port=port)
        results = await asyncio.wait_for(sending, 60)
        again = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
        await client.aclose()
        return results, again, second_server

    results, again, second_server = asyncio.run(main())
    with second_server:
        check_accounting(lambda t: snapshot[t] + second_server.received(t), toks, results)
        counts = tally(results)
        assert set(counts) <= {"delivered", "failed(maybe)"}
        assert counts["failed(maybe)"] <= 4_000
        assert second_server.total_received >= N - 4_000 - sum(snapshot.values())
        assert_next_batch_delivered(second_server, again)
        report("server process restarted (same cert_dir)", results)


def test_server_restarted_behind_the_same_port_and_certificate_is_reconnected(credentials, message):
    """A restart that keeps the certificate (a relay in front of the mock drops every
    connection, refuses connections for half a second, then listens again on the same port):
    the client reconnects and delivers everything that was still queued; only what was in
    flight when the connections dropped is uncertain."""
    toks = tokens(N)
    with MockAPNs(credentials=credentials, response_delay=0.05) as server:
        relay = TcpRelay(server.port).start()

        async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], dict[str, int]]:
            async with server.client(
                base_url=f"https://127.0.0.1:{relay.port}",
                max_connect_attempts=100,
                backoff_base=0.02,
                backoff_max=0.1,
                **WINDOW,
            ) as client:
                sending = asyncio.ensure_future(client.send_many(notifications(toks, message)))
                await wait_until(lambda: server.total_received >= 5_000, 30, "5,000 received")
                relay.stop()
                await asyncio.sleep(0.5)
                assert not sending.done()
                relay.start()
                first = await asyncio.wait_for(sending, 60)
                second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
                return first, second, client.stats()

        try:
            first, second, stats = asyncio.run(main())
        finally:
            relay.stop()
        check_accounting(server.received, toks, first)
        counts = tally(first)
        # Nothing fails as not sent: what waited was delivered after the restart.
        assert set(counts) <= {"delivered", "failed(maybe)"}
        assert counts["failed(maybe)"] <= 4_000
        assert stats["connect_failures"] >= 1 and stats["connections_opened"] >= 5
        assert_next_batch_delivered(server, second)
        report(
            "server restarted (same certificate)",
            first,
            connect_failures=stats["connect_failures"],
            connections=stats["connections_opened"],
        )


# --- silence and slowness ----------------------------------------------------------------------


def test_server_that_stops_answering_even_pings_loses_only_what_was_on_that_connection(
    credentials, message
):
    triggers = tokens(3, "b1ac")
    toks = spread(tokens(N), triggers)
    with MockAPNs(credentials=credentials, rules={"b1ac": "blackhole"}) as server:
        start = time.monotonic()
        first, second, stats = send_and_next(
            server,
            notifications(toks, message),
            message,
            request_timeout=5,
            ping_interval=0.3,
            ping_timeout=0.5,
        )
        elapsed = time.monotonic() - start
        check_accounting(server.received, toks, first)
        counts = tally(first)
        assert set(counts) <= {"delivered", "failed(maybe)", "timeout(maybe)"}
        assert counts["delivered"] >= N - len(triggers) * 1_000
        assert stats["ping_failures"] >= 1
        # Dead connections are found by PING (0.3 + 0.5 s), not by the 5 s request deadline.
        assert elapsed < 5 * len(triggers)
        assert_next_batch_delivered(server, second)
        report("blackhole", first, ping_failures=stats["ping_failures"], seconds=round(elapsed, 2))


def test_slow_server_within_the_deadline_delivers_everything(credentials, message):
    toks = tokens(N)
    with MockAPNs(credentials=credentials, response_delay=1.5) as server:
        first, second, stats = send_and_next(
            server,
            notifications(toks, message),
            message,
            request_timeout=5,
            max_connections=20,
        )
        check_accounting(server.received, toks, first)
        assert tally(first) == {"delivered": N}
        assert stats["timeouts"] == 0 and stats["retries"] == 0
        assert min(r.latency for r in first) >= 1.5
        assert_next_batch_delivered(server, second)
        report("slow server (1.5 s)", first)


# --- TLS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["close", "garbage", "silent"])
def test_tls_handshake_failure_fails_everything_as_not_sent_without_hanging(message, mode):
    server = PlainTcpServer(mode)
    try:
        results, elapsed = fails_not_sent_quickly(
            lambda: pushwire.APNsClient(
                base_url=f"https://127.0.0.1:{server.port}",
                connect_timeout=0.5,
                **WINDOW,
                **FAST_GIVE_UP,
            ),
            message,
        )
    finally:
        server.close()
    error = results[0].error or ""
    assert "TLS handshake" in error or "took longer than" in error, error
    assert elapsed < 10
    report(f"TLS handshake ({mode})", results, seconds=round(elapsed, 2), error=repr(error[:90]))


def test_untrusted_certificate_fails_everything_as_not_sent(credentials, message):
    with MockAPNs(credentials=credentials) as server:
        # No ca_file: the mock's CA is not trusted, and no option turns verification off.
        results, elapsed = fails_not_sent_quickly(
            lambda: pushwire.APNsClient(credentials, base_url=server.url, **WINDOW, **FAST_GIVE_UP),
            message,
        )
        assert server.total_received == 0 and server.connections_accepted == 0
    error = results[0].error or ""
    assert "certificate" in error and "UnknownIssuer" in error, error
    report("untrusted certificate", results, seconds=round(elapsed, 2))


def test_certificate_for_another_name_fails_while_its_own_ip_works(credentials, message):
    """The mock's certificate names ``localhost`` and ``127.0.0.1``. Reached as 127.0.0.2 (a
    relay on that loopback address), the name does not match and nothing is sent."""
    with MockAPNs(credentials=credentials) as server:

        async def by_ip() -> list[pushwire.Result]:
            async with server.client(base_url=f"https://127.0.0.1:{server.port}") as client:
                return await client.send_many(next_batch(message))

        assert_next_batch_delivered(server, asyncio.run(by_ip()))
        relay = TcpRelay(server.port, host="127.0.0.2").start()
        before = server.total_received
        try:
            results, elapsed = fails_not_sent_quickly(
                lambda: server.client(
                    base_url=f"https://127.0.0.2:{relay.port}", **WINDOW, **FAST_GIVE_UP
                ),
                message,
            )
        finally:
            relay.stop()
        assert relay.accepted >= 1  # the connection got there; TLS refused the name
        assert server.total_received == before
    error = results[0].error or ""
    assert "certificate not valid for name" in error and "127.0.0.2" in error, error
    report("hostname mismatch", results, seconds=round(elapsed, 2))


# --- connect failures ---------------------------------------------------------------------------


def test_dns_failure_fails_everything_as_not_sent_quickly(message):
    results, elapsed = fails_not_sent_quickly(
        lambda: pushwire.APNsClient(
            base_url="https://does-not-exist.invalid", **WINDOW, **FAST_GIVE_UP
        ),
        message,
    )
    assert "does-not-exist.invalid" in (results[0].error or "")
    assert elapsed < 10
    report("DNS failure", results, seconds=round(elapsed, 2))


def test_connection_refused_fails_everything_as_not_sent_quickly(message):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results, elapsed = fails_not_sent_quickly(
        lambda: pushwire.APNsClient(base_url=f"https://127.0.0.1:{port}", **WINDOW, **FAST_GIVE_UP),
        message,
    )
    assert "refused" in (results[0].error or "").lower()
    assert elapsed < 10
    report("connection refused", results, seconds=round(elapsed, 2))


# --- rejection storms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingPolicy(RetryPolicy):
    """The policy under test, noting every delay it hands out."""

    delays: list[tuple[int, float | None]] = field(default_factory=list, compare=False)

    def delay(self, attempt: int, reason: str | None, retry_after: int | None) -> float | None:
        chosen = super().delay(attempt, reason, retry_after)
        self.delays.append((attempt, chosen))
        return chosen


def test_429_500_503_storm_is_retried_a_bounded_number_of_times_with_jitter(credentials, message):
    rng = random.Random(SEED)
    kinds = {"4290": (429, "TooManyRequests"), "5000": (500, "InternalServerError")}
    kinds["5030"] = (503, "ServiceUnavailable")
    prefixes = [rng.choice(list(kinds)) for _ in range(N)]
    toks = [p + format(i, f"0{60}x") for i, p in enumerate(prefixes)]
    policy = RecordingPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2)
    rules = {"4290": "429", "5000": "500", "5030": "503"}
    with MockAPNs(credentials=credentials, rules=rules) as server:

        async def main() -> tuple[list[pushwire.Result], list[pushwire.Result]]:
            async with server.client(retry=policy, **WINDOW) as client:
                first = await asyncio.wait_for(client.send_many(notifications(toks, message)), 60)
                server.set_rules({})  # the storm is over
                second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
                return first, second

        first, second = asyncio.run(main())
        assert [r.token for r in first] == toks
        for r, p in zip(first, prefixes, strict=True):
            assert (r.outcome, r.status, r.reason) == (Outcome.FAILED, *kinds[p])
            assert r.attempts == 3 and not r.maybe_delivered
            assert "gave up after 3 sends" in (r.error or "")
        assert all(server.received(t) == 3 for t in toks)
        received = server.total_received
        assert received == 3 * N + NEXT
        assert_next_batch_delivered(server, second)
    # Two resends each, delays with full jitter in [ceiling / 2, ceiling]: spread, not lockstep.
    assert len(policy.delays) == 2 * N
    for attempt, ceiling in ((1, 0.05), (2, 0.1)):
        delays = [d for a, d in policy.delays if a == attempt]
        assert len(delays) == N and all(d is not None for d in delays)
        values = [d for d in delays if d is not None]
        assert all(ceiling / 2 <= d <= ceiling for d in values)
        assert max(values) - min(values) > 0.8 * (ceiling / 2)
        assert len(set(values)) > N * 0.99
    report("429/500/503 storm", first, server_received=received)


# --- SETTINGS ------------------------------------------------------------------------------------


def test_max_concurrent_streams_lowered_to_one_then_raised_at_20k(credentials, message):
    """The client follows a lowered limit on the wire (proven byte by byte against a raw server
    in rust/core/tests/response_fuzz.rs): the mock, which holds each stream to the limit in
    force when its HEADERS arrived, refuses none, and nothing is lost or duplicated."""
    toks = tokens(N)
    with MockAPNs(credentials=credentials, response_delay=0.05) as server:

        async def main() -> tuple[list[pushwire.Result], list[pushwire.Result], int, dict]:
            async with server.client(max_connections=2, **WINDOW) as client:
                sending = asyncio.ensure_future(client.send_many(notifications(toks, message)))
                await wait_until(lambda: server.total_received >= 3_000, 30, "3,000 received")
                server.set_max_concurrent_streams(1)
                await asyncio.sleep(0.2)  # streams already open finish
                low_start = server.total_received
                await asyncio.sleep(0.5)
                during_low = server.total_received - low_start
                assert not sending.done()
                server.set_max_concurrent_streams(1000)
                first = await asyncio.wait_for(sending, 60)
                second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
                return first, second, during_low, client.stats()

        first, second, during_low, stats = asyncio.run(main())
        check_accounting(server.received, toks, first)
        assert tally(first) == {"delivered": N}
        # In 0.5 s at one stream per connection (50 ms answers) only a few dozen went.
        assert during_low <= 100, during_low
        # Never over the limit: no stream refused, nothing resent.
        assert server.refused_streams == 0 and stats["retries"] == 0, stats
        assert_next_batch_delivered(server, second)
        report(
            "SETTINGS 1000 -> 1 -> 1000",
            first,
            sent_while_limited=during_low,
            refused_by_mock=server.refused_streams,
        )


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


class RawH2Client:
    """A bare HTTP/2 client over TLS: frames and HPACK literals written by hand, so the order
    of bytes on the wire is exactly the test's."""

    def __init__(self, server: MockAPNs) -> None:
        import ssl

        context = ssl.create_default_context(cafile=str(server.ca_file))
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self._buffer = b""
        self._next_stream = 1
        self.sock.sendall(PREFACE + h2_frame(0x4, 0, 0))

    def request(self, token: str) -> tuple[int, bytes]:
        """A new stream id and the frames of a push to ``token`` (not sent)."""
        stream, self._next_stream = self._next_stream, self._next_stream + 2
        fields = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", b"/3/device/" + token.encode()),
            (b"apns-topic", b"com.example.app"),
            (b"apns-push-type", b"alert"),
        ]
        block = b"".join(b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v for n, v in fields)
        body = b'{"aps":{"alert":"x"}}'
        return stream, h2_frame(0x1, 0x4, stream, block) + h2_frame(0x0, 0x1, stream, body)

    def read_frame(self) -> tuple[int, int, int, bytes]:
        while True:
            if len(self._buffer) >= 9:
                length = int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) >= 9 + length:
                    head, self._buffer = self._buffer[: 9 + length], self._buffer[9 + length :]
                    stream = int.from_bytes(head[5:9], "big") & 0x7FFF_FFFF
                    return head[3], head[4], stream, head[9:]
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self._buffer += data

    def next_settings(self) -> dict[int, int]:
        """Read up to the server's next SETTINGS (not an ACK); return its values."""
        while True:
            kind, flags, _, payload = self.read_frame()
            if kind == 0x4 and not flags & 0x1:
                return {
                    int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(
                        payload[i + 2 : i + 6], "big"
                    )
                    for i in range(0, len(payload), 6)
                }


def test_mock_admits_streams_opened_before_the_client_acknowledged_a_lower_limit():
    with MockAPNs(rules={"eeee": "hang"}) as server:
        client = RawH2Client(server)
        assert client.next_settings()[0x3] == 1000
        client.sock.sendall(h2_frame(0x4, 0x1, 0))
        hung = tokens(10, "eeee")
        client.sock.sendall(b"".join(client.request(t)[1] for t in hung))
        deadline = time.monotonic() + 10
        while sum(server.received(t) for t in hung) < len(hung):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        server.set_max_concurrent_streams(1)
        assert client.next_settings() == {0x3: 1}
        # Three new streams, then the ACK, in one write: they precede the ACK on the wire.
        new = [client.request(t) for t in tokens(3, "ab")]
        client.sock.sendall(b"".join(frames for _, frames in new) + h2_frame(0x4, 0x1, 0))
        answers: dict[int, str] = {}
        while len(answers) < len(new):
            kind, _, stream, payload = client.read_frame()
            if stream in dict(new) and kind in (0x1, 0x3):
                answers[stream] = "answered" if kind == 0x1 else f"reset {payload.hex()}"
        client.sock.close()
        assert server.refused_streams == 0, answers
        assert set(answers.values()) == {"answered"}


# --- cancellation from Python --------------------------------------------------------------------


def test_cancelled_send_many_of_20k_leaves_no_work_behind(credentials, message):
    toks = tokens(N)
    with MockAPNs(credentials=credentials, response_delay=0.2) as server:

        async def main() -> tuple[list[pushwire.Result], int]:
            async with server.client(**WINDOW) as client:
                sending = asyncio.ensure_future(client.send_many(notifications(toks, message)))
                await wait_until(lambda: server.total_received >= 1_000, 30, "1,000 received")
                sending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sending
                # The engine still gives every submitted notification its outcome (dropped,
                # since nobody waits for them): nothing stays in flight.
                engine = client._engine
                await wait_until(lambda: engine.outstanding() == 0, 30, "no work in flight")
                received = server.total_received
                second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
                return second, received

        second, received = asyncio.run(main())
        assert all(server.received(t) <= 1 for t in toks)
        assert received <= N
        assert_next_batch_delivered(server, second)
        print(f"[fault-matrix] cancelled send_many: received before next batch={received}")


def test_abandoned_stream_of_20k_leaves_no_work_behind(credentials, message):
    toks = tokens(N)
    with MockAPNs(credentials=credentials) as server:

        async def main() -> tuple[list[pushwire.Result], list[pushwire.Result]]:
            async with server.client(**WINDOW) as client:
                seen: list[pushwire.Result] = []
                stream = client.stream(notifications(toks, message))
                async for r in stream:
                    seen.append(r)
                    if len(seen) == 100:
                        break
                await stream.aclose()  # type: ignore[attr-defined]
                engine = client._engine
                await wait_until(lambda: engine.outstanding() == 0, 30, "no work in flight")
                second = await asyncio.wait_for(client.send_many(next_batch(message)), 60)
                return seen, second

        seen, second = asyncio.run(main())
        assert len({r.index for r in seen}) == 100 and all(r.delivered for r in seen)
        assert all(server.received(t) <= 1 for t in toks)
        assert_next_batch_delivered(server, second)


def test_client_closed_during_a_stream_of_20k_gives_each_submitted_one_result(credentials, message):
    toks = tokens(N)
    with MockAPNs(credentials=credentials, response_delay=0.3) as server:

        async def main() -> tuple[list[pushwire.Result], BaseException | None]:
            client = server.client(request_timeout=5, **WINDOW)
            seen: list[pushwire.Result] = []
            error: BaseException | None = None

            async def consume() -> None:
                async for r in client.stream(notifications(toks, message)):
                    seen.append(r)

            task = asyncio.ensure_future(consume())
            await wait_until(lambda: server.total_received >= 1_000, 30, "1,000 received")
            await client.aclose()
            try:
                await asyncio.wait_for(task, 30)
            except pushwire.ClientClosedError as e:
                error = e
            return seen, error

        seen, error = asyncio.run(main())
        # The window took the whole batch: every notification got exactly one result before
        # the stream reported the close.
        assert sorted(r.index for r in seen) == list(range(N))
        for r in seen:
            n = server.received(r.token)
            if r.delivered:
                assert n == 1
            elif not r.maybe_delivered:
                assert n == 0
        assert isinstance(error, pushwire.ClientClosedError)
        print(f"[fault-matrix] closed during stream: {dict(tally(seen))}")


@pytest.mark.parametrize("how", ["exit", "sigint"])
def test_interpreter_exit_or_ctrl_c_with_20k_in_flight(tmp_path, p8_key, how):
    """A script with 20,000 notifications in flight (4,000 on hung streams, the rest queued)
    that exits without closing its client, or is interrupted with Ctrl-C inside a sync
    ``send_many``: it ends promptly, without a crash or a hang."""
    key = tmp_path / "key.p8"
    key.write_bytes(p8_key)
    script = textwrap.dedent(
        f"""
        import asyncio, sys, pushwire
        from pushwire.testing import MockAPNs
        creds = pushwire.TokenCredentials({str(key)!r}, key_id="ABC123DEFG", team_id="TEAM123456")
        server = MockAPNs(credentials=creds, rules={{"": "hang"}})
        msg = pushwire.Message({{"aps": {{"alert": "x"}}}}, topic="com.example.app")
        items = [pushwire.Notification(format(i, "064x"), msg) for i in range({N})]
        if {how!r} == "exit":
            async def main():
                client = server.client(request_timeout=30, max_in_flight={N})
                task = asyncio.ensure_future(client.send_many(items))
                while server.total_received < 4000:
                    await asyncio.sleep(0.01)
                print("exiting with work in flight", flush=True)
            asyncio.run(main())
        else:
            with server.sync_client(request_timeout=2, max_in_flight={N}) as client:
                print("sending", flush=True)
                client.send_many(items)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = time.monotonic()
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        if how == "sigint":
            assert first_line.strip() == "sending"
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - start
    assert "panicked" not in err and "Fatal Python error" not in err, err
    if how == "exit":
        assert first_line.strip() == "exiting with work in flight"
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    else:
        # KeyboardInterrupt ends Python with SIGINT's status: interrupted, not crashed.
        assert proc.returncode in (1, -signal.SIGINT, 128 + signal.SIGINT), (proc.returncode, err)
        assert "KeyboardInterrupt" in err
    assert elapsed < 30
    print(f"[fault-matrix] {how} with 20k in flight: rc={proc.returncode} in {elapsed:.1f}s")
