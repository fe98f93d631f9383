"""FCMClient: Firebase Cloud Messaging HTTP v1 through the same HTTP/2 engine."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable
from typing import Any, ClassVar

from . import _core
from ._client import PathLike, PushClient
from ._dispatch import AUTH_GENERATION, AuthRetry
from ._errors import ConfigurationError, CredentialsError
from ._oauth import ServiceAccountCredentials, parse_token_response
from ._results import Result
from ._retry import DEFAULT_RETRY, RetryPolicy
from .fcm import FCMMessage, as_item

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
_log = logging.getLogger("pushwire.fcm")
#: Refresh the access token this long before it expires, in the background.
REFRESH_MARGIN = 300.0


class FCMClient(PushClient):
    """Sends FCM v1 messages, one HTTP/2 request each, multiplexed on a connection pool.

    429 (QUOTA_EXCEEDED waits at least a minute), 500 and 503 are resent after Retry-After or
    an exponential backoff with jitter, up to ``retry.max_attempts`` sends. ``rate_limit``
    caps messages per minute (FCM's default project quota is 600,000/min); off by default.

    The OAuth2 access token is fetched before the first send, refreshed in the background
    before it expires (sends never wait for a refresh while the current token is valid), and
    after a 401 refreshed at once and the rejected messages resent once.
    """

    AUTH_RETRY: ClassVar[AuthRetry] = frozenset({(401, "UNAUTHENTICATED")})

    def __init__(
        self,
        service_account: ServiceAccountCredentials,
        *,
        project_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        token_uri: str | None = None,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 4,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rate_limit: int | None = None,
        **pool_options: Any,
    ) -> None:
        if not isinstance(service_account, ServiceAccountCredentials):
            raise ConfigurationError(
                "service_account must be a ServiceAccountCredentials "
                "(ServiceAccountCredentials.from_file('key.json'))",
                field="service_account",
            )
        self.project_id = project_id or service_account.project_id
        if not self.project_id or "/" in self.project_id:
            raise ConfigurationError("project_id is empty or malformed", field="project_id")
        self._credentials = service_account
        if token_uri is not None:
            service_account.token_uri = token_uri
        super().__init__(
            base_url,
            identity=f"fcm:{service_account.client_email}",
            ca_file=ca_file,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
            path_prefix="/v1/projects/" + urllib.parse.quote(self.project_id, safe=""),
            **pool_options,
        )
        self._token_pool, self._token_path = self._add_token_pool(service_account.token_uri)
        self._expires_at = 0.0  # monotonic time the current access token expires
        self._auth_generation = 0  # engine generation of the current access token
        self._refreshing: asyncio.Task[None] | None = None
        #: Access tokens obtained so far (observability; tests count them).
        self.token_refreshes = 0

    def _add_token_pool(self, token_uri: str) -> tuple[int, str]:
        parsed = urllib.parse.urlsplit(token_uri)
        if parsed.scheme != "https" or not parsed.netloc:
            raise ConfigurationError(
                f"token_uri {token_uri!r} must be an https URL", field="token_uri"
            )
        pool = self._engine.add_pool(
            f"https://{parsed.netloc}",
            ca_file=self._ca_file,
            identity="oauth",
            max_connections=1,
            request_timeout=self.request_timeout,
        )
        return pool, parsed.path or "/"

    PROVIDER = "fcm"

    def _auth_refreshes(self) -> int:
        return self.token_refreshes

    def __repr__(self) -> str:
        return f"FCMClient(project_id={self.project_id!r}, credentials={self._credentials!r})"

    # -- access token ---------------------------------------------------------------------

    def _token_valid(self) -> bool:
        return time.monotonic() < self._expires_at

    async def _ready(self) -> None:
        if not self._token_valid():
            await self._refresh()

    def _before_submit(self) -> None:
        # Refresh early in the background; sends go on with the current token meanwhile.
        if self._expires_at and time.monotonic() > self._expires_at - REFRESH_MARGIN:
            self._start_refresh()

    def _fix_auth(self, rejected: list[tuple[Any, ...]]) -> Awaitable[None] | None:
        if self._refreshing is not None and not self._refreshing.done():
            return self._refreshing
        if all(raw[AUTH_GENERATION] < self._auth_generation for raw in rejected):
            # They carried a token we have replaced since: resend, no new grant.
            return None
        self._expires_at = 0.0  # the server refused the current token
        return self._start_refresh()

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._fetch_token())
            self._refreshing.add_done_callback(_log_refresh_failure)
        return self._refreshing

    async def _refresh(self) -> None:
        await asyncio.shield(self._start_refresh())

    async def _grant(self) -> tuple[str, float]:
        """One JWT-bearer grant at the token endpoint: (access token, seconds it stays valid
        counted from the moment it was requested, so never overestimated)."""
        template = _core.Template.fixed(
            self._token_path,
            [("content-type", "application/x-www-form-urlencoded")],
            self._credentials.token_request_body(),
            keep_body=True,
        )
        requested = time.monotonic()
        result: Result = await self._dispatch().call(self._token_pool, ("oauth", template, None))
        if result.status == 0:
            raise CredentialsError(
                f"could not reach the OAuth2 token endpoint: {result.error}",
                field="service_account",
            )
        token, expires_in = parse_token_response(result.status, result.body)
        return token, expires_in - (time.monotonic() - requested)

    async def _fetch_token(self) -> None:
        token, valid_for = await self._grant()
        self._auth_generation = self._engine.set_authorization(self._pool, "Bearer " + token)
        self._expires_at = time.monotonic() + valid_for
        self.token_refreshes += 1

    # -- sending ---------------------------------------------------------------------------

    async def send(self, notification: Any) -> Result:
        """Send a ``Notification(token, message)``, or a message with its own target."""
        if isinstance(notification, FCMMessage):
            notification = as_item(notification)
        return await super().send(notification)


def _log_refresh_failure(task: asyncio.Task[None]) -> None:
    """A background refresh that failed: sends go on with the current token while it lasts;
    the next refresh (or the first send after expiry) retries and raises the error."""
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.warning("FCM access-token refresh failed: %s", error)
