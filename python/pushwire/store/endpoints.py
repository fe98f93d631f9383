"""Endpoint rows: registration, reads, explicit updates, disable and delete.

Every write locks the rows it changes in token order (``SELECT ... FOR UPDATE`` on
PostgreSQL, the write lock on SQLite), applies :mod:`.rules` in Python, writes the new state
and its events in the same transaction. Registrations insert missing rows first with
``INSERT ... ON CONFLICT DO NOTHING``, so two processes registering the same new token both
succeed and one of them creates it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .backend import Connection, Database
from .clock import optional_datetime, to_datetime
from .errors import StoreError
from .events import EventLog, NewEvent
from .model import Application, Endpoint, EndpointEvent, EventKind, Provider
from .rules import Change, CheckedRegistration, EndpointState, new_endpoint, register

#: Rows per statement: well under SQLite's 32,766 parameters and PostgreSQL's 65,535.
CHUNK = 500

STATE_COLUMNS = (
    "endpoints.id, endpoints.token, endpoints.user_id, endpoints.enabled, endpoints.data, "
    "endpoints.attributes, endpoints.created_at, endpoints.updated_at, "
    "endpoints.last_registered_at, endpoints.disabled_at, endpoints.disabled_reason, "
    "endpoints.invalid_since, endpoints.last_410_at, endpoints.web_p256dh, endpoints.web_auth"
)
ENDPOINT_COLUMNS = "applications.name, applications.provider, " + STATE_COLUMNS
ENDPOINTS_WITH_APPLICATION = (
    "endpoints JOIN applications ON applications.id = endpoints.application_id"
)

_INSERT_COLUMNS = (
    ("application_id", "bigint"),
    ("token", "text"),
    ("user_id", "text"),
    ("enabled", "boolean"),
    ("data", "jsonb"),
    ("attributes", "jsonb"),
    ("created_at", "bigint"),
    ("updated_at", "bigint"),
    ("last_registered_at", "bigint"),
    ("web_p256dh", "text"),
    ("web_auth", "text"),
)
_ALL_COLUMNS = (
    ("user_id", "text"),
    ("enabled", "boolean"),
    ("data", "jsonb"),
    ("attributes", "jsonb"),
    ("updated_at", "bigint"),
    ("last_registered_at", "bigint"),
    ("disabled_at", "bigint"),
    ("disabled_reason", "text"),
    ("invalid_since", "bigint"),
    ("last_410_at", "bigint"),
    ("web_p256dh", "text"),
    ("web_auth", "text"),
)
_STATUS_COLUMNS = (
    ("enabled", "boolean"),
    ("updated_at", "bigint"),
    ("disabled_at", "bigint"),
    ("disabled_reason", "text"),
    ("invalid_since", "bigint"),
    ("last_410_at", "bigint"),
)


def state_from_row(database: Database, row: Sequence[Any]) -> EndpointState:
    return EndpointState(
        id=row[0],
        token=row[1],
        user_id=row[2],
        enabled=bool(row[3]),
        data=database.json_value(row[4]),
        attributes=database.json_value(row[5]),
        created_at=row[6],
        updated_at=row[7],
        last_registered_at=row[8],
        disabled_at=row[9],
        disabled_reason=row[10],
        invalid_since=row[11],
        last_410_at=row[12],
        p256dh=row[13],
        auth=row[14],
    )


def endpoint_from_state(application: str, provider: Provider, state: EndpointState) -> Endpoint:
    return Endpoint(
        id=state.id,
        application=application,
        provider=provider,
        token=state.token,
        user_id=state.user_id,
        enabled=state.enabled,
        data=state.data,
        attributes=state.attributes,
        created_at=to_datetime(state.created_at),
        updated_at=to_datetime(state.updated_at),
        last_registered_at=to_datetime(state.last_registered_at),
        disabled_at=optional_datetime(state.disabled_at),
        disabled_reason=state.disabled_reason,
        invalid_since=optional_datetime(state.invalid_since),
        last_410_at=optional_datetime(state.last_410_at),
        p256dh=state.p256dh,
        auth=state.auth,
    )


def endpoint_from_row(database: Database, row: Sequence[Any]) -> Endpoint:
    """A row of ``SELECT ENDPOINT_COLUMNS FROM ENDPOINTS_WITH_APPLICATION``."""
    return endpoint_from_state(row[0], Provider(row[1]), state_from_row(database, row[2:]))


def lock_states(
    connection: Connection, database: Database, application_id: int, tokens: Sequence[str]
) -> dict[str, EndpointState]:
    """The rows of ``tokens`` (at most :data:`CHUNK`), locked for this transaction."""
    if not tokens:
        return {}
    condition, params = database.in_condition("token", tokens)
    rows = connection.query(
        f"SELECT {STATE_COLUMNS} FROM endpoints WHERE application_id = ? AND {condition} "
        f"ORDER BY {database.token_order}{database.for_update}",
        (application_id, *params),
    )
    return {row[1]: state_from_row(database, row) for row in rows}


def write_state(
    connection: Connection, database: Database, states: Sequence[EndpointState]
) -> None:
    database.update_many(
        connection,
        "endpoints",
        "id",
        _ALL_COLUMNS,
        [
            (
                s.user_id,
                s.enabled,
                s.data,
                s.attributes,
                s.updated_at,
                s.last_registered_at,
                s.disabled_at,
                s.disabled_reason,
                s.invalid_since,
                s.last_410_at,
                s.p256dh,
                s.auth,
                s.id,
            )
            for s in states
        ],
    )


def write_status(
    connection: Connection, database: Database, states: Sequence[EndpointState]
) -> None:
    """Write only what a provider verdict changes."""
    database.update_many(
        connection,
        "endpoints",
        "id",
        _STATUS_COLUMNS,
        [
            (
                s.enabled,
                s.updated_at,
                s.disabled_at,
                s.disabled_reason,
                s.invalid_since,
                s.last_410_at,
                s.id,
            )
            for s in states
        ],
    )


def event_for(
    change: Change, application: str, state: EndpointState, now: int, cause: str
) -> NewEvent:
    return NewEvent(
        at=now,
        kind=change.kind,
        application=application,
        token=state.token,
        endpoint_id=state.id,
        user_id=state.user_id,
        cause=cause,
        details=change.details,
    )


# -- registration -----------------------------------------------------------------------------


@dataclass
class RegisterCounts:
    """What a batch of registrations did."""

    created: int = 0
    updated: int = 0
    re_enabled: int = 0
    #: Registrations that only refreshed ``last_registered_at`` (or were older than the
    #: latest one).
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.re_enabled + self.unchanged


def _insert_new(
    connection: Connection,
    database: Database,
    application_id: int,
    first: dict[str, CheckedRegistration],
    now: int,
) -> dict[str, EndpointState]:
    """Insert the tokens that do not exist yet; the states of those this call created."""
    if not first:
        return {}
    rows = database.insert_many(
        connection,
        "endpoints",
        _INSERT_COLUMNS,
        [
            (
                application_id,
                token,
                reg.user_id,
                True,
                reg.data or {},
                reg.attributes or {},
                now,
                now,
                reg.registered_at,
                reg.p256dh,
                reg.auth,
            )
            for token, reg in first.items()
        ],
        "ON CONFLICT (application_id, token) DO NOTHING RETURNING id, token",
    )
    return {token: new_endpoint(first[token], now, endpoint_id) for endpoint_id, token in rows}


def _insert_or_lock(
    connection: Connection,
    database: Database,
    application_id: int,
    first: dict[str, CheckedRegistration],
    now: int,
) -> tuple[dict[str, EndpointState], dict[str, EndpointState]]:
    """(the rows this call created, every row of ``first``'s tokens), all locked."""
    created: dict[str, EndpointState] = {}
    states: dict[str, EndpointState] = {}
    pending = first
    for _ in range(3):
        created.update(_insert_new(connection, database, application_id, pending, now))
        existing = [token for token in pending if token not in created]
        states.update(lock_states(connection, database, application_id, existing))
        # A row that existed at the insert but is gone now was deleted meanwhile: again.
        pending = {token: first[token] for token in existing if token not in states}
        if not pending:
            states.update(created)
            return created, states
    raise StoreError("endpoints kept changing under this registration; try again")


def register_all(
    connection: Connection,
    database: Database,
    events: EventLog,
    applications: Mapping[int, Application],
    registrations: Sequence[CheckedRegistration],
    now: int,
    cause: str,
) -> tuple[RegisterCounts, dict[tuple[int, str], EndpointState], list[EndpointEvent]]:
    """Apply registrations in order (one token may appear several times). Returns the counts,
    the final state of every endpoint touched, and the events to publish after commit."""
    counts = RegisterCounts()
    finals: dict[tuple[int, str], EndpointState] = {}
    published: list[EndpointEvent] = []
    # Rows are locked in (application, token) order in every transaction: no lock cycles.
    ordered = sorted(registrations, key=lambda r: (r.application_id, r.token))
    for application_id, group in itertools.groupby(ordered, key=lambda r: r.application_id):
        app = applications[application_id]
        group_list = list(group)
        for start in range(0, len(group_list), CHUNK):
            chunk = group_list[start : start + CHUNK]
            first: dict[str, CheckedRegistration] = {}
            for reg in chunk:
                first.setdefault(reg.token, reg)
            created, states = _insert_or_lock(connection, database, application_id, first, now)
            dirty: dict[str, EndpointState] = {}
            new_events: list[NewEvent] = []
            creations = set(created)
            for reg in chunk:
                state = states[reg.token]
                if reg.token in creations:
                    creations.discard(reg.token)  # the first registration of a new token
                    counts.created += 1
                    new_events.append(
                        event_for(Change(EventKind.CREATED, {}), app.name, state, now, cause)
                    )
                    continue
                new_state, change = register(state, reg, now)
                states[reg.token] = new_state
                if new_state is not state:
                    dirty[reg.token] = new_state
                if change is None:
                    counts.unchanged += 1
                    continue
                if change.kind is EventKind.RE_ENABLED:
                    counts.re_enabled += 1
                else:
                    counts.updated += 1
                new_events.append(event_for(change, app.name, new_state, now, cause))
            write_state(connection, database, list(dirty.values()))
            published += events.record(connection, new_events)
            for token in first:
                finals[(application_id, token)] = states[token]
    return counts, finals, published


# -- reads ------------------------------------------------------------------------------------


def find_endpoint(
    connection: Connection, database: Database, application: Application, token: str
) -> Endpoint | None:
    rows = connection.query(
        f"SELECT {STATE_COLUMNS} FROM endpoints WHERE application_id = ? AND token = ?",
        (application.id, token),
    )
    if not rows:
        return None
    return endpoint_from_state(
        application.name, application.provider, state_from_row(database, rows[0])
    )


def endpoints_of_user(
    connection: Connection, database: Database, user_id: str, *, enabled_only: bool
) -> list[Endpoint]:
    enabled = " AND endpoints.enabled" if enabled_only else ""
    rows = connection.query(
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS_WITH_APPLICATION} "
        f"WHERE endpoints.user_id = ?{enabled} ORDER BY endpoints.id",
        (user_id,),
    )
    return [endpoint_from_row(database, row) for row in rows]


def tokens_in_applications(connection: Connection, token: str) -> list[str]:
    """Names of the applications that have an endpoint with this exact token."""
    rows = connection.query(
        f"SELECT applications.name FROM {ENDPOINTS_WITH_APPLICATION} "
        "WHERE endpoints.token = ? ORDER BY applications.name",
        (token,),
    )
    return [row[0] for row in rows]


def batched(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
