"""A loopback TCP relay that counts the bytes it forwards each way, so the bytes a client puts
on the wire are measured on the socket (TLS records, HTTP/2 frames, handshakes and all), not
estimated from header sizes.

Two threads per connection (one each way): blocking ``recv_into``/``sendall`` on loopback
keeps up with any client here, and the counts are exact whatever the speed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

CHUNK = 256 * 1024
JOIN_TIMEOUT = 30.0


@dataclass
class Counts:
    """Bytes forwarded, summed over every connection that went through the relay."""

    upstream: int = 0  # client -> server
    downstream: int = 0  # server -> client
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, up: int, down: int) -> None:
        with self._lock:
            self.upstream += up
            self.downstream += down


class CountingRelay:
    """``with CountingRelay(port) as relay:`` connect to ``relay.port`` instead of ``port``;
    after every client connection closed, ``relay.finish()`` gives the totals."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.counts = Counts()
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)

    def __enter__(self) -> CountingRelay:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_accepting()

    def _stop_accepting(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            # close() alone does not wake a thread blocked in accept(); shutdown() does.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.counts.connections += 1
            thread = threading.Thread(
                target=self._serve, args=(client, server), name="relay-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions until both ends closed, then the sockets."""
        down = threading.Thread(target=self._pump, args=(server, client, False), daemon=True)
        down.start()
        self._pump(client, server, True)
        down.join()
        client.close()
        server.close()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        total = 0
        try:
            while True:
                n = source.recv_into(buffer)
                if n == 0:
                    break
                sink.sendall(view[:n])
                total += n
        except OSError:
            pass
        finally:
            # Pass the end on (half-close), so the other side sees it as the client did.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            self.counts.add(total if upstream else 0, 0 if upstream else total)

    def finish(self) -> Counts:
        """Stop accepting, wait for every forwarded connection to end, return the counts.
        Raises TimeoutError if a connection is still open after JOIN_TIMEOUT."""
        self._stop_accepting()
        self._acceptor.join(JOIN_TIMEOUT)
        for t in self._threads:
            t.join(JOIN_TIMEOUT)
            if t.is_alive():
                raise TimeoutError("a relayed connection was still open")
        return self.counts
