"""BroadcastClient: Live Activity broadcast channels (iOS 18) on top of APNsClient.

One client, one credential and one JWT, two origins on the same engine:

* the APNs host (``api.push.apple.com``) carries device pushes (push-to-start, update tokens)
  and broadcasts, ``POST /4/broadcasts/apps/<bundle>`` with ``apns-channel-id``;
* the channel-management host (``api-manage-broadcast.push.apple.com:2196``, sandbox ``:2195``)
  is a second pool: ``POST/GET/DELETE /1/apps/<bundle>/channels``, ``GET .../all-channels``.

A broadcast is one request however many devices watch the channel; its result is an ordinary
:class:`Result` whose ``request_id`` and ``unique_id`` carry APNs' ids. A broadcast that got no
answer is never resent by the engine when it may have been processed (``maybe_delivered``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import msgspec

from . import _core
from ._apns import ENVIRONMENTS, APNsClient
from ._errors import ConfigurationError, PayloadError
from ._message import Message, Payload, _encode, _header_bytes
from ._pool_options import PoolOptions
from ._record import REASON, OutcomeRecord
from ._results import Result
from .credentials import CertificateCredentials, Credentials

MANAGEMENT_HOSTS = {
    "production": "https://api-manage-broadcast.push.apple.com:2196",
    "sandbox": "https://api-manage-broadcast.sandbox.push.apple.com:2195",
}
#: Broadcast payloads may be 5120 bytes (device pushes 4096).
MAX_BROADCAST_PAYLOAD = 5120
#: Response headers a broadcast or management call returns and results keep.
KEPT_HEADERS = ["apns-request-id", "apns-unique-id", "apns-channel-id"]
#: Events a broadcast may carry: a broadcast cannot start an activity (push-to-start does).
BROADCAST_EVENTS = frozenset({"update", "end"})
StoragePolicy = Literal[0, 1]

_decoder = msgspec.json.Decoder()


class BroadcastMessage:
    """An ``update`` or ``end`` event for a channel, validated and encoded once.

    ``expiration`` must be 0 on a channel with ``message-storage-policy`` 0 (nothing stored);
    on a policy-1 channel it is the UNIX time until which APNs keeps it (at most 8 h).
    """

    __slots__ = ("event", "expiration", "payload", "priority")

    def __init__(self, payload: Payload, *, priority: int = 10, expiration: int = 0) -> None:
        if isinstance(priority, bool) or priority not in (1, 5, 10):
            raise PayloadError(
                f"apns-priority {priority!r} is not allowed (1, 5 or 10)", field="apns-priority"
            )
        if not isinstance(expiration, int) or isinstance(expiration, bool) or expiration < 0:
            raise PayloadError(
                "apns-expiration must be a UNIX time in seconds (0 = not stored)",
                field="apns-expiration",
            )
        body = _encode(payload)
        if len(body) > MAX_BROADCAST_PAYLOAD:
            raise PayloadError(
                f"payload is {len(body)} bytes; a broadcast allows {MAX_BROADCAST_PAYLOAD}",
                field="payload",
            )
        self.event = _event_of(body)
        self.payload = body
        self.priority = priority
        self.expiration = expiration

    @classmethod
    def from_message(cls, message: Message) -> BroadcastMessage:
        """The body, priority and expiration of a ``payload.live_activity_update/end``."""
        if message.push_type != "liveactivity":
            raise PayloadError(
                f"a broadcast carries a liveactivity message, not {message.push_type!r}",
                field="apns-push-type",
            )
        return cls(
            message.payload,
            priority=message.priority if message.priority is not None else 10,
            expiration=message.expiration or 0,
        )

    def __repr__(self) -> str:
        return f"BroadcastMessage(event={self.event!r}, payload={len(self.payload)}B)"


def _event_of(body: bytes) -> str:
    try:
        aps = _decoder.decode(body).get("aps")
    except msgspec.DecodeError:
        raise PayloadError("payload is not valid JSON", field="payload") from None
    event = aps.get("event") if isinstance(aps, dict) else None
    if event not in BROADCAST_EVENTS:
        raise PayloadError(
            f"aps.event is {event!r}; a broadcast carries 'update' or 'end' only (start an "
            "activity with push-to-start and aps.input-push-channel)",
            field="aps.event",
        )
    return str(event)


def check_channel_id(channel_id: object) -> str:
    """The channel id as APNs returned it: non-empty standard base64."""
    if not isinstance(channel_id, str) or not channel_id:
        raise PayloadError("apns-channel-id is required", field="apns-channel-id")
    try:
        base64.b64decode(_header_bytes(channel_id, "apns-channel-id"), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(
            f"apns-channel-id {channel_id!r} is not base64; send the id exactly as APNs "
            "returned it",
            field="apns-channel-id",
        ) from None
    return channel_id


def check_bundle_id(bundle_id: object) -> str:
    if not isinstance(bundle_id, str) or not bundle_id:
        raise ConfigurationError("bundle_id is required (the app's bundle id)", field="bundle_id")
    if ".push-type." in bundle_id or "/" in bundle_id or bundle_id.endswith((".voip", ".voip-ptt")):
        raise ConfigurationError(
            f"bundle_id {bundle_id!r} must be the bare bundle id: broadcasts take no push-type "
            "suffix",
            field="bundle_id",
        )
    _header_bytes(bundle_id, "bundle_id")
    return bundle_id


class BroadcastClient(APNsClient):
    """An :class:`APNsClient` for one app that also manages broadcast channels and broadcasts.

    Device pushes (push-to-start with ``aps.input-push-channel``) go out as with any
    APNsClient; ``broadcast`` sends one update or end event to every activity on a channel.
    Results of every call are :class:`Result` objects: ``channel_id`` after
    :meth:`create_channel`, ``request_id`` and ``unique_id`` after :meth:`broadcast`.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        bundle_id: str,
        environment: str = "production",
        base_url: str | None = None,
        management_url: str | None = None,
        **options: Any,
    ) -> None:
        self.bundle_id = check_bundle_id(bundle_id)
        if management_url is None:
            if base_url is not None or environment not in ENVIRONMENTS:
                raise ConfigurationError(
                    "management_url is required with a custom base_url (channel management "
                    "has its own hosts, ports 2195/2196)",
                    field="management_url",
                )
            management_url = MANAGEMENT_HOSTS[environment]
        super().__init__(credentials, environment=environment, base_url=base_url, **options)
        self.management_url = management_url
        cert_pem, key_pem = (
            credentials.client_cert()
            if isinstance(credentials, CertificateCredentials)
            else (None, None)
        )
        self._manage_pool = self._engine.add_pool(
            management_url,
            PoolOptions(max_connections=1, request_timeout=self.request_timeout),
            ca_file=self._ca_file,
            client_cert_pem=cert_pem,
            client_key_pem=key_pem,
            identity=f"manage:{credentials.identity if credentials is not None else ''}",
        )
        self._broadcast_path = f"/4/broadcasts/apps/{self.bundle_id}"
        self._channels_path = f"/1/apps/{self.bundle_id}/channels"
        #: channel id -> message-storage-policy, for channels created or read by this client.
        self._policies: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"BroadcastClient(bundle_id={self.bundle_id!r}, base_url={self.base_url!r}, "
            f"credentials={self._credentials!r})"
        )

    # -- auth: the same JWT on both origins -------------------------------------------------

    def _set_authorization(self, value: str) -> None:
        if value is not self._auth_sent:
            self._engine.set_authorization(self._manage_pool, value)
        super()._set_authorization(value)

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Any:
        if "UnrelatedKeyIdInToken" in {record[REASON] for record in rejected}:
            self._engine.retire_connections(self._manage_pool)
        return super()._fix_auth(rejected)

    # -- channel management -----------------------------------------------------------------

    async def _manage(
        self,
        method: str,
        path: str,
        label: str,
        *,
        body: bytes = b"",
        channel_id: str | None = None,
    ) -> Result:
        headers = [] if channel_id is None else [("apns-channel-id", channel_id)]
        if body:
            headers.append(("content-type", "application/json"))
        template = _core.Template.fixed(
            path, headers, body, keep_body=True, method=method, keep_headers=KEPT_HEADERS
        )
        dispatcher = self._dispatch()
        self._before_submit()
        return await dispatcher.call(self._manage_pool, (label, template, None))

    async def create_channel(self, storage_policy: StoragePolicy = 0) -> Result:
        """Create a channel; ``result.channel_id`` is its id (201). ``storage_policy`` 0 stores
        no message (then every broadcast needs ``expiration=0``); 1 keeps the most recent one
        up to 8 h. The policy cannot change later. At most 10,000 channels per environment
        (``CannotCreateChannelConfig``)."""
        if isinstance(storage_policy, bool) or storage_policy not in (0, 1):
            raise PayloadError(
                f"message-storage-policy must be 0 or 1, got {storage_policy!r}",
                field="message-storage-policy",
            )
        body = msgspec.json.encode(
            {"message-storage-policy": storage_policy, "push-type": "LiveActivity"}
        )
        result = await self._manage("POST", self._channels_path, "create-channel", body=body)
        if result.delivered and result.channel_id:
            self._policies[result.channel_id] = storage_policy
        return result

    async def read_channel(self, channel_id: str) -> Result:
        """Read a channel: ``result.body`` is ``{"message-storage-policy", "push-type"}``."""
        channel_id = check_channel_id(channel_id)
        result = await self._manage(
            "GET", self._channels_path, "read-channel", channel_id=channel_id
        )
        if result.delivered and result.body:
            policy = _decoder.decode(result.body).get("message-storage-policy")
            if policy in (0, 1):
                self._policies[channel_id] = policy
        return result

    async def delete_channel(self, channel_id: str) -> Result:
        """Delete a channel (204). Messages already queued for it are not purged."""
        channel_id = check_channel_id(channel_id)
        result = await self._manage(
            "DELETE", self._channels_path, "delete-channel", channel_id=channel_id
        )
        if result.delivered:
            self._policies.pop(channel_id, None)
        return result

    async def list_channels(self) -> Result:
        """All channels of the app in this environment: ``result.body`` is
        ``{"channels": [...]}``; :func:`channel_ids` reads it."""
        return await self._manage("GET", f"/1/apps/{self.bundle_id}/all-channels", "list-channels")

    # -- broadcast --------------------------------------------------------------------------

    def broadcast_template(
        self,
        channel_id: str,
        message: BroadcastMessage | Message,
        *,
        storage_policy: StoragePolicy | None = None,
    ) -> _core.Template:
        """Every local check of a broadcast, then its request (used by :meth:`broadcast`)."""
        channel_id = check_channel_id(channel_id)
        if isinstance(message, Message):
            message = BroadcastMessage.from_message(message)
        elif not isinstance(message, BroadcastMessage):
            raise PayloadError(
                "message must be a BroadcastMessage or a payload.live_activity_update/end",
                field="message",
            )
        policy = self._policies.get(channel_id) if storage_policy is None else storage_policy
        if policy == 0 and message.expiration != 0:
            raise PayloadError(
                f"channel {channel_id} stores no message (message-storage-policy 0): "
                f"apns-expiration must be 0, not {message.expiration}",
                field="apns-expiration",
            )
        headers = [
            ("apns-channel-id", channel_id),
            ("apns-push-type", "liveactivity"),
            ("apns-topic", self.bundle_id),
            ("apns-priority", str(message.priority)),
            ("apns-expiration", str(message.expiration)),
        ]
        return _core.Template.fixed(
            self._broadcast_path, headers, message.payload, keep_headers=KEPT_HEADERS
        )

    async def broadcast(
        self,
        channel_id: str,
        message: BroadcastMessage | Message,
        *,
        storage_policy: StoragePolicy | None = None,
    ) -> Result:
        """Send one update or end event to every Live Activity subscribed to the channel: one
        request. ``storage_policy`` defaults to what this client saw when it created or read
        the channel; policy 0 with a non-zero expiration is refused before sending."""
        template = self.broadcast_template(channel_id, message, storage_policy=storage_policy)
        # The same path as send() (batching, 500/503 resend, auth resend); the item carries a
        # prebuilt Template rather than a Message, which the engine accepts as is.
        dispatcher = self._dispatch()
        ready = self._ready()
        if ready is not None:
            await ready
        return await dispatcher.send_one((channel_id, template, None))


def channel_ids(result: Result) -> list[str]:
    """The channel ids in a successful :meth:`BroadcastClient.list_channels` result."""
    if not result.delivered or not result.body:
        return []
    channels = _decoder.decode(result.body).get("channels", [])
    return [c for c in channels if isinstance(c, str)]
