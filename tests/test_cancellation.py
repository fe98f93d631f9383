"""Cancellation from Python: closing mid-send, cancelled tasks, abandoned clients. No hang,
no crash, and every submitted notification still has exactly one result."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections import Counter

import pushwire
from pushwire import Notification, Outcome
from pushwire.testing import MockAPNs
from support.util import tokens


def test_closing_the_client_mid_send_gives_every_notification_a_result(credentials, message):
    toks = tokens(20_000)
    with MockAPNs(credentials=credentials, response_delay=0.3) as server:

        async def main() -> pushwire.Results:
            client = server.client(max_in_flight=2_000, request_timeout=5)
            sending = asyncio.ensure_future(
                client.send_many([Notification(t, message) for t in toks])
            )
            await asyncio.sleep(0.5)
            assert not sending.done()
            await client.aclose()
            return await asyncio.wait_for(sending, 30)

        results = asyncio.run(main())
        assert [r.token for r in results] == toks
        counts = Counter(r.outcome for r in results)
        assert counts[Outcome.DELIVERED] > 0 and counts[Outcome.FAILED] > 0
        for r in results:
            received = server.received(r.token)
            if r.delivered:
                assert received == 1
            else:
                assert r.outcome is Outcome.FAILED
                if not r.maybe_delivered:
                    assert received == 0 and "not sent" in (r.error or "")


def test_a_cancelled_task_does_not_hang_the_client(credentials, message):
    with MockAPNs(credentials=credentials, rules={"eeee": "hang"}) as server:

        async def main() -> pushwire.Results:
            async with server.client(request_timeout=2) as client:
                stuck = asyncio.ensure_future(
                    client.send(Notification(tokens(1, "eeee")[0], message))
                )
                batch = asyncio.ensure_future(
                    client.send_many([Notification(t, message) for t in tokens(5_000, "ee00")])
                )
                await asyncio.sleep(0.1)
                stuck.cancel()
                batch.cancel()
                await asyncio.gather(stuck, batch, return_exceptions=True)
                # The client keeps working after its callers gave up.
                return await client.send_many([Notification(t, message) for t in tokens(100)])

        results = asyncio.run(asyncio.wait_for(main(), 30))
        assert all(r.delivered for r in results)


def test_abandoned_client_and_interpreter_exit_do_not_hang_or_crash(tmp_path, credentials):
    """A script that never closes its client, with work in flight, exits cleanly."""
    key = tmp_path / "key.p8"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    script = textwrap.dedent(
        f"""
        import asyncio, pushwire
        from pushwire.testing import MockAPNs
        creds = pushwire.TokenCredentials({str(key)!r}, key_id="ABC123DEFG", team_id="TEAM123456")
        server = MockAPNs(credentials=creds, rules={{"eeee": "hang"}})
        msg = pushwire.Message({{"aps": {{"alert": "x"}}}}, topic="com.example.app")
        async def main():
            client = server.client(request_timeout=30)
            task = asyncio.ensure_future(client.send_many(
                [pushwire.Notification("eeee" + "0" * 60, msg)] * 10))
            await asyncio.sleep(0.3)
            print("exiting with work in flight", flush=True)
        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "exiting with work in flight" in done.stdout
    assert "Traceback" not in done.stderr and "panicked" not in done.stderr


def test_a_client_used_after_fork_says_so_instead_of_hanging(credentials):
    """gunicorn --preload and multiprocessing copy a client into a child without the engine's
    threads. The child gets a clear error at once (never a send that waits forever), closing
    or dropping the copy returns at once, and the parent's client is untouched."""
    script = textwrap.dedent(
        """
        import asyncio, gc, os, sys, time
        import pushwire
        from pushwire.testing import MockAPNs
        sys.path.insert(0, "tests")
        from conftest import make_p8
        creds = pushwire.TokenCredentials(make_p8(), key_id="ABC123DEFG", team_id="TEAM123456")
        msg = pushwire.Message({"aps": {"alert": "x"}}, topic="com.example.app")
        server = MockAPNs(credentials=creds, rules={"eeee": "hang"})
        client = server.client(request_timeout=2)
        one = lambda t: client.send(pushwire.Notification(t, msg))

        async def before_fork():
            assert (await one("ab" * 32)).delivered
            # Work in flight at the fork: the child must not wait for it.
            return asyncio.ensure_future(one("eeee" + "0" * 60))

        loop = asyncio.new_event_loop()
        pending = loop.run_until_complete(before_fork())
        loop.run_until_complete(asyncio.sleep(0.2))
        pid = os.fork()
        if pid == 0:
            started = time.monotonic()
            try:
                asyncio.run(asyncio.wait_for(one("cd" * 32), 5))
                print("child: sent?!", flush=True)
            except pushwire.ConfigurationError as e:
                print("child error:", e, flush=True)
            try:
                client._engine.submit_tokens(0, 1 << 40, msg._template, ["cd" * 32])
            except pushwire.ConfigurationError:
                print("child engine refuses", flush=True)
            asyncio.run(client.aclose())
            del client
            gc.collect()
            print(f"child done in {time.monotonic() - started:.1f}s", flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status", os.waitstatus_to_exitcode(status), flush=True)
        assert loop.run_until_complete(one("ef" * 32)).delivered
        print("parent still sends", flush=True)
        pending.cancel()
        loop.run_until_complete(client.aclose())
        server.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "this is a forked child" in out and "Create clients after forking" in out, out
    assert "child engine refuses" in out and "child: sent" not in out
    done_line = next(line for line in out.splitlines() if line.startswith("child done in"))
    assert float(done_line.split()[-1].rstrip("s")) < 3.0, done_line
    assert "child status 0" in out and "parent still sends" in out
    assert "panicked" not in done.stderr
