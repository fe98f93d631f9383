"""APNsClient: Apple Push Notification service over HTTP/2."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar

from ._client import PathLike, PushClient
from ._dispatch import AuthRetry
from ._errors import ConfigurationError
from ._message import Message, NotificationLike
from ._pool_options import PoolOptionArgs, PoolOptions
from ._record import REASON, OutcomeRecord
from ._retry import RetryPolicy
from .credentials import CertificateCredentials, Credentials, TokenCredentials

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: APNs 5xx are resent (bounded); 429 TooManyRequests concerns one device and waits longer.
APNS_RETRY = RetryPolicy(statuses=frozenset({500, 503}))

ENVIRONMENTS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}


class APNsClient(PushClient[NotificationLike, Message, str]):
    """Sends notifications to APNs over a pool of multiplexed HTTP/2 connections.

    One long-lived client per credential. Use it as ``async with APNsClient(...) as client``.
    Every notification submitted gets exactly one :class:`Result`; rejections are results,
    not exceptions.
    """

    AUTH_RETRY: ClassVar[AuthRetry] = frozenset(
        {(403, "ExpiredProviderToken"), (403, "UnrelatedKeyIdInToken")}
    )

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        environment: str = "production",
        base_url: str | None = None,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 4,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = APNS_RETRY,
        rate_limit: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
    ) -> None:
        if base_url is None:
            if environment not in ENVIRONMENTS:
                raise ConfigurationError(
                    f"environment must be 'production' or 'sandbox', got {environment!r}",
                    field="environment",
                )
            base_url = ENVIRONMENTS[environment]
        options = PoolOptions.from_keywords(
            {"request_timeout": request_timeout, "max_connections": max_connections, **pool_options}
        )
        self.environment = environment
        self._credentials = credentials
        client_cert = None
        if isinstance(credentials, CertificateCredentials):
            client_cert = credentials.client_cert()
        # APNs binds a connection to the first key used on it: pool per (credential, env).
        identity = f"{credentials.identity}:{environment}" if credentials is not None else ""
        super().__init__(
            base_url,
            identity=identity,
            ca_file=ca_file,
            options=options,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
            client_cert=client_cert,
        )
        self._auth_sent: str | None = None
        #: What the engine numbered the current header (outcomes carry the one they used).
        self._auth_generation = 0

    PROVIDER = "apns"

    def _auth_refreshes(self) -> int:
        creds = self._credentials
        return creds.mints if isinstance(creds, TokenCredentials) else 0

    def __repr__(self) -> str:
        return f"APNsClient(base_url={self.base_url!r}, credentials={self._credentials!r})"

    def _before_submit(self) -> None:
        """Hand the engine the current JWT when it changed (once per engine call)."""
        creds = self._credentials
        if isinstance(creds, TokenCredentials):
            self._set_authorization(creds.authorization())

    def _set_authorization(self, value: str) -> None:
        if value is not self._auth_sent:
            self._auth_generation = self._engine.set_authorization(self._pool, value)
            self._auth_sent = value

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        """Mint a new JWT (ExpiredProviderToken; never within 20 minutes of the last one) or
        move to fresh connections (UnrelatedKeyIdInToken)."""
        reasons = {record[REASON] for record in rejected}
        creds = self._credentials
        if "ExpiredProviderToken" in reasons and isinstance(creds, TokenCredentials):
            self._set_authorization(creds.authorization(force=True))
        if "UnrelatedKeyIdInToken" in reasons:
            self._engine.retire_connections(self._pool)
        return None
