"""Test helpers: a real TLS HTTP/2 mock of APNs, for pushwire's tests and yours.

::

    with MockAPNs(rules={"dead": "unregistered", "eeee": "hang"}) as server:
        async with server.client() as client:
            result = await client.send(Notification("dead01", message))
        assert server.received("dead01") == 1

Behaviours by token prefix: ``ok``, ``unregistered``, ``bad-token``, ``429``, ``500``, ``503``,
``delay:MS``, ``hang``, ``reset``, ``refused``, ``goaway``, ``close``, ``blackhole``.
The server trusts nothing by default and is trusted through ``ca_file`` — no
verification is ever switched off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from . import _core
from ._client import APNsClient, SyncAPNsClient
from .credentials import TokenCredentials

Rules = Union[Mapping[str, str], Sequence[str], None]


def _rule_strings(rules: Rules) -> list[str]:
    if rules is None:
        return []
    if isinstance(rules, Mapping):
        return [f"{prefix}={behavior}" for prefix, behavior in rules.items()]
    return list(rules)


class MockAPNs:
    """The mock APNs server, in-process on its own threads.

    ``credentials``: token credentials whose JWTs the server verifies like APNs: ES256 against
    their public key, ``iat`` at most ``jwt_max_age`` seconds old (``ExpiredProviderToken``)
    and not over 60 s in the future, each connection bound to its first key id
    (``UnrelatedKeyIdInToken``), and a token change on one connection at most every
    ``token_update_window`` seconds (429 ``TooManyProviderTokenUpdates``). Without them any
    request is accepted.

    ``client_ca_pem``: a CA (PEM) whose client certificates are required at TLS, like APNs
    certificate auth; connections without one fail the handshake. Certificate connections
    need no provider token. Pass ``credentials=CertificateCredentials(...)`` to
    :meth:`client` to connect with one.
    """

    def __init__(
        self,
        *,
        rules: Rules = None,
        credentials: TokenCredentials | None = None,
        port: int = 0,
        max_concurrent_streams: int = 1000,
        start_streams_at_one: bool = False,
        goaway_after_streams: int | None = None,
        response_delay: float = 0.0,
        cert_dir: Union[str, os.PathLike[str], None] = None,
        client_ca_pem: Union[str, bytes, None] = None,
        jwt_max_age: float = 3600.0,
        token_update_window: float = 1200.0,
    ) -> None:
        jwt_keys = []
        if credentials is not None:
            jwt_keys.append((credentials.key_id, credentials.team_id, credentials.public_key_pem()))
        if isinstance(client_ca_pem, bytes):
            client_ca_pem = client_ca_pem.decode()
        self.credentials = credentials
        self._server: _core.MockServer | None = _core.MockServer(
            port=port,
            max_concurrent_streams=max_concurrent_streams,
            start_streams_at_one=start_streams_at_one,
            rules=_rule_strings(rules),
            jwt_keys=jwt_keys,
            goaway_after_streams=goaway_after_streams,
            response_delay=response_delay,
            cert_dir=os.fspath(cert_dir) if cert_dir is not None else None,
            client_ca_pem=client_ca_pem,
            jwt_max_age=jwt_max_age,
            token_update_window=token_update_window,
        )

    def __enter__(self) -> MockAPNs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _s(self) -> _core.MockServer:
        if self._server is None:
            raise RuntimeError("the mock server is stopped")
        return self._server

    @property
    def url(self) -> str:
        return self._s.url

    @property
    def port(self) -> int:
        return self._s.port

    @property
    def ca_file(self) -> Path:
        return Path(self._s.ca_file)

    def received(self, token: str) -> int:
        """Requests fully received for ``token``, across all connections."""
        return self._s.received(token)

    @property
    def total_received(self) -> int:
        return self._s.total_received

    @property
    def connections_accepted(self) -> int:
        return self._s.connections_accepted

    @property
    def max_active_streams_seen(self) -> int:
        return self._s.max_active_streams_seen

    @property
    def refused_streams(self) -> int:
        """Streams refused for exceeding the advertised MAX_CONCURRENT_STREAMS."""
        return self._s.refused_streams

    @property
    def cert_connections(self) -> int:
        """Connections that presented a client certificate issued by ``client_ca_pem``."""
        return self._s.cert_connections

    @property
    def token_update_rejections(self) -> int:
        """Requests refused with 429 ``TooManyProviderTokenUpdates``."""
        return self._s.token_update_rejections

    @property
    def distinct_tokens(self) -> int:
        """Distinct JWTs that passed the signature and age checks, across all connections."""
        return self._s.distinct_tokens

    def set_rules(self, rules: Rules) -> None:
        self._s.set_rules(_rule_strings(rules))

    def set_max_concurrent_streams(self, n: int) -> None:
        """Change SETTINGS_MAX_CONCURRENT_STREAMS live on every connection."""
        self._s.set_max_concurrent_streams(n)

    def client(self, **options: Any) -> APNsClient:
        """An APNsClient pointed at this server, trusting its CA; ``credentials`` defaults
        to the server's own."""
        credentials = options.pop("credentials", self.credentials)
        options.setdefault("base_url", self.url)
        options.setdefault("ca_file", self.ca_file)
        return APNsClient(credentials, **options)

    def sync_client(self, **options: Any) -> SyncAPNsClient:
        credentials = options.pop("credentials", self.credentials)
        options.setdefault("base_url", self.url)
        options.setdefault("ca_file", self.ca_file)
        return SyncAPNsClient(credentials, **options)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"MockAPNs({state})"
