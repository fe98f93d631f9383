"""Test helpers: a real TLS HTTP/2 mock of APNs and of FCM HTTP v1, for pushwire's tests and
yours.

::

    with MockAPNs(rules={"dead": "unregistered", "eeee": "hang"}) as server:
        async with server.client() as client:
            result = await client.send(Notification("dead01", message))
        assert server.received("dead01") == 1

Behaviours by token prefix: ``ok``, ``unregistered``, ``expired-token``, ``bad-token``, ``429``,
``500``, ``503``, ``sender-mismatch``, ``third-party-auth``, ``invalid-argument``,
``unspecified``, ``delay:MS``, ``hang``, ``reset``, ``refused``, ``goaway``, ``close``,
``blackhole`` and ``reject:STATUS:REASON``. Each is answered in the shape of the protocol asked
(APNs ``reason``, or a Google error with an FCM ``errorCode``); see :class:`MockFCM`.
The server trusts nothing by default and is trusted through ``ca_file`` — no
verification is ever switched off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from . import _core
from ._apns import APNsClient
from ._broadcast import BroadcastClient
from ._fcm import FCMClient
from ._oauth import ServiceAccountCredentials
from ._sync import SyncAPNsClient, SyncFCMClient
from ._webpush import WebPushClient
from .credentials import TokenCredentials
from .vapid import VapidKey
from .webpush import WebPushSubscription

if TYPE_CHECKING:
    from typing_extensions import Self

Rules = Union[Mapping[str, str], Sequence[str], None]


def _rule_strings(rules: Rules) -> list[str]:
    if rules is None:
        return []
    if isinstance(rules, Mapping):
        return [f"{prefix}={behavior}" for prefix, behavior in rules.items()]
    return list(rules)


class _MockServer:
    """What both mock modes share: lifecycle, address, CA and counters."""

    _server: _core.MockServer | None

    def __enter__(self) -> Self:
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
        """``https://localhost:<port>``."""
        return self._s.url

    @property
    def port(self) -> int:
        return self._s.port

    @property
    def ca_file(self) -> Path:
        """The PEM of the CA that signed the server certificate: what clients trust."""
        return Path(self._s.ca_file)

    def received(self, token: str) -> int:
        """Requests fully received for ``token`` (compared ignoring ASCII case)."""
        return self._s.received(token)

    @property
    def total_received(self) -> int:
        return self._s.total_received

    @property
    def connections_accepted(self) -> int:
        return self._s.connections_accepted

    @property
    def max_active_streams_seen(self) -> int:
        """The most streams any one connection had open at once."""
        return self._s.max_active_streams_seen

    def set_rules(self, rules: Rules) -> None:
        """Replace the behaviour rules, live."""
        self._s.set_rules(_rule_strings(rules))

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _state(self) -> str:
        return self.url if self._server is not None else "stopped"


class MockAPNs(_MockServer):
    """The mock APNs server, in-process on its own threads.

    ``credentials``: token credentials whose JWTs the server verifies like APNs: ES256 against
    their public key, ``iat`` at most ``jwt_max_age`` seconds old (``ExpiredProviderToken``)
    and not over 60 s in the future, each connection bound to its first key id
    (``UnrelatedKeyIdInToken``), and a token change on one connection at most every
    ``token_update_window`` seconds (429 ``TooManyProviderTokenUpdates``). ``trusted_keys``
    are further keys it accepts (key rotation). Without any, any request is accepted.

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
        trusted_keys: Sequence[TokenCredentials] = (),
    ) -> None:
        jwt_keys = [
            (c.key_id, c.team_id, c.public_key_pem())
            for c in ([credentials] if credentials is not None else []) + list(trusted_keys)
        ]
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

    def set_max_concurrent_streams(self, n: int) -> None:
        """Change SETTINGS_MAX_CONCURRENT_STREAMS live on every connection."""
        self._s.set_max_concurrent_streams(n)

    def received_broadcasts(self, channel_id: str) -> int:
        """Valid Live Activity broadcasts the server received for ``channel_id`` (whatever it
        answered, faults included; kept after the channel is deleted)."""
        return self._s.received_broadcasts(channel_id)

    def broadcast_channels(self, bundle_id: str) -> dict[str, int]:
        """``bundle_id``'s broadcast channels: channel id -> message-storage-policy."""
        return dict(self._s.broadcast_channels(bundle_id))

    def stored_broadcast(self, channel_id: str) -> bytes | None:
        """The message a storage-policy-1 channel keeps (its most recent broadcast)."""
        return self._s.stored_broadcast(channel_id)

    def disable_broadcast(self, bundle_id: str) -> None:
        """Broadcasts for ``bundle_id`` get 400 ``FeatureNotEnabled`` from now on."""
        self._s.disable_broadcast(bundle_id)

    def broadcast_client(self, bundle_id: str, **options: Any) -> BroadcastClient:
        """A BroadcastClient for ``bundle_id``; both its origins (APNs and channel
        management) point at this server."""
        credentials = options.pop("credentials", self.credentials)
        options.setdefault("base_url", self.url)
        options.setdefault("management_url", self.url)
        options.setdefault("ca_file", self.ca_file)
        return BroadcastClient(credentials, bundle_id=bundle_id, **options)

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

    def __repr__(self) -> str:
        return f"MockAPNs({self._state()})"


class MockFCM(_MockServer):
    """The mock FCM HTTP v1 server and its OAuth2 token endpoint, in-process on its own threads
    (the same Rust server as :class:`MockAPNs`, routed by path).

    ``POST {token_uri}`` takes a JWT-bearer grant (``grant_type=urn:ietf:params:oauth:grant-type:
    jwt-bearer&assertion=<JWT>``). The assertion must be RS256-signed by the service account's
    key, with ``iss`` = ``service_account_email``, ``scope`` holding the firebase.messaging or
    cloud-platform scope, ``aud`` = ``token_uri`` (or Google's own token URI), ``iat`` at most
    60 s ahead and ``exp`` in the future and at most an hour after ``iat``. Refusals are 400
    ``invalid_grant`` (``invalid_scope``, ``unsupported_grant_type``, ``invalid_request``).
    A grant returns an opaque access token with ``expires_in`` = ``token_lifetime``.

    ``POST {url}/v1/projects/{project}/messages:send`` then needs ``authorization: Bearer
    <token>`` with a token this server issued and that has not expired (else 401
    ``UNAUTHENTICATED``, no FCM ``errorCode``); without a service account, no token is needed.
    Next comes the project quota (``quota_per_window`` messages per ``quota_window`` seconds in
    fixed windows from a project's first message; over it, 429 ``QUOTA_EXCEEDED`` with
    ``retry-after`` = whole seconds to the reset), then the message checks (exactly one of
    ``token``/``topic``/``condition``; string-only ``data`` without reserved keys; an
    ``android.ttl`` such as ``"3.5s"`` of at most 4 weeks; at most 4096 bytes of serialized
    ``message``; each failure is 400 ``INVALID_ARGUMENT`` with a ``google.rpc.BadRequest`` field
    violation), then the rules, matched on ``message.token`` (else the topic or condition).
    Success is 200 ``{"name": "projects/{project}/messages/0:<n>"}``; ``validate_only: true``
    answers ``.../messages/fake_message_id`` and counts in :attr:`dry_runs`, not in
    :meth:`received`.

    FCM answers to the rule behaviours: ``unregistered`` and ``expired-token`` 404
    ``UNREGISTERED``; ``bad-token`` 400 ``INVALID_ARGUMENT`` "The registration token is not a
    valid FCM registration token"; ``429`` 429 ``QUOTA_EXCEEDED`` (``retry-after: 60``); ``500``
    500 ``INTERNAL``; ``503`` 503 ``UNAVAILABLE`` (``retry-after: 1``); ``sender-mismatch`` 403
    ``SENDER_ID_MISMATCH``; ``third-party-auth`` 401 ``THIRD_PARTY_AUTH_ERROR``;
    ``invalid-argument`` 400 ``INVALID_ARGUMENT`` naming a field (a payload bug);
    ``unspecified`` 500 ``UNSPECIFIED_ERROR``; ``reject:STATUS:CODE`` that status with ``CODE``
    as the ``errorCode``. The connection faults work as for APNs.
    """

    def __init__(
        self,
        *,
        credentials: ServiceAccountCredentials | None = None,
        service_account_email: str | None = None,
        service_account_public_key_pem: Union[str, bytes, None] = None,
        project_id: str = "demo-project",
        rules: Rules = None,
        token_lifetime: float = 3600.0,
        quota_per_window: int | None = None,
        quota_window: float = 60.0,
        port: int = 0,
        max_concurrent_streams: int = 1000,
        response_delay: float = 0.0,
    ) -> None:
        if credentials is not None:
            # The server checks the assertions of this service account.
            service_account_email = credentials.client_email
            service_account_public_key_pem = credentials.public_key_pem()
            project_id = credentials.project_id
        self.credentials = credentials
        if (service_account_email is None) != (service_account_public_key_pem is None):
            raise ValueError(
                "pass both service_account_email and service_account_public_key_pem, or neither"
            )
        if isinstance(service_account_public_key_pem, bytes):
            service_account_public_key_pem = service_account_public_key_pem.decode()
        accounts = []
        if service_account_email is not None and service_account_public_key_pem is not None:
            accounts.append((service_account_email, service_account_public_key_pem))
        self._project_id = project_id
        self._server: _core.MockServer | None = _core.MockServer(
            port=port,
            max_concurrent_streams=max_concurrent_streams,
            rules=_rule_strings(rules),
            response_delay=response_delay,
            fcm_service_accounts=accounts,
            fcm_token_lifetime=token_lifetime,
            fcm_quota_per_window=quota_per_window,
            fcm_quota_window=quota_window,
        )

    def _client_options(self, options: dict[str, Any]) -> ServiceAccountCredentials:
        if self.credentials is None:
            raise ValueError("MockFCM(credentials=...) is needed to build a client")
        options.setdefault("base_url", self.url)
        options.setdefault("token_uri", self.token_uri)
        options.setdefault("ca_file", self.ca_file)
        options.setdefault("project_id", self._project_id)
        return self.credentials

    def client(self, **options: Any) -> FCMClient:
        """An FCMClient pointed at this server (messages and OAuth), trusting its CA."""
        return FCMClient(self._client_options(options), **options)

    def sync_client(self, **options: Any) -> SyncFCMClient:
        return SyncFCMClient(self._client_options(options), **options)

    @property
    def url(self) -> str:
        """``https://localhost:<port>``; sends go to ``/v1/projects/{project}/messages:send``."""
        return self._s.url

    @property
    def token_uri(self) -> str:
        """The OAuth2 token endpoint, for the service account's ``token_uri``."""
        return self._s.token_uri

    @property
    def project_id(self) -> str:
        """The project clients should address (the server answers any project)."""
        return self._project_id

    @property
    def oauth_tokens_issued(self) -> int:
        return self._s.oauth_tokens_issued

    @property
    def quota_rejections(self) -> int:
        """Sends refused with 429 ``QUOTA_EXCEEDED`` by the project quota (not by rules)."""
        return self._s.quota_rejections

    @property
    def dry_runs(self) -> int:
        """Sends with ``validate_only: true``, whatever their answer."""
        return self._s.fcm_dry_runs

    @property
    def total_received(self) -> int:
        """Sends fully received, valid or not (dry runs and token grants excepted)."""
        return self._s.total_received

    def received(self, token: str) -> int:
        """Sends fully received for ``message.token`` (compared ignoring ASCII case)."""
        return self._s.received(token)

    def expire_oauth_tokens(self) -> None:
        """Every access token issued so far expires now: sends carrying one get 401
        ``UNAUTHENTICATED`` until the client fetches a new token."""
        self._s.expire_oauth_tokens()

    def __repr__(self) -> str:
        return f"MockFCM({self._state()}, project_id={self._project_id!r})"


class MockWebPush:
    """Several mock Web Push push services (one server per ``services``, on its own port,
    origin ``https://localhost:<port>``), sharing one CA.

    Each checks ``TTL``, ``Urgency``, ``Topic``, the VAPID header (ES256 signature against
    ``k``, ``aud`` = its origin, ``exp`` in the future and at most 24 h ahead, ``sub``
    ``mailto:``/``https:``; else 403 with a JSON ``reason``), the 4,096-byte limit (413) and
    ``Content-Encoding: aes128gcm``, then **decrypts** the body with the subscription's private
    key (400 ``DecryptionFailed`` if it cannot) and records the plaintext: :meth:`messages`.
    Success is 201. Rules match the subscription id: ``unregistered`` answers 410, ``bad-token``
    404, ``429`` 429 with ``retry-after``, and ``hang``/``reset``/``goaway``... as for APNs.

    :meth:`subscription` mints a subscription whose keys derive from its id, as the servers
    derive them: nothing needs registering.

    ``http1_services`` more services (numbered after the others) speak only HTTP/1.1 (ALPN
    ``http/1.1``), with the same checks and decryption: push services without HTTP/2.
    """

    def __init__(self, *, services: int = 3, rules: Rules = None, http1_services: int = 0) -> None:
        if services < 1:
            raise ValueError("services must be at least 1")
        if http1_services < 0:
            raise ValueError("http1_services must be at least 0")
        import shutil
        import tempfile

        self._cert_dir = tempfile.mkdtemp(prefix="pushwire-mock-webpush-")
        self._rmtree = shutil.rmtree
        self._servers: list[_core.MockServer] = []
        try:
            for index in range(services + http1_services):
                # One cert_dir: every service signs with the same CA, one ca_file trusts all.
                self._servers.append(
                    _core.MockServer(
                        rules=_rule_strings(rules),
                        cert_dir=self._cert_dir,
                        http1_only=index >= services,
                    )
                )
        except BaseException:
            self.stop()
            raise
        self._ids = iter(range(1 << 62))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        """Each push service's origin."""
        return [server.url for server in self._servers]

    @property
    def ca_file(self) -> Path:
        return Path(self._servers[0].ca_file)

    def subscription(self, id: str | None = None, *, service: int = 0) -> WebPushSubscription:
        """A subscription on push service ``service`` (ids: ASCII letters, digits, - and _;
        rules match their prefix)."""
        import base64

        sub_id = id if id is not None else f"s{next(self._ids):x}"
        p256dh, auth = _core.mock_webpush_keys(sub_id)
        return WebPushSubscription(
            f"{self._servers[service].url}/wp/{sub_id}",
            base64.urlsafe_b64encode(p256dh).rstrip(b"=").decode(),
            base64.urlsafe_b64encode(auth).rstrip(b"=").decode(),
        )

    def _server_of(self, subscription: WebPushSubscription) -> tuple[_core.MockServer, str]:
        origin, _, sub_id = subscription.endpoint.partition("/wp/")
        for server in self._servers:
            if server.url == origin:
                return server, sub_id
        raise ValueError(f"{subscription.endpoint!r} is not a subscription of this mock")

    def messages(self, subscription: WebPushSubscription) -> list[bytes]:
        """The plaintexts the push service decrypted for ``subscription``, in arrival order."""
        server, sub_id = self._server_of(subscription)
        return _core.mock_webpush_messages(server, sub_id)

    def received(self, subscription: WebPushSubscription) -> int:
        """Requests fully received for ``subscription``, valid or not."""
        server, sub_id = self._server_of(subscription)
        return server.received(sub_id)

    @property
    def total_received(self) -> int:
        return sum(server.total_received for server in self._servers)

    def set_rules(self, rules: Rules) -> None:
        for server in self._servers:
            server.set_rules(_rule_strings(rules))

    def client(
        self,
        vapid_key: VapidKey | None = None,
        *,
        subject: str = "mailto:ops@example.com",
        **options: Any,
    ) -> WebPushClient:
        """A WebPushClient trusting these services' CA (a new VAPID key unless given)."""
        options.setdefault("ca_file", self.ca_file)
        return WebPushClient(vapid_key or VapidKey.generate(), subject=subject, **options)

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers = []
        self._rmtree(self._cert_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"MockWebPush({', '.join(self.urls) or 'stopped'})"
