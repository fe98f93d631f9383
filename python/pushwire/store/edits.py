"""Explicit changes to one endpoint: user, data, attributes, disable, delete. Each locks the
row, changes it and records its event in one transaction."""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any, Union

from .backend import Connection, Database
from .endpoints import endpoint_from_state, event_for, lock_states, write_state
from .errors import UnknownEndpointError
from .events import EventLog, NewEvent
from .model import Application, AttributeValue, Endpoint, EndpointEvent, EventKind
from .rules import Change, EndpointState, disable


class Keep(enum.Enum):
    """Leave the field as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


def locked_state(
    connection: Connection, database: Database, application: Application, token: str
) -> EndpointState:
    states = lock_states(connection, database, application.id, [token])
    if token not in states:
        raise UnknownEndpointError(
            f"no endpoint for token {token[:80]!r} in application {application.name!r}",
            field="token",
        )
    return states[token]


def update_endpoint(
    connection: Connection,
    database: Database,
    events: EventLog,
    application: Application,
    token: str,
    *,
    user_id: Union[str, Keep, None],
    data: dict[str, Any] | None,
    attributes: dict[str, AttributeValue] | None,
    merge_attributes: bool,
    now: int,
    cause: str,
) -> tuple[Endpoint, list[EndpointEvent]]:
    state = locked_state(connection, database, application, token)
    details: dict[str, Any] = {}
    new = state
    if not isinstance(user_id, Keep) and user_id != state.user_id:
        details["user_id"] = {"from": state.user_id, "to": user_id}
        new = replace(new, user_id=user_id)
    if data is not None and data != state.data:
        details["data"] = True
        new = replace(new, data=data)
    if attributes is not None:
        merged = {**state.attributes, **attributes} if merge_attributes else attributes
        if merged != state.attributes:
            details["attributes"] = True
            new = replace(new, attributes=merged)
    published: list[EndpointEvent] = []
    if details:
        new = replace(new, updated_at=now)
        write_state(connection, database, [new])
        change = Change(EventKind.UPDATED, details)
        published = events.record(
            connection, [event_for(change, application.name, new, now, cause)]
        )
    return endpoint_from_state(application.name, application.provider, new), published


def disable_endpoint(
    connection: Connection,
    database: Database,
    events: EventLog,
    application: Application,
    token: str,
    *,
    reason: str,
    now: int,
    cause: str,
) -> tuple[Endpoint, list[EndpointEvent]]:
    state = locked_state(connection, database, application, token)
    new, change = disable(state, reason, now)
    published: list[EndpointEvent] = []
    if new is not state:
        write_state(connection, database, [new])
    if change is not None:
        published = events.record(
            connection, [event_for(change, application.name, new, now, cause)]
        )
    return endpoint_from_state(application.name, application.provider, new), published


def delete_endpoint(
    connection: Connection,
    database: Database,
    events: EventLog,
    application: Application,
    token: str,
    *,
    now: int,
    cause: str,
) -> list[EndpointEvent]:
    state = locked_state(connection, database, application, token)
    connection.execute("DELETE FROM endpoints WHERE id = ?", (state.id,))
    event = NewEvent(
        at=now,
        kind=EventKind.DELETED,
        application=application.name,
        token=state.token,
        endpoint_id=state.id,
        user_id=state.user_id,
        cause=cause,
        details={"enabled": state.enabled, "disabled_reason": state.disabled_reason},
    )
    return events.record(connection, [event])
