"""WebPushClient: Web Push (RFC 8030/8291/8292) through the same HTTP/2 engine as APNs and FCM.

One engine, one pool per push-service origin (created the first time a subscription names
it, with its VAPID authorization); encryption per (subscription, message) happens in Rust, on
the engine side. The dispatcher (batching, retries, results) is the one APNs and FCM use; it
talks to :class:`_WebPushEngine`, which routes submissions through the Rust
``WebPushSender`` and otherwise is the engine.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Union

from . import _core
from ._client import PathLike, PushClient
from ._dispatch import AuthRetry
from ._pool_options import PoolOptionArgs, PoolOptions
from ._record import REASON, STATUS, TOKEN, OutcomeRecord
from ._record import replace as replace_fields
from ._results import Results
from ._retry import DEFAULT_RETRY, RetryPolicy
from .vapid import VapidKey, VapidSigner
from .webpush import WebPushMessage, WebPushNotification, WebPushSubscription

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: A 404 or 410 without a JSON reason (FCM's and Mozilla's push services answer so) means
#: the subscription is gone: the result carries this reason, classified as drop-the-token.
SUBSCRIPTION_GONE = "SubscriptionGone"


class _WebPushEngine:
    """The engine as the dispatcher sees it, with Web Push submission."""

    def __init__(self, engine: _core.Engine, sender: _core.WebPushSender) -> None:
        self._engine = engine
        self._sender = sender

    def submit(self, pool: int, first_id: int, items: list[Any]) -> None:
        self._sender.submit(first_id, items)

    def submit_tokens(self, pool: int, first_id: int, template: Any, tokens: list[Any]) -> None:
        self._sender.submit_to(first_id, template, tokens)

    def validate(self, items: list[Any]) -> None:
        self._sender.validate(items)

    def validate_tokens(self, template: Any, tokens: list[Any]) -> None:
        self._sender.validate_to(template, tokens)

    def drain(self, max: int = 2**63 - 1) -> list[OutcomeRecord]:
        batch = self._engine.drain(max)
        # Only failures are touched; delivered outcomes pass as they are.
        return [
            replace_fields(record, reason=SUBSCRIPTION_GONE)
            if record[STATUS] in (404, 410) and record[REASON] is None
            else record
            for record in batch
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


#: What :meth:`WebPushClient.send` takes: a :class:`WebPushNotification`, or the plain
#: ``(subscription, message)`` tuple it is.
WebPushNotificationLike = Union[
    WebPushNotification,
    tuple[WebPushSubscription, WebPushMessage],
    tuple[WebPushSubscription, WebPushMessage, None],
]


class WebPushClient(PushClient[WebPushNotificationLike, WebPushMessage, WebPushSubscription]):
    """Sends Web Push messages to browser subscriptions (Chrome, Firefox, Edge, Safari).

    ``vapid_key``: a :class:`VapidKey`, a PEM file path or text, or a base64url private key;
    ``subject``: a ``mailto:`` or ``https:`` contact for the push services (RFC 8292).
    Results are the same :class:`Result` as APNs and FCM: ``token`` is the endpoint URL;
    201 is ``delivered``; 404/410 drop the subscription; 413 fix the payload; 429 and 5xx are
    resent after ``Retry-After`` (``retry`` policy).
    """

    PROVIDER: ClassVar[str] = "webpush"
    AUTH_RETRY: ClassVar[AuthRetry] = frozenset({(403, "ExpiredJwtToken")})

    def __init__(
        self,
        vapid_key: VapidKey | str | bytes | os.PathLike[str],
        *,
        subject: str,
        ca_file: PathLike | None = None,
        request_timeout: float = 10.0,
        max_connections: int = 2,
        max_in_flight: int = 10_000,
        worker_threads: int = 1,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rate_limit: int | None = None,
        **pool_options: Unpack[PoolOptionArgs],
    ) -> None:
        options = PoolOptions.from_keywords(
            {"request_timeout": request_timeout, "max_connections": max_connections, **pool_options}
        )
        key = vapid_key if isinstance(vapid_key, VapidKey) else VapidKey.load(vapid_key)
        self._signer = VapidSigner(key, subject)
        # The shared machinery without a pool: each push service gets one when first seen.
        super().__init__(
            None,
            identity="webpush",
            ca_file=ca_file,
            options=options,
            max_in_flight=max_in_flight,
            worker_threads=worker_threads,
            retry=retry,
            rate_limit=rate_limit,
        )
        engine = self._engine
        self._core_engine = engine
        self._sender = _core.WebPushSender(engine, self._new_pool)
        # The dispatcher submits through the sender (encryption per subscription).
        self._engine = _WebPushEngine(engine, self._sender)  # type: ignore[assignment]

    @property
    def vapid_public_key(self) -> str:
        """The ``applicationServerKey`` browsers must subscribe with."""
        return self._signer.key.public_key

    def _new_pool(self, origin: str) -> int:
        """Called by the engine side the first time a push service is seen."""
        pool: int = self._core_engine.add_pool(
            origin,
            self.pool_options,
            ca_file=self._ca_file,
            identity=f"webpush:{origin}",
            # Push services may speak only HTTP/1.1 (Apple: "HTTP/2 via ALPN, HTTP/1.1
            # otherwise"); such connections carry one request at a time.
            allow_http1=True,
        )
        self._core_engine.set_authorization(pool, self._signer.authorization(origin))
        return pool

    def pools(self) -> dict[str, int]:
        """Push-service origin -> engine pool, for every service used so far."""
        return dict(self._sender.pools())

    def _before_submit(self) -> None:
        # Re-mint a VAPID JWT per push service when it nears expiry (one check per origin).
        for origin, pool in self._sender.pools():
            if self._signer.due(origin):
                self._core_engine.set_authorization(pool, self._signer.authorization(origin))

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        pools = dict(self._sender.pools())
        for origin in {_core.webpush_split_endpoint(record[TOKEN])[0] for record in rejected}:
            if origin in pools:
                header = self._signer.authorization(origin, force=True)
                self._core_engine.set_authorization(pools[origin], header)
        return None

    def _auth_refreshes(self) -> int:
        return self._signer.mints

    async def send_to_subscriptions(
        self, message: WebPushMessage, subscriptions: Sequence[WebPushSubscription]
    ) -> Results:
        """Send one message to many subscriptions (each encrypted for its own keys):
        :meth:`send_to_tokens` under its Web Push name."""
        return await self.send_to_tokens(message, subscriptions)

    def stats(self) -> dict[str, int]:
        """Engine counters summed over the push services' pools."""
        total: dict[str, int] = {}
        for _, pool in self._sender.pools():
            for name, value in self._core_engine.stats(pool).items():
                total[name] = total.get(name, 0) + value
        return total

    def metrics(self) -> dict[str, Any]:
        """As for APNs and FCM, summed over the push services' pools."""
        snapshot: dict[str, Any] = {}
        for _, pool in self._sender.pools():
            merged = {**self._core_engine.metrics(pool), **self._core_engine.stats(pool)}
            for name, value in merged.items():
                if name == "latency_bounds":
                    snapshot[name] = value
                elif isinstance(value, list):
                    old = snapshot.get(name) or [0] * len(value)
                    snapshot[name] = [a + b for a, b in zip(old, value, strict=True)]
                else:
                    snapshot[name] = snapshot.get(name, 0) + value
        snapshot["auth_refreshes"] = self._auth_refreshes()
        return snapshot

    def __repr__(self) -> str:
        return f"WebPushClient(subject={self._signer.subject!r}, services={len(self.pools())})"


__all__ = ["WebPushClient", "WebPushNotification", "WebPushNotificationLike"]
