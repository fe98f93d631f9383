"""The blocking clients: one client shared by many threads (as a requests.Session is), a clear
error inside a running event loop, close from any thread."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import pushwire
from pushwire.testing import MockAPNs, MockFCM, MockWebPush

THREADS = 8
SENDS = 500


def _token(thread: int, i: int) -> str:
    return f"{thread:04x}{i:060x}"


def test_one_sync_client_serves_many_threads_each_notification_delivered_once(credentials, message):
    with MockAPNs(credentials=credentials) as server, server.sync_client() as client:
        start = threading.Barrier(THREADS)

        def work(thread: int) -> list[pushwire.Result]:
            start.wait()  # all threads send at the same moment
            return [
                client.send(pushwire.Notification(_token(thread, i), message)) for i in range(SENDS)
            ]

        with ThreadPoolExecutor(THREADS) as pool:
            per_thread = list(pool.map(work, range(THREADS)))

        results = [r for rs in per_thread for r in rs]
        assert len(results) == THREADS * SENDS == 4000
        assert all(r.delivered for r in results), {r.error for r in results}
        assert {r.token for r in results} == {
            _token(t, i) for t in range(THREADS) for i in range(SENDS)
        }
        # Server side: every notification arrived exactly once.
        counts = [server.received(_token(t, i)) for t in range(THREADS) for i in range(SENDS)]
        assert counts == [1] * (THREADS * SENDS)


def test_threads_mix_batches_and_streams_on_one_client(credentials, message):
    with MockAPNs(credentials=credentials) as server, server.sync_client() as client:

        def batch(thread: int) -> int:
            tokens = [_token(thread, i) for i in range(200)]
            return sum(r.delivered for r in client.send_to_tokens(message, tokens))

        def streamed(thread: int) -> int:
            ns = (pushwire.Notification(_token(thread, i), message) for i in range(200))
            return sum(r.delivered for r in client.stream(ns))

        with ThreadPoolExecutor(4) as pool:
            done = list(pool.map(batch, range(2))) + list(pool.map(streamed, range(2, 4)))
        assert done == [200] * 4
        assert all(server.received(_token(t, i)) == 1 for t in range(4) for i in range(200))


def test_a_stream_left_early_is_closed_and_the_client_still_sends(credentials, message):
    with MockAPNs(credentials=credentials) as server, server.sync_client() as client:
        ns = [pushwire.Notification(_token(9, i), message) for i in range(50)]
        for _ in client.stream(ns):
            break
        assert client.send(pushwire.Notification(_token(9, 999), message)).delivered


def test_inside_a_running_loop_the_sync_client_says_to_use_the_async_one(credentials, message):
    with MockAPNs(credentials=credentials) as server, server.sync_client() as client:

        async def misuse() -> None:
            client.send(pushwire.Notification(_token(0, 1), message))

        with pytest.raises(pushwire.ConfigurationError, match=r"pushwire\.APNsClient"):
            asyncio.run(misuse())
        assert server.received(_token(0, 1)) == 0
        # Still usable from plain code afterwards.
        assert client.send(pushwire.Notification(_token(0, 2), message)).delivered


def test_sync_fcm_client_inside_a_loop_names_fcm_client(service_account):
    with MockFCM(credentials=service_account) as server, server.sync_client() as client:

        async def misuse() -> None:
            client.send(pushwire.FCMMessage(token="t1", data={"k": "v"}))

        with pytest.raises(pushwire.ConfigurationError, match=r"pushwire\.FCMClient"):
            asyncio.run(misuse())
        assert client.send(pushwire.FCMMessage(token="t2", data={"k": "v"})).delivered
        assert server.received("t1") == 0 and server.received("t2") == 1


def test_close_from_another_thread_then_sends_are_refused(credentials, message):
    with MockAPNs(credentials=credentials) as server:
        client = server.sync_client()
        assert client.send(pushwire.Notification(_token(1, 1), message)).delivered
        closer = threading.Thread(target=client.close)
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
        with pytest.raises(pushwire.ClientClosedError):
            client.send(pushwire.Notification(_token(1, 2), message))
        client.close()  # idempotent
        assert server.received(_token(1, 2)) == 0
        assert not client._runner.thread.is_alive()


def test_a_sync_client_used_after_fork_says_so_and_closes_at_once():
    """gunicorn --preload: the loop thread stays in the parent; the child gets a clear error at
    once and close() returns at once, while the parent's client keeps sending."""
    script = textwrap.dedent(
        """
        import os, sys, time
        import pushwire
        from pushwire.testing import MockAPNs
        sys.path.insert(0, "tests")
        from conftest import make_p8
        creds = pushwire.TokenCredentials(make_p8(), key_id="ABC123DEFG", team_id="TEAM123456")
        msg = pushwire.Message({"aps": {"alert": "x"}}, topic="com.example.app")
        server = MockAPNs(credentials=creds)
        client = server.sync_client()
        assert client.send(pushwire.Notification("ab" * 32, msg)).delivered
        pid = os.fork()
        if pid == 0:
            started = time.monotonic()
            try:
                client.send(pushwire.Notification("cd" * 32, msg))
                print("child: sent?!", flush=True)
            except pushwire.ConfigurationError as e:
                print("child error:", e, flush=True)
            client.close()
            print(f"child done in {time.monotonic() - started:.1f}s", flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status", os.waitstatus_to_exitcode(status), flush=True)
        assert client.send(pushwire.Notification("ef" * 32, msg)).delivered
        print("parent still sends; child's token received", server.received("cd" * 32))
        client.close()
        server.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "this is a forked child" in out and "Create clients after forking" in out, out
    assert "child: sent" not in out and "child status 0" in out
    assert "parent still sends; child's token received 0" in out
    done_line = next(line for line in out.splitlines() if line.startswith("child done in"))
    assert float(done_line.split()[-1].rstrip("s")) < 3.0, done_line


def test_sync_web_push_client_shared_by_threads_each_message_once():
    """The blocking Web Push client: threads send to subscriptions of 3 push services at
    once, through one client; every message arrives (decrypted) exactly once."""
    with MockWebPush(services=3, rules={"dead": "unregistered"}) as mock:
        key = pushwire.VapidKey.generate()
        subs = [
            [mock.subscription(f"t{t}-{i}", service=i % 3) for i in range(60)] for t in range(4)
        ]
        message = pushwire.WebPushMessage({"title": "Hi"}, ttl=60)
        with pushwire.SyncWebPushClient(
            key, subject="mailto:ops@example.com", ca_file=mock.ca_file
        ) as client:
            assert client.vapid_public_key == key.public_key

            def work(thread: int) -> list[pushwire.Result]:
                mine = subs[thread]
                one = [client.send(pushwire.WebPushNotification(s, message)) for s in mine[:20]]
                many = client.send_to_subscriptions(message, mine[20:40])
                streamed = list(client.stream([(s, message) for s in mine[40:]]))
                return [*one, *many, *streamed]

            with ThreadPoolExecutor(4) as pool:
                results = [r for rs in pool.map(work, range(4)) for r in rs]
            dead = client.send(pushwire.WebPushNotification(mock.subscription("dead1"), message))
            assert len(client.pools()) == 3
        assert len(results) == 240 and all(r.delivered for r in results)
        assert dead.status == 410 and dead.action is pushwire.Action.DROP_TOKEN
        assert [mock.received(s) for row in subs for s in row] == [1] * 240
        assert mock.messages(subs[0][0]) == [b'{"title":"Hi"}']

        async def inside_a_loop() -> None:
            with pushwire.SyncWebPushClient(key, subject="mailto:ops@example.com") as c:
                c.send(pushwire.WebPushNotification(subs[0][0], message))

        with pytest.raises(pushwire.ConfigurationError, match="WebPushClient"):
            asyncio.run(inside_a_loop())


@pytest.mark.parametrize(
    ("async_client", "sync_client"),
    [
        (pushwire.APNsClient, pushwire.SyncAPNsClient),
        (pushwire.FCMClient, pushwire.SyncFCMClient),
        (pushwire.WebPushClient, pushwire.SyncWebPushClient),
    ],
)
def test_each_sync_client_takes_its_async_clients_arguments_and_defaults(
    async_client: type, sync_client: type
) -> None:
    """The sync constructors spell their arguments out (for type checkers); a default that
    drifts from the async client's changes behaviour silently (a sync FCMClient once kept
    ``round_trip=0.05`` after the async one started measuring it)."""
    import inspect

    wanted = inspect.signature(async_client.__init__).parameters
    given = inspect.signature(sync_client.__init__).parameters
    assert list(given) == list(wanted)
    for name, parameter in wanted.items():
        assert (given[name].kind, given[name].default) == (parameter.kind, parameter.default), name
