"""FCMClient: Firebase Cloud Messaging HTTP v1 through the same HTTP/2 engine."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar

import msgspec

from . import _core
from ._client import PathLike, PushClient
from ._dispatch import AuthRetry
from ._errors import ConfigurationError, CredentialsError, PushwireError
from ._oauth import ServiceAccountCredentials, parse_token_response
from ._pacing import ConnectionPlan, ConnectionPlanner, QuotaRetry, SlidingWindowPace
from ._pool_options import PoolOptionArgs, PoolOptions
from ._record import AUTH_GENERATION, OutcomeRecord
from ._results import Result
from ._retry import DEFAULT_RETRY, RetryPolicy
from .fcm import FCMMessage, as_item

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._message import NotificationLike

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
_log = logging.getLogger("pushwire.fcm")
#: Refresh the access token this long before it expires, in the background.
REFRESH_MARGIN = 300.0


class FCMClient(PushClient["NotificationLike", "FCMMessage", str]):
    """Sends FCM v1 messages, one HTTP/2 request each, multiplexed on a connection pool.

    429 (QUOTA_EXCEEDED waits at least a minute), 500 and 503 are resent after Retry-After or
    an exponential backoff with jitter, up to ``retry.max_attempts`` sends. ``rate_limit``
    caps messages per minute (FCM's default project quota is 600,000/min); off by default.

    At quota speed: ``quota_per_minute`` paces sends so that no ``quota_window`` seconds
    (60 by default; FCM's minutes are not clock-aligned) hold more than the quota, and a 429
    QUOTA_EXCEEDED holds every send for its Retry-After plus jitter; ``avoid_hour_start``
    starts nothing in the first two minutes of an hour.

    Connection count: FCM allows about 100 streams per connection, so one connection carries
    about ``streams / round_trip`` messages a second. With a wanted rate (``target_rate``
    messages/s, by default the quota's rate) the pool starts with one connection; once the
    engine has read the server's SETTINGS_MAX_CONCURRENT_STREAMS and measured the round trip
    of the first answers, it is resized to ``ceil(rate * round_trip / streams)`` connections
    (re-planned every second while sending; :attr:`connection_plan` says which count and why,
    and the ``pushwire.fcm`` logger logs it at DEBUG). ``streams_per_connection`` and
    ``round_trip`` override the measured figures (both given: the pool is sized at once);
    ``max_connections`` caps the count. Without a rate the pool has ``max_connections``
    (default 4) connections.

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
        max_connections: int | None = None,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rate_limit: int | None = None,
        quota_per_minute: int | None = None,
        quota_window: float = 60.0,
        avoid_hour_start: bool = False,
        target_rate: float | None = None,
        round_trip: float | None = None,
        streams_per_connection: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
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
        pace = _quota_pace(quota_per_minute, quota_window, avoid_hour_start, rate_limit)
        if pace is not None and retry is not None:
            retry = QuotaRetry.around(retry, pace)
        if target_rate is None and pace is not None:
            target_rate = pace.rate
        self._planner: ConnectionPlanner | None = None
        plan: ConnectionPlan | None = None
        if target_rate is not None:
            _check_plan_inputs(target_rate, round_trip, streams_per_connection, max_connections)
            self._planner = ConnectionPlanner(
                target_rate,
                round_trip=round_trip,
                streams=streams_per_connection,
                cap=max_connections,
            )
            plan = self._planner.initial()
            # Until SETTINGS and the first answers are in, one connection.
            max_connections = plan.connections if plan is not None else 1
            if streams_per_connection is not None:
                pool_options.setdefault("max_streams_per_connection", streams_per_connection)
        elif max_connections is None:
            max_connections = 4
        options = PoolOptions.from_keywords(
            {"request_timeout": request_timeout, "max_connections": max_connections, **pool_options}
        )
        super().__init__(
            base_url,
            identity=f"fcm:{service_account.client_email}",
            ca_file=ca_file,
            options=options,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
            path_prefix="/v1/projects/" + urllib.parse.quote(self.project_id, safe=""),
        )
        if pace is not None:
            self._limiter = pace  # type: ignore[assignment]  # same interface, sliding window
        self._pace = pace
        #: The pool size chosen for the wanted rate and why (None without a rate, or before
        #: the first answers when the count comes from measurements).
        self.connection_plan: ConnectionPlan | None = plan
        self._watching_pool = False
        if plan is not None:
            _log.debug("FCM pool for project %s: %s", self.project_id, plan)
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
            PoolOptions(max_connections=1, request_timeout=self.request_timeout),
            ca_file=self._ca_file,
            identity="oauth",
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

    def _ready(self) -> Awaitable[None] | None:
        return None if self._token_valid() else self._refresh()

    def _before_submit(self) -> None:
        # Refresh early in the background; sends go on with the current token meanwhile.
        if self._expires_at and time.monotonic() > self._expires_at - REFRESH_MARGIN:
            self._start_refresh()
        if self._planner is None:
            return
        if self._planner.due():
            # Before the work is queued: the pool grows for it at once.
            self._resize(self._planner)
        if not self._watching_pool:
            # Re-plan while work is out, also when one big submit is all there is.
            self._watching_pool = True
            asyncio.get_running_loop().call_soon(self._watch_pool)

    def _watch_pool(self) -> None:
        """Size the pool for the wanted rate from the engine's latest figures; runs every
        tenth of a second while notifications are outstanding (the planner itself re-plans
        at most once a second)."""
        planner = self._planner
        if planner is None or self._closed or self._engine.closed:
            self._watching_pool = False
            return
        if planner.due():
            try:
                self._resize(planner)
            except PushwireError:  # closed in another thread meanwhile: nothing to size
                self._watching_pool = False
                return
        if self._engine.outstanding():
            asyncio.get_running_loop().call_later(0.1, self._watch_pool)
        else:
            self._watching_pool = False

    def _resize(self, planner: ConnectionPlanner) -> None:
        plan = planner.update(self._engine.stats(self._pool))
        if plan is None:
            return
        self._engine.set_max_connections(self._pool, plan.connections)
        self.connection_plan = plan
        _log.debug("FCM pool for project %s: %s", self.project_id, plan)

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        if self._refreshing is not None and not self._refreshing.done():
            return self._refreshing
        if all(record[AUTH_GENERATION] < self._auth_generation for record in rejected):
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

    async def send(self, notification: NotificationLike | FCMMessage) -> Result:
        """Send a ``Notification(token, message)``, or a message with its own target."""
        if isinstance(notification, FCMMessage):
            kind = notification.target_kind
            result = await super().send(as_item(notification))
            if kind in ("topic", "condition"):
                # Say that ``token`` holds a topic or a condition, not a device token.
                result = msgspec.structs.replace(result, target_kind=kind)
            return result
        return await super().send(notification)


def _quota_pace(
    quota_per_minute: int | None, window: float, avoid_hour_start: bool, rate_limit: int | None
) -> SlidingWindowPace | None:
    if quota_per_minute is None:
        if avoid_hour_start:
            raise ConfigurationError(
                "avoid_hour_start needs quota_per_minute", field="avoid_hour_start"
            )
        return None
    if rate_limit is not None:
        raise ConfigurationError(
            "give quota_per_minute or rate_limit, not both", field="quota_per_minute"
        )
    if type(quota_per_minute) is not int or quota_per_minute < 1 or not 0 < window <= 60:
        raise ConfigurationError(
            "quota_per_minute must be a positive int and quota_window in (0, 60] seconds",
            field="quota_per_minute",
        )
    # The quota is per minute; a shorter window (tests, mocks) takes its share of it.
    per_window = max(1, round(quota_per_minute * window / 60.0))
    return SlidingWindowPace(per_window, window, avoid_hour_start=avoid_hour_start)


def _check_plan_inputs(
    rate: float, round_trip: float | None, streams: int | None, max_connections: int | None
) -> None:
    """ConfigurationError naming the first figure of the connection plan that makes no sense."""
    for field_name, number in (("target_rate", rate), ("round_trip", round_trip)):
        if number is not None and not (isinstance(number, (int, float)) and number > 0):
            raise ConfigurationError(
                f"{field_name} must be a number > 0, not {number!r}", field=field_name
            )
    for field_name, count in (
        ("streams_per_connection", streams),
        ("max_connections", max_connections),
    ):
        if count is not None and not (type(count) is int and count >= 1):
            raise ConfigurationError(
                f"{field_name} must be an int >= 1, not {count!r}", field=field_name
            )


def _log_refresh_failure(task: asyncio.Task[None]) -> None:
    """A background refresh that failed: sends go on with the current token while it lasts;
    the next refresh (or the first send after expiry) retries and raises the error."""
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.warning("FCM access-token refresh failed: %s", error)
