"""One client per application, built once per worker and reused for every job.

Applications (provider, topic or project, where the credentials are) come from the endpoint
store the worker is given (``--db``), exactly as for ``pushwire send-segment``. APNs token
credentials adopt the JWT shared through Redis; FCM clients share their access token; FCM
applications may share a per-project rate limit.

Messages are rendered once per (job, application), with a collapse id derived from the job id
unless the message has its own: a notification sent twice (at-least-once delivery after a
worker died) replaces itself on the device instead of showing twice.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from .._apns import APNsClient
from .._client import PathLike
from .._fcm import DEFAULT_BASE_URL as FCM_BASE_URL
from .._fcm import FCMClient
from .._message import Message
from .._oauth import ServiceAccountCredentials
from .._webpush import WebPushClient
from ..credentials import TokenCredentials
from ..fcm import FCMMessage
from ..store.credentials import VapidCredentials, load_credentials
from ..store.message import APNsOverride, FCMOverride, PushMessage, WebPushOverride
from ..store.model import Application
from ..webpush import WebPushMessage
from .quota import SharedQuota
from .shared_auth import SharedAPNsClient, SharedAuth, SharedFCMClient

log = logging.getLogger("pushwire.jobs")

Rendered = Message | FCMMessage | WebPushMessage

#: Rendered messages kept per worker (jobs in progress at once, times applications).
_RENDERED_CACHE = 256


def collapse_id(job_id: str) -> str:
    """``pw-<job id>``: at most 51 bytes, under APNs' 64."""
    return f"pw-{job_id}"


def collapse_topic(job_id: str) -> str:
    """A Web Push ``Topic`` for the job: 32 base64url characters of its SHA-256."""
    digest = hashlib.sha256(job_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def with_collapse(message: PushMessage, job_id: str) -> PushMessage:
    """``message`` with an APNs collapse id, an FCM (Android) collapse key and an
    apns-collapse-id for iOS devices behind FCM, and a Web Push topic, derived from the job
    where the message has none of its own."""
    key = collapse_id(job_id)
    webpush = message.webpush or WebPushOverride()
    if webpush.topic is None:
        webpush = dataclasses.replace(webpush, topic=collapse_topic(job_id))
    apns = message.apns or APNsOverride()
    if apns.collapse_id is None:
        apns = dataclasses.replace(apns, collapse_id=key)
    fcm = message.fcm or FCMOverride()
    if fcm.android is not None:
        if fcm.android.collapse_key is None:
            fcm = dataclasses.replace(
                fcm, android=msgspec.structs.replace(fcm.android, collapse_key=key)
            )
    elif fcm.collapse_key is None:
        fcm = dataclasses.replace(fcm, collapse_key=key)
    if fcm.apns is not None:
        # A whole APNs block of the caller's: iOS devices behind FCM collapse by its header.
        headers = fcm.apns.headers or {}
        if not any(name.lower() == "apns-collapse-id" for name in headers):
            headers = {**headers, "apns-collapse-id": key}
            fcm = dataclasses.replace(fcm, apns=msgspec.structs.replace(fcm.apns, headers=headers))
    return dataclasses.replace(message, apns=apns, fcm=fcm, webpush=webpush)


#: Engine stats that are per-pool figures, not counts: a sum over applications means nothing.
_NOT_ADDED = frozenset({"peer_max_streams", "round_trip_us"})


@dataclass(frozen=True)
class ClientOptions:
    """How workers reach the providers (defaults: the real APNs / FCM)."""

    apns_url: str | None = None
    fcm_url: str | None = None
    token_uri: str | None = None
    ca_file: PathLike | None = None
    request_timeout: float = 10.0
    max_connections: int = 4
    #: Streams per HTTP/2 connection (None: the server's limit, at most 1000).
    max_streams_per_connection: int | None = None
    #: Per-FCM-project quota, messages per minute, a sliding window shared by every worker
    #: (None: off).
    fcm_rate_limit: int | None = None
    #: The quota's window in seconds (60: FCM's minute; shorter for scaled-down tests).
    fcm_quota_window: float = 60.0
    #: A prometheus-client registry to export each application's client into (label
    #: client=<application name>), or None.
    metrics_registry: Any = None


@dataclass
class AppClient:
    application: Application
    client: APNsClient | FCMClient | WebPushClient
    limiter: SharedQuota | None = None
    refresher: asyncio.Task[None] | None = None


class ClientFactory:
    """Builds and caches the client of each application."""

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[Application]],
        options: ClientOptions,
        *,
        redis: Any,
        prefix: str,
        shared: SharedAuth | None,
    ) -> None:
        self._lookup = lookup
        self._options = options
        self._redis = redis
        self._prefix = prefix
        self._shared = shared
        self._clients: dict[str, asyncio.Task[AppClient]] = {}
        self._rendered: OrderedDict[tuple[str, str], Rendered] = OrderedDict()

    async def get(self, name: str) -> AppClient:
        """The client of application ``name`` (built on first use; a failed build is tried
        again next time)."""
        task = self._clients.get(name)
        if task is None or (task.done() and task.exception() is not None):
            task = self._clients[name] = asyncio.ensure_future(self._build(name))
        return await asyncio.shield(task)

    async def _build(self, name: str) -> AppClient:
        application = await self._lookup(name)
        loop = asyncio.get_running_loop()
        credentials = await loop.run_in_executor(None, load_credentials, application)
        o = self._options
        common: dict[str, Any] = {
            "request_timeout": o.request_timeout,
            "max_connections": o.max_connections,
        }
        if o.ca_file is not None:
            common["ca_file"] = o.ca_file
        if o.max_streams_per_connection is not None:
            common["max_streams_per_connection"] = o.max_streams_per_connection
        if isinstance(credentials, VapidCredentials):
            # Each subscription names its push service: no base URL, no shared credential
            # (a VAPID JWT is signed locally, per push service).
            webpush = WebPushClient(credentials.key, subject=credentials.subject, **common)
            self._export(webpush, application.name)
            return AppClient(application, webpush)
        if isinstance(credentials, ServiceAccountCredentials):
            fcm_options: dict[str, Any] = {**common, "base_url": o.fcm_url or FCM_BASE_URL}
            if o.token_uri is not None:
                fcm_options["token_uri"] = o.token_uri
            if application.project_id is not None:
                fcm_options["project_id"] = application.project_id
            client: APNsClient | FCMClient
            if self._shared is not None:
                client = SharedFCMClient(credentials, shared=self._shared, **fcm_options)
            else:
                client = FCMClient(credentials, **fcm_options)
            self._export(client, application.name)
            limiter = None
            if o.fcm_rate_limit is not None:
                limiter = SharedQuota(
                    self._redis,
                    self._prefix,
                    client.project_id,
                    o.fcm_rate_limit,
                    window=o.fcm_quota_window,
                )
            return AppClient(application, client, limiter)
        apns_options: dict[str, Any] = {**common}
        if o.apns_url is not None:
            apns_options["base_url"] = o.apns_url
        apns_options["environment"] = application.environment or "production"
        if not isinstance(credentials, TokenCredentials) or self._shared is None:
            client = APNsClient(credentials, **apns_options)
            self._export(client, application.name)
            return AppClient(application, client)
        client = SharedAPNsClient(credentials, shared=self._shared, **apns_options)
        self._export(client, application.name)
        try:
            await self._shared.share_jwt(credentials)
        except BaseException:
            await client.aclose()
            raise
        refresher = asyncio.ensure_future(self._shared.keep_jwt_fresh(credentials))
        return AppClient(application, client, refresher=refresher)

    def _export(self, client: APNsClient | FCMClient | WebPushClient, name: str) -> None:
        if self._options.metrics_registry is not None:
            from ..metrics import instrument

            instrument(client, name=name, registry=self._options.metrics_registry)

    def message_for(self, app: AppClient, job_id: str, body: dict[str, Any]) -> Rendered:
        """The job's message rendered for ``app`` (cached); PayloadError if it cannot be."""
        key = (job_id, app.application.name)
        rendered = self._rendered.get(key)
        if rendered is None:
            message = with_collapse(PushMessage.from_dict(body), job_id)
            rendered = message.render(app.application)
            self._rendered[key] = rendered
            if len(self._rendered) > _RENDERED_CACHE:
                self._rendered.popitem(last=False)
        else:
            self._rendered.move_to_end(key)
        return rendered

    def built(self) -> list[AppClient]:
        return [
            t.result()
            for t in self._clients.values()
            if t.done() and not t.cancelled() and t.exception() is None
        ]

    def counters(self) -> tuple[int, int, dict[str, int]]:
        """(JWTs minted here, FCM grants made here, engine counters summed; the server's stream
        limit and the round trip are the largest of any application's)."""
        mints = grants = 0
        engine: dict[str, int] = {}
        for app in self.built():
            client = app.client
            credentials = getattr(client, "_credentials", None)
            if isinstance(credentials, TokenCredentials):
                mints += credentials.mints
            if isinstance(client, SharedFCMClient):
                grants += client.grants
            try:
                stats = client.stats()
            except Exception:  # closed meanwhile
                continue
            for name, value in stats.items():
                if name in _NOT_ADDED:
                    engine[name] = max(engine.get(name, 0), value)  # the slowest / largest
                else:
                    engine[name] = engine.get(name, 0) + value
        return mints, grants, engine

    async def aclose(self) -> None:
        for task in self._clients.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._clients.values(), return_exceptions=True)
        for app in self.built():
            if app.refresher is not None:
                app.refresher.cancel()
            await app.client.aclose()
        self._clients.clear()
