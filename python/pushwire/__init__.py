"""pushwire: APNs and FCM push notifications at HTTP/2 speed, from Python.

Quick start::

    import pushwire

    creds = pushwire.TokenCredentials(
        "AuthKey_ABC123DEFG.p8", key_id="ABC123DEFG", team_id="DEF123GHIJ"
    )
    message = pushwire.Message({"aps": {"alert": "Hello"}}, topic="com.example.app")
    async with pushwire.APNsClient(creds, environment="sandbox") as client:
        results = await client.send_to_tokens(message, tokens)
"""

from __future__ import annotations

from . import _allocator, payload, store  # noqa: F401 (_allocator first: it sets up _core)
from ._apns import APNsClient
from ._broadcast import BroadcastClient, BroadcastMessage, channel_ids
from ._classify import (
    APNS_TABLE,
    DEFAULT_BACKOFF_SECONDS,
    FCM_TABLE,
    QUOTA_EXCEEDED_DELAY_SECONDS,
    TOO_MANY_REQUESTS_DELAY_SECONDS,
    Action,
    BadTokenBurstDetector,
    Classification,
    Reason,
    RegisteredAt,
    ResultLike,
    Summary,
    TokenToDrop,
    classify,
    parse_reason,
    should_drop_token,
    summarize,
    tokens_to_drop,
)
from ._core import __version__
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    CredentialsError,
    PayloadError,
    PushwireError,
    SendInterruptedError,
)
from ._fcm import FCMClient
from ._message import PUSH_TYPES, Message, Notification, new_apns_id
from ._oauth import ServiceAccountCredentials
from ._outcome import Outcome
from ._pool_options import PoolOptions
from ._report import BulkReport, MessageIds
from ._results import Result, Results
from ._retry import RetryPolicy
from ._sync import SyncAPNsClient, SyncFCMClient, SyncWebPushClient
from ._webpush import WebPushClient
from .credentials import CertificateCredentials, TokenCredentials
from .fcm import (
    AndroidConfig,
    AndroidNotification,
    ApnsConfig,
    FCMMessage,
    FCMNotification,
    WebpushConfig,
)
from .payload import Alert, Aps, LocalizedString, Sound
from .vapid import VapidKey
from .webpush import WebPushMessage, WebPushNotification, WebPushSubscription

__all__ = [
    "PUSH_TYPES",
    "APNsClient",
    "BroadcastClient",
    "BroadcastMessage",
    "channel_ids",
    "Action",
    "Alert",
    "Aps",
    "LocalizedString",
    "Sound",
    "payload",
    "store",
    "AndroidConfig",
    "AndroidNotification",
    "ApnsConfig",
    "FCMClient",
    "FCMMessage",
    "FCMNotification",
    "ServiceAccountCredentials",
    "SyncFCMClient",
    "WebpushConfig",
    "APNS_TABLE",
    "DEFAULT_BACKOFF_SECONDS",
    "FCM_TABLE",
    "QUOTA_EXCEEDED_DELAY_SECONDS",
    "TOO_MANY_REQUESTS_DELAY_SECONDS",
    "BadTokenBurstDetector",
    "Classification",
    "Reason",
    "RegisteredAt",
    "ResultLike",
    "Summary",
    "TokenToDrop",
    "classify",
    "parse_reason",
    "should_drop_token",
    "summarize",
    "tokens_to_drop",
    "BulkReport",
    "CertificateCredentials",
    "ClientClosedError",
    "ConfigurationError",
    "CredentialsError",
    "Message",
    "MessageIds",
    "Notification",
    "Outcome",
    "PayloadError",
    "PoolOptions",
    "PushwireError",
    "Result",
    "Results",
    "RetryPolicy",
    "SendInterruptedError",
    "SyncAPNsClient",
    "TokenCredentials",
    "VapidKey",
    "WebPushClient",
    "SyncWebPushClient",
    "WebPushMessage",
    "WebPushNotification",
    "WebPushSubscription",
    "__version__",
    "new_apns_id",
]
