"""Live Activity state in the store: push-to-start tokens, update tokens, broadcast channels.

* A **push-to-start token** belongs to one endpoint (the app on one device) and one activity
  type (ActivityKit ``pushToStartTokenUpdates``); a new one for the same pair replaces it.
* An **update token** belongs to one running activity (``pushTokenUpdates``; it can change:
  the new one retires the old). Ending the activity retires its tokens.
* A **channel** serves one event (a match, a delivery) and has a lifecycle: ``open`` →
  ``ended`` (its end event was broadcast) → ``deleted`` (deleted at APNs).

Apply send results with :meth:`LiveActivities.apply_update_results` and
:meth:`~LiveActivities.apply_push_to_start_results`: a 410 disables that one token (unless it
was registered again after the 410's timestamp), never the endpoint or the other kind.

Schema: step 4 of :mod:`pushwire.store.schema` (tables ``live_activity_tokens`` and
``live_activity_channels``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import StoreInputError

if TYPE_CHECKING:
    from .backend import Connection
    from .store import Store

PUSH_TO_START = "push_to_start"
UPDATE = "update"
CHANNEL_STATES = ("open", "ended", "deleted")
#: APNs reasons that mean "this token is gone" (410).
_GONE = frozenset({"Unregistered", "ExpiredToken"})


@dataclass(frozen=True)
class Channel:
    channel_id: str
    application: str
    event: str
    storage_policy: int
    state: str
    created_at: int
    ended_at: int | None
    deleted_at: int | None


def _check_input(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise StoreInputError(
            f"{field} must be a non-empty string (at most 1024 characters)", field=field
        )
    return value


class LiveActivities:
    """Live Activity tokens and channels of a :class:`Store` (same database, same clock)."""

    def __init__(self, store: Store) -> None:
        self._db = store.database
        self._clock = store._clock

    # -- push-to-start tokens -----------------------------------------------------------------

    def put_push_to_start_token(
        self, application: str, endpoint_token: str, activity_type: str, token: str
    ) -> None:
        """Record the push-to-start token of (endpoint, activity type); it replaces the
        previous one of that pair."""
        args = [
            _check_input(application, "application"),
            _check_input(endpoint_token, "endpoint_token"),
            _check_input(activity_type, "activity_type"),
            _check_input(token, "token"),
        ]
        self._put(PUSH_TO_START, *args, activity_id=None)

    def push_to_start_tokens(
        self, application: str, activity_type: str, endpoint_tokens: Iterable[str] | None = None
    ) -> dict[str, str]:
        """Enabled push-to-start tokens for ``activity_type``: endpoint token -> token,
        limited to ``endpoint_tokens`` (a segment) when given."""
        rows = self._db.read(
            lambda c: c.query(
                "SELECT endpoint_token, token FROM live_activity_tokens WHERE application = ? "
                "AND kind = ? AND activity_type = ? AND enabled ORDER BY id",
                (application, PUSH_TO_START, activity_type),
            )
        )
        tokens = {row[0]: row[1] for row in rows}
        if endpoint_tokens is not None:
            wanted = set(endpoint_tokens)
            tokens = {e: t for e, t in tokens.items() if e in wanted}
        return tokens

    # -- update tokens ------------------------------------------------------------------------

    def put_update_token(
        self,
        application: str,
        endpoint_token: str,
        activity_type: str,
        activity_id: str,
        token: str,
    ) -> None:
        """Record the update token of a running activity; a previous token of the same
        activity is retired (ActivityKit can rotate it)."""
        args = [
            _check_input(application, "application"),
            _check_input(endpoint_token, "endpoint_token"),
            _check_input(activity_type, "activity_type"),
            _check_input(token, "token"),
        ]
        self._put(UPDATE, *args, activity_id=_check_input(activity_id, "activity_id"))

    def update_tokens(self, application: str, activity_id: str) -> list[str]:
        """Enabled update tokens of a running activity."""
        rows = self._db.read(
            lambda c: c.query(
                "SELECT token FROM live_activity_tokens WHERE application = ? AND kind = ? "
                "AND activity_id = ? AND enabled ORDER BY id",
                (application, UPDATE, activity_id),
            )
        )
        return [row[0] for row in rows]

    def end_activity(self, application: str, activity_id: str) -> int:
        """The activity ended: its update tokens are retired. Returns how many."""
        now = self._clock()
        return self._db.write(
            lambda c: self._disable(
                c,
                "application = ? AND kind = ? AND activity_id = ? AND enabled",
                (application, UPDATE, activity_id),
                now,
                "activity ended",
            )
        )

    def apply_update_results(self, application: str, results: Iterable[Any]) -> int:
        """Disable the update tokens APNs answered 410 for; see :meth:`apply_results`."""
        return self.apply_results(application, UPDATE, results)

    def apply_push_to_start_results(self, application: str, results: Iterable[Any]) -> int:
        """Disable the push-to-start tokens APNs answered 410 for; see :meth:`apply_results`."""
        return self.apply_results(application, PUSH_TO_START, results)

    def apply_results(self, application: str, kind: str, results: Iterable[Any]) -> int:
        """Disable the ``kind`` tokens APNs answered 410 for (``Unregistered``,
        ``ExpiredToken``); nothing else changes. As for endpoints, a token registered again
        after the 410's timestamp is kept: APNs saw the old registration go, not this one.
        Returns how many were disabled."""
        if kind not in (PUSH_TO_START, UPDATE):
            raise ValueError(f"kind must be {PUSH_TO_START!r} or {UPDATE!r}, not {kind!r}")
        gone = [(r.token, r.timestamp_ms) for r in results if r.status == 410 and r.reason in _GONE]
        if not gone:
            return 0
        now = self._clock()

        def work(c: Connection) -> int:
            total = 0
            for token, gone_at in gone:
                where = "application = ? AND kind = ? AND token = ? AND enabled"
                params: tuple[Any, ...] = (application, kind, token)
                if gone_at is not None:
                    where += " AND updated_at < ?"
                    params = (*params, gone_at)
                total += self._disable(c, where, params, now, "410 from APNs")
            return total

        return self._db.write(work)

    def _put(
        self,
        kind: str,
        application: str,
        endpoint_token: str,
        activity_type: str,
        token: str,
        *,
        activity_id: str | None,
    ) -> None:
        now = self._clock()

        def work(c: Connection) -> None:
            # The pair's (or activity's) previous token is retired, unless it is this one.
            if kind == PUSH_TO_START:
                where = "application = ? AND kind = ? AND endpoint_token = ? AND activity_type = ?"
                params: tuple[Any, ...] = (application, kind, endpoint_token, activity_type)
            else:
                where = "application = ? AND kind = ? AND activity_id = ?"
                params = (application, kind, activity_id)
            self._disable(
                c, where + " AND token <> ? AND enabled", (*params, token), now, "replaced"
            )
            existing = c.query(
                "SELECT id FROM live_activity_tokens WHERE application = ? AND kind = ? "
                "AND token = ?",
                (application, kind, token),
            )
            if existing:
                c.execute(
                    "UPDATE live_activity_tokens SET endpoint_token = ?, activity_type = ?, "
                    "activity_id = ?, enabled = ?, updated_at = ?, disabled_at = NULL, "
                    "disabled_reason = NULL WHERE id = ?",
                    (endpoint_token, activity_type, activity_id, True, now, existing[0][0]),
                )
            else:
                c.execute(
                    "INSERT INTO live_activity_tokens (application, endpoint_token, kind, "
                    "activity_type, activity_id, token, enabled, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        application,
                        endpoint_token,
                        kind,
                        activity_type,
                        activity_id,
                        token,
                        True,
                        now,
                        now,
                    ),
                )

        self._db.write(work)

    @staticmethod
    def _disable(c: Connection, where: str, params: tuple[Any, ...], now: int, reason: str) -> int:
        count = c.query(f"SELECT COUNT(*) FROM live_activity_tokens WHERE {where}", params)
        c.execute(
            "UPDATE live_activity_tokens SET enabled = ?, disabled_at = ?, disabled_reason = ?, "
            f"updated_at = ? WHERE {where}",
            (False, now, reason, now, *params),
        )
        return int(count[0][0])

    # -- channels -----------------------------------------------------------------------------

    def add_channel(
        self, application: str, event: str, channel_id: str, storage_policy: int
    ) -> Channel:
        """Record a channel APNs created for ``event``."""
        _check_input(application, "application")
        _check_input(event, "event")
        _check_input(channel_id, "channel_id")
        if storage_policy not in (0, 1) or isinstance(storage_policy, bool):
            raise StoreInputError("storage_policy must be 0 or 1", field="storage_policy")
        now = self._clock()
        self._db.write(
            lambda c: c.execute(
                "INSERT INTO live_activity_channels (channel_id, application, event, "
                "storage_policy, state, created_at) VALUES (?, ?, ?, ?, 'open', ?)",
                (channel_id, application, event, storage_policy, now),
            )
        )
        return self.channel(channel_id)

    def channel(self, channel_id: str) -> Channel:
        rows = self._db.read(
            lambda c: c.query(
                "SELECT channel_id, application, event, storage_policy, state, created_at, "
                "ended_at, deleted_at FROM live_activity_channels WHERE channel_id = ?",
                (channel_id,),
            )
        )
        if not rows:
            raise StoreInputError(f"no channel {channel_id!r} in the store", field="channel_id")
        return Channel(*rows[0])

    def channels(
        self, application: str, *, event: str | None = None, state: str | None = None
    ) -> list[Channel]:
        """Channels of ``application``, optionally of one event and/or in one state."""
        sql = (
            "SELECT channel_id, application, event, storage_policy, state, created_at, "
            "ended_at, deleted_at FROM live_activity_channels WHERE application = ?"
        )
        params: list[Any] = [application]
        if event is not None:
            sql += " AND event = ?"
            params.append(event)
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        rows = self._db.read(lambda c: c.query(sql + " ORDER BY created_at, channel_id", params))
        return [Channel(*row) for row in rows]

    def end_channel(self, channel_id: str) -> Channel:
        """The event's end was broadcast: the channel takes no more updates."""
        return self._move(channel_id, "ended", "ended_at", ("open",))

    def channel_deleted(self, channel_id: str) -> Channel:
        """APNs deleted the channel (``delete_channel`` answered 204)."""
        return self._move(channel_id, "deleted", "deleted_at", ("open", "ended"))

    def _move(self, channel_id: str, state: str, column: str, sources: tuple[str, ...]) -> Channel:
        current = self.channel(channel_id)
        if current.state not in sources:
            raise StoreInputError(
                f"channel {channel_id!r} is {current.state}; expected {' or '.join(sources)}",
                field="channel_id",
            )
        now = self._clock()
        self._db.write(
            lambda c: c.execute(
                f"UPDATE live_activity_channels SET state = ?, {column} = ? WHERE channel_id = ?",
                (state, now, channel_id),
            )
        )
        return self.channel(channel_id)
