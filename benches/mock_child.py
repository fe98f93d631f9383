"""The mock APNs server in a process of its own, for benchmarks that measure a client process
and must not count the server's CPU or memory against it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"


def _serve(p8: bytes, options: dict[str, Any], connection: Any) -> None:
    """Runs in the child: (url, ca_file) out, then serve until "stop", then the count."""
    import pushwire
    from pushwire.testing import MockAPNs

    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    with MockAPNs(credentials=credentials, **options) as server:
        connection.send((server.url, str(server.ca_file)))
        connection.recv()  # "stop"
        connection.send(server.total_received)


@contextmanager
def mock_in_child(p8: bytes, **options: Any) -> Iterator[tuple[str, str]]:
    """``MockAPNs(**options)`` trusting ``p8``'s key, in a spawned process; yields
    (url, ca_file) and stops the server on exit."""
    context = multiprocessing.get_context("spawn")
    parent, child_end = context.Pipe()
    child = context.Process(target=_serve, args=(p8, options, child_end))
    child.start()
    if not parent.poll(60):
        child.kill()
        raise SystemExit("the mock server did not start")
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        parent.poll(30)
        child.join(30)
