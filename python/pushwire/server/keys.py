"""API keys: created with a high-entropy secret shown once, kept only as its SHA-256,
checked in constant time against the database on every request (revocation is immediate:
no verdict is cached; the server reads the keys of the requests that arrive together in one
query, :meth:`ApiKeys.verify_many`).

A key reads ``pw_<key id>_<secret>``: the key id is public (it finds the row and names the
key in listings), the secret is 32 random bytes. SHA-256 is the right hash here: the secret
has 256 bits of entropy, so a slow password hash would add nothing but latency.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..store import Store
from ..store.backend import Connection
from ..store.clock import optional_datetime, system_clock, to_datetime
from ..store.validation import check_name
from .errors import KeyInputError, UnknownKeyError

__all__ = ["ApiKey", "ApiKeys", "CreatedKey", "Scope"]

_KEY = re.compile(r"^pw_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
#: Rows parsed into ApiKey kept (a server sees a few keys; a bound all the same).
_PARSED_KEYS = 1024
_COLUMNS = (
    "k.id, k.key_id, k.name, k.scope, k.application, k.secret_hash, k.rate_limit, "
    "k.created_at, k.expires_at, k.revoked_at, p.revoked_at, p.scope, p.id"
)


class Scope(str, enum.Enum):
    #: Ships inside a mobile app (public): registers its own application's tokens only.
    APP = "app"
    #: A backend: sends and reads results, devices, KPIs and events.
    SENDER = "sender"
    #: Everything, including applications and keys.
    ADMIN = "admin"
    #: A console login: an admin key's short-lived child.
    SESSION = "session"


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never its secret."""

    key_id: str
    name: str
    scope: Scope
    #: App keys: the one application they act for.
    application: str | None
    #: Requests per second this key may make (None: the server's default).
    rate_limit: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    id: int = 0

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    #: The whole key, to give to its user now: it is not stored and cannot be shown again.
    secret: str

    def __repr__(self) -> str:
        return f"CreatedKey(key={self.key!r}, secret=<hidden>)"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_key_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def looks_like_key(text: str) -> bool:
    return bool(_KEY.match(text))


class ApiKeys:
    """The API keys of a store (the ``api_keys`` table, schema step 2)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.database
        self._parsed: dict[tuple[object, ...], ApiKey] = {}

    def create(
        self,
        name: str,
        scope: Scope | str,
        *,
        application: str | None = None,
        rate_limit: int | None = None,
        expires_at: int | None = None,
        parent: int | None = None,
    ) -> CreatedKey:
        """A new key; its secret is in the answer only. App keys need ``application``
        (which must exist); other scopes refuse one."""
        check_name(name, "name")
        try:
            scope = Scope(scope)
        except ValueError:
            raise KeyInputError(
                f"scope must be one of app, sender, admin, not {scope!r}", field="scope"
            ) from None
        if scope is Scope.APP and application is None:
            raise KeyInputError("an app key needs its application", field="application")
        if scope is not Scope.APP and application is not None:
            raise KeyInputError(
                f"a {scope.value} key is not tied to an application", field="application"
            )
        if rate_limit is not None and (
            not isinstance(rate_limit, int) or isinstance(rate_limit, bool) or rate_limit < 1
        ):
            raise KeyInputError("rate_limit must be a positive integer", field="rate_limit")
        if application is not None:
            self._store.application(application)  # UnknownApplicationError
        key_id = _new_key_id()
        secret = f"pw_{key_id}_{secrets.token_urlsafe(32)}"
        now = system_clock()

        def work(c: Connection) -> int:
            rows = c.query(
                "INSERT INTO api_keys (key_id, name, scope, application, secret_hash, "
                "parent_id, rate_limit, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    key_id,
                    name,
                    scope.value,
                    application,
                    _hash(secret),
                    parent,
                    rate_limit,
                    now,
                    expires_at,
                ),
            )
            row_id: int = rows[0][0]
            return row_id

        row_id = self._db.write(work)
        key = ApiKey(
            key_id=key_id,
            name=name,
            scope=scope,
            application=application,
            rate_limit=rate_limit,
            created_at=to_datetime(now),
            expires_at=optional_datetime(expires_at),
            revoked_at=None,
            id=row_id,
        )
        return CreatedKey(key, secret)

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Keys (not sessions), oldest first."""
        where = "WHERE k.scope <> 'session'"
        if not include_revoked:
            where += " AND k.revoked_at IS NULL"
        rows = self._db.read(
            lambda c: c.query(
                f"SELECT {_COLUMNS} FROM api_keys k LEFT JOIN api_keys p ON p.id = k.parent_id "
                f"{where} ORDER BY k.id"
            )
        )
        return [self._key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        rows = self._db.read(
            lambda c: c.query(
                f"SELECT {_COLUMNS} FROM api_keys k LEFT JOIN api_keys p ON p.id = k.parent_id "
                "WHERE k.key_id = ?",
                (key_id,),
            )
        )
        if not rows:
            raise UnknownKeyError(f"no API key {key_id!r}", field="key_id")
        return self._key(rows[0])

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (and the console sessions opened with it), at once."""
        now = system_clock()

        def work(c: Connection) -> int:
            rows = c.query("SELECT id FROM api_keys WHERE key_id = ?", (key_id,))
            if not rows:
                raise UnknownKeyError(f"no API key {key_id!r}", field="key_id")
            c.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE (id = ? OR parent_id = ?) AND revoked_at IS NULL",
                (now, rows[0][0], rows[0][0]),
            )
            row_id: int = rows[0][0]
            return row_id

        self._db.write(work)
        return self.get(key_id)

    def verify(self, presented: str) -> ApiKey | None:
        """The active key ``presented`` is, or None (unknown, wrong secret, revoked, expired,
        or a session whose admin key was revoked). One indexed read; the hashes are compared
        in constant time."""
        return self.verify_many([presented])[0]

    def verify_many(self, presented: Sequence[str]) -> builtins.list[ApiKey | None]:
        """:meth:`verify` for each of ``presented``, with one read for them all (the keys of
        the requests a server receives together: mostly the same few keys)."""
        ids = {m.group(1) for m in map(_KEY.match, presented) if m is not None}
        if not ids:
            return [None] * len(presented)
        marks = ", ".join("?" * len(ids))
        rows = self._db.read(
            lambda c: c.query(
                f"SELECT {_COLUMNS} FROM api_keys k LEFT JOIN api_keys p ON p.id = k.parent_id "
                f"WHERE k.key_id IN ({marks})",
                tuple(ids),
            )
        )
        by_id = {row[1]: row for row in rows}
        now = system_clock()
        return [self._active(by_id, text, now) for text in presented]

    def _active(
        self, rows: dict[object, tuple[object, ...]], presented: str, now: int
    ) -> ApiKey | None:
        match = _KEY.match(presented)
        row = rows.get(match.group(1)) if match is not None else None
        if row is None:
            return None
        if not hmac.compare_digest(str(row[5]), _hash(presented)):
            return None
        if row[9] is not None or row[10] is not None:  # revoked, or its admin key is
            return None
        if row[8] is not None and row[8] <= now:  # type: ignore[operator]
            return None
        return self._key_of(row)

    def _key_of(self, row: tuple[object, ...]) -> ApiKey:
        """The key a row describes, built once per distinct row (a key's row changes only
        when it is revoked, and then it is refused before this)."""
        key = self._parsed.get(row)
        if key is None:
            if len(self._parsed) >= _PARSED_KEYS:
                self._parsed.clear()
            key = self._parsed[row] = self._key(row)
        return key

    @staticmethod
    def _key(row: tuple[object, ...]) -> ApiKey:
        row_id, key_id, name, scope, application, _, rate_limit, created, expires, revoked = row[
            :10
        ]
        return ApiKey(
            key_id=str(key_id),
            name=str(name),
            scope=Scope(scope),
            application=application if isinstance(application, str) else None,
            rate_limit=rate_limit if isinstance(rate_limit, int) else None,
            created_at=to_datetime(int(created)),  # type: ignore[call-overload]
            expires_at=optional_datetime(expires),  # type: ignore[arg-type]
            revoked_at=optional_datetime(revoked),  # type: ignore[arg-type]
            id=int(row_id),  # type: ignore[call-overload]
        )
