"""The change log: every change to an endpoint is a row in ``endpoint_events``, written in the
same transaction as the change itself, and handed to subscribers once that transaction has
committed (so a subscriber never sees a change that was rolled back).

Subscribers are called in the process that made the change, on its thread, in order; one that
raises is logged and does not undo anything. Other processes read the log with
:meth:`EventLog.query` (``after_id`` makes polling cheap).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .backend import Connection, Database
from .clock import to_datetime, to_ms
from .errors import StoreInputError
from .model import EndpointEvent, EventKind

log = logging.getLogger("pushwire.store")

Subscriber = Callable[[EndpointEvent], None]

_INSERT_COLUMNS = (
    ("at", "bigint"),
    ("kind", "text"),
    ("application", "text"),
    ("token", "text"),
    ("endpoint_id", "bigint"),
    ("user_id", "text"),
    ("cause", "text"),
    ("details", "jsonb"),
)
_COLUMNS = "id, at, kind, application, token, endpoint_id, user_id, cause, details"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be written."""

    at: int
    kind: EventKind
    application: str | None
    token: str | None
    endpoint_id: int | None
    user_id: str | None
    cause: str
    details: dict[str, Any] = field(default_factory=dict)


class EventLog:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` after each committed change; returns the unsubscribe
        function."""
        if not callable(callback):
            raise StoreInputError("the subscriber must be callable", field="callback")
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def record(self, connection: Connection, events: Sequence[NewEvent]) -> list[EndpointEvent]:
        """Write ``events`` in the caller's transaction; the stored events (with their ids)
        when someone will be told about them, else an empty list (no objects for nobody)."""
        if not events:
            return []
        rows = [
            (
                e.at,
                e.kind.value,
                e.application,
                e.token,
                e.endpoint_id,
                e.user_id,
                e.cause,
                e.details,
            )
            for e in events
        ]
        if not self._subscribers:
            self._db.insert_many(connection, "endpoint_events", _INSERT_COLUMNS, rows)
            return []
        returned = self._db.insert_many(
            connection, "endpoint_events", _INSERT_COLUMNS, rows, "RETURNING id"
        )
        # Ids are generated in insertion order: sorted, they follow the input.
        ids = sorted(row[0] for row in returned)
        return [
            EndpointEvent(
                id=event_id,
                at=to_datetime(e.at),
                kind=e.kind,
                application=e.application,
                token=e.token,
                endpoint_id=e.endpoint_id,
                user_id=e.user_id,
                cause=e.cause,
                details=e.details,
            )
            for event_id, e in zip(ids, events, strict=True)
        ]

    def publish(self, events: Iterable[EndpointEvent]) -> None:
        """Tell the subscribers, after the commit."""
        with self._lock:
            subscribers = list(self._subscribers)
        for event in events:
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("endpoint event subscriber %r failed on %s", callback, event)

    def query(
        self,
        *,
        application: str | None = None,
        token: str | None = None,
        user_id: str | None = None,
        kinds: Iterable[EventKind | str] | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[EndpointEvent]:
        """Events in the order they were recorded, oldest first."""
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (("application", application), ("token", token)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if user_id is not None:
            conditions.append("user_id = ?")
            params.append(user_id)
        if kinds is not None:
            kind_values = [_event_kind(k).value for k in kinds]
            if not kind_values:
                return []
            condition, condition_params = self._db.in_condition("kind", kind_values)
            conditions.append(condition)
            params.extend(condition_params)
        if since is not None:
            conditions.append("at >= ?")
            params.append(to_ms(since, "since"))
        if after_id is not None:
            conditions.append("id > ?")
            params.append(after_id)
        if not isinstance(limit, int) or limit < 1:
            raise StoreInputError("limit must be a positive integer", field="limit")
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        sql = f"SELECT {_COLUMNS} FROM endpoint_events {where}ORDER BY id LIMIT ?"
        params.append(limit)
        rows = self._db.read(lambda c: c.query(sql, params))
        return [self._event(row) for row in rows]

    def _event(self, row: tuple[Any, ...]) -> EndpointEvent:
        event_id, at, kind, application, token, endpoint_id, user_id, cause, details = row
        return EndpointEvent(
            id=event_id,
            at=to_datetime(at),
            kind=EventKind(kind),
            application=application,
            token=token,
            endpoint_id=endpoint_id,
            user_id=user_id,
            cause=cause,
            details=self._db.json_value(details),
        )


def _event_kind(kind: EventKind | str) -> EventKind:
    try:
        return EventKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise StoreInputError(
            f"unknown event kind {kind!r} (known: {known})", field="kinds"
        ) from None
