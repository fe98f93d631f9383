"""Credentials shared by every worker through Redis: one APNs JWT per (team, key), one FCM
access token per service account.

Fifty workers starting at once must not mint fifty JWTs (APNs answers
``TooManyProviderTokenUpdates`` when a key's token changes too often) nor fetch fifty OAuth2
tokens. Each shared credential is a Redis key holding ``{token, stamp}`` (JWT: issued at;
access token: expires at) and a lease key. A worker reads the shared value; if it is missing
or due for renewal, it takes the lease (``SET lease owner NX PX``), reads again (another
worker may just have published), and only then mints or fetches, publishes the value with a
TTL inside its validity, and releases the lease. Workers that did not get the lease poll the
value until it appears. The lease expires by itself if its holder dies.

The shared values are bearer credentials: whoever can read this Redis can send as you for up
to an hour. Keep Redis private (it is, for the job queue itself, anyway).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._apns import APNsClient
from .._fcm import REFRESH_MARGIN, FCMClient
from .._oauth import ServiceAccountCredentials
from .._record import AUTH_GENERATION, REASON, OutcomeRecord
from ..credentials import MAX_ROTATION, MIN_ROTATION, TokenCredentials
from .errors import SharedAuthError
from .keys import auth_key

log = logging.getLogger("pushwire.jobs")

#: A shared JWT is renewed when it is this old (APNs: 20 to 60 minutes; local rotation of an
#: unshared key happens at 50, so shared renewal always comes first).
JWT_RENEW_AFTER = 40 * 60
#: Lease on minting / fetching: long enough for one grant round trip.
DEFAULT_LEASE = 15.0
#: How long a worker waits for another to publish a value.
DEFAULT_WAIT = 30.0

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class SharedValue(msgspec.Struct, frozen=True):
    token: str
    stamp: float


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SharedValue).decode


def fingerprint(token: str) -> str:
    """What may be logged or compared about a token: a short hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class SharedAuth:
    """Obtains credentials through Redis for one worker (``owner`` = its consumer name)."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        owner: str,
        *,
        lease: float = DEFAULT_LEASE,
        wait: float = DEFAULT_WAIT,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._owner = owner
        self._lease_ms = int(lease * 1000)
        self._wait = wait
        self._release = redis.register_script(_RELEASE)
        #: Values this worker minted / fetched itself (the rest it adopted).
        self.produced = 0

    async def obtain(
        self,
        kind: str,
        identity: str,
        *,
        fresh: Callable[[float], bool],
        produce: Callable[[], Awaitable[tuple[str, float]]],
        ttl: Callable[[float], float],
        refused: str | None = None,
    ) -> tuple[str, float]:
        """The shared (token, stamp) of ``identity``: published by another worker when
        ``fresh(stamp)``, else produced here under the lease. ``refused``: the fingerprint
        of a token the provider refused, not to be taken again. ``ttl(stamp)``: seconds
        the value may be served."""
        key = auth_key(self._prefix, kind, identity)
        lease = key + ":lease"
        deadline = time.monotonic() + self._wait

        def usable(raw: bytes | None) -> SharedValue | None:
            if raw is None:
                return None
            try:
                value = _decode(raw)
            except msgspec.DecodeError:
                return None
            if not fresh(value.stamp) or fingerprint(value.token) == refused:
                return None
            return value

        while True:
            value = usable(await self._redis.get(key))
            if value is not None:
                return value.token, value.stamp
            if await self._redis.set(lease, self._owner, nx=True, px=self._lease_ms):
                try:
                    value = usable(await self._redis.get(key))
                    if value is not None:
                        return value.token, value.stamp
                    token, stamp = await produce()
                    self.produced += 1
                    seconds = ttl(stamp)
                    if seconds >= 1:
                        await self._redis.set(
                            key, _encode(SharedValue(token, stamp)), px=int(seconds * 1000)
                        )
                    log.info("%s credential %s: published %s", kind, identity, fingerprint(token))
                    return token, stamp
                finally:
                    await self._release(keys=[lease], args=[self._owner])
            if time.monotonic() >= deadline:
                raise SharedAuthError(
                    f"no shared {kind} credential for {identity} after {self._wait:.0f} s: the "
                    "worker holding the lease did not publish one"
                )
            await asyncio.sleep(0.03 + random.random() * 0.04)

    # -- APNs ------------------------------------------------------------------------------

    async def share_jwt(self, credentials: TokenCredentials, *, refused: str | None = None) -> None:
        """Make ``credentials`` use the JWT shared by every worker for its (team, key).
        ``refused``: the fingerprint of a JWT APNs called expired, replaced by one worker."""

        def fresh(issued_at: float) -> bool:
            age = time.time() - issued_at
            return -60.0 <= age < JWT_RENEW_AFTER

        async def mint() -> tuple[str, float]:
            header = credentials.authorization(force=True)
            return header.removeprefix("bearer "), credentials.issued_at

        def ttl(issued_at: float) -> float:
            # Served until it is almost too old for APNs (60 min), and never past that.
            return issued_at + MAX_ROTATION - 5 * 60 - time.time()

        # The key's public half is part of the identity: a JWT signed by another key that
        # claims the same ids (a replaced key file) is never taken.
        public = hashlib.sha256(credentials.public_key_pem().encode()).hexdigest()[:12]
        token, issued_at = await self.obtain(
            "jwt",
            f"{credentials.team_id}:{credentials.key_id}:{public}",
            fresh=fresh,
            produce=mint,
            ttl=ttl,
            refused=refused,
        )
        credentials.adopt(token, issued_at)

    async def keep_jwt_fresh(self, credentials: TokenCredentials, interval: float = 60.0) -> None:
        """Run forever: adopt the shared JWT every ``interval`` seconds (renewed by whichever
        worker finds it due). If Redis is unreachable meanwhile, the credentials rotate on
        their own (50 minutes, never within 20), as without sharing."""
        assert interval < MIN_ROTATION
        while True:
            await asyncio.sleep(interval)
            try:
                await self.share_jwt(credentials)
            except Exception as e:
                log.warning("could not refresh the shared APNs JWT: %s", e)


class SharedAPNsClient(APNsClient):
    """An :class:`pushwire.APNsClient` whose JWT is the one every worker shares for its
    (team, key). After ``ExpiredProviderToken`` one worker mints the replacement under the
    lease and the others adopt it: fifty workers told at once make one new JWT, not fifty
    (which APNs would answer with ``TooManyProviderTokenUpdates``)."""

    def __init__(
        self, credentials: TokenCredentials, *, shared: SharedAuth, **options: Any
    ) -> None:
        super().__init__(credentials, **options)
        self._shared = shared
        self._token_credentials = credentials
        self._renewing: asyncio.Task[None] | None = None
        #: JWT renewals this client asked for after ExpiredProviderToken.
        self.expired_renewals = 0

    def _fix_auth(self, rejected: list[OutcomeRecord]) -> Awaitable[None] | None:
        reasons = {record[REASON] for record in rejected}
        if "ExpiredProviderToken" not in reasons:
            return super()._fix_auth(rejected)
        if "UnrelatedKeyIdInToken" in reasons:
            self._engine.retire_connections(self._pool)
        if self._renewing is not None and not self._renewing.done():
            return self._renewing
        if all(record[AUTH_GENERATION] < self._auth_generation for record in rejected):
            return None  # they carried a JWT replaced since: resend with the current one
        refused = fingerprint((self._auth_sent or "").removeprefix("bearer "))
        self._renewing = asyncio.get_running_loop().create_task(self._renew(refused))
        return self._renewing

    async def _renew(self, refused: str) -> None:
        self.expired_renewals += 1
        credentials = self._token_credentials
        try:
            await self._shared.share_jwt(credentials, refused=refused)
        except Exception as e:
            # Redis is away: do what an unshared client does (never within 20 minutes).
            log.warning("could not renew the shared APNs JWT (%s): renewing it here", e)
            credentials.authorization(force=True)
        self._set_authorization(credentials.authorization())


class SharedFCMClient(FCMClient):
    """An :class:`pushwire.FCMClient` whose OAuth2 access token is shared through Redis:
    one grant per service account for all workers. After a 401 the refused token is not
    taken again: a new one is fetched (by one worker) and shared."""

    def __init__(
        self, service_account: ServiceAccountCredentials, *, shared: SharedAuth, **options: Any
    ) -> None:
        super().__init__(service_account, **options)
        self._shared = shared
        self._fingerprint: str | None = None
        #: OAuth2 grants this client made itself (the others were adopted).
        self.grants = 0

    async def _fetch_token(self) -> None:
        refused = self._fingerprint if self._expires_at == 0.0 else None

        def fresh(expires_at: float) -> bool:
            return expires_at - time.time() > REFRESH_MARGIN + 60.0

        def ttl(expires_at: float) -> float:
            return expires_at - time.time() - 30.0

        token, expires_at = await self._shared.obtain(
            "fcm",
            self._credentials.client_email,
            fresh=fresh,
            produce=self._grant_shared,
            ttl=ttl,
            refused=refused,
        )
        self._auth_generation = self._engine.set_authorization(self._pool, "Bearer " + token)
        self._expires_at = time.monotonic() + (expires_at - time.time())
        self._fingerprint = fingerprint(token)
        self.token_refreshes += 1

    async def _grant_shared(self) -> tuple[str, float]:
        """One grant of our own: (access token, expires at epoch) for the other workers."""
        token, valid_for = await self._grant()
        self.grants += 1
        return token, time.time() + valid_for
