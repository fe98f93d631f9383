"""Engagement events: what the app reports about a campaign notification.

Every campaign notification carries an engagement id (data key ``pushwire_engagement``:
``pw1.<campaign>.<slot>.<treatment>``); the app sends it back with the event name
(``received``, ``opened``, ``dismissed`` or a name of its own) and its endpoint (the
application and token, or the endpoint id). :func:`ingest` records a batch of any size in one
transaction, with one multi-row INSERT per chunk (``unnest`` arrays on PostgreSQL): every row
is checked first and a bad one (``index`` = its position) records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store.applications import all_applications
from ..store.backend import Connection, Database
from ..store.clock import to_ms
from ..store.validation import normalize_token
from .errors import EngagementInputError

STANDARD_EVENTS = ("received", "opened", "dismissed")
_CUSTOM = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_ENGAGEMENT = re.compile(r"pw1\.([0-9]{1,18})\.([0-9]{1,18})\.(-?[0-9]{1,2})")
#: Token lookups per query.
_LOOKUP = 1000

_COLUMNS = [
    ("at", "bigint"),
    ("name", "text"),
    ("endpoint_id", "bigint"),
    ("campaign_id", "bigint"),
    ("slot_id", "bigint"),
    ("treatment", "bigint"),
    ("details", "jsonb"),
]


@dataclass(frozen=True)
class EngagementEvent:
    """One event the app reported. Give ``engagement`` (the id the notification carried)
    and either ``endpoint_id`` or ``application`` and ``token``."""

    name: str
    engagement: str
    application: str | None = None
    token: str | None = None
    endpoint_id: int | None = None
    #: When it happened (default: when it is ingested).
    at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def parse_engagement(value: object, index: int | None = None) -> tuple[int, int, int]:
    """(campaign id, slot id, treatment) of an engagement id."""
    match = _ENGAGEMENT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise EngagementInputError(
            f"row {index}: engagement must be the id the notification carried "
            f"(pw1.<campaign>.<slot>.<treatment>), not {str(value)[:80]!r}",
            field="engagement",
            index=index,
        )
    return int(match[1]), int(match[2]), int(match[3])


def _row(event: EngagementEvent | Mapping[str, Any], index: int) -> EngagementEvent:
    if isinstance(event, Mapping):
        try:
            event = EngagementEvent(**event)
        except TypeError as e:
            raise EngagementInputError(f"row {index}: {e}", index=index) from None
    if not isinstance(event, EngagementEvent):
        raise EngagementInputError(
            f"row {index} must be an EngagementEvent or a mapping", index=index
        )
    return event


def ingest(
    database: Database,
    events: Iterable[EngagementEvent | Mapping[str, Any]],
    *,
    now: int,
) -> int:
    """Record ``events``; how many."""
    checked: list[tuple[EngagementEvent, tuple[int, int, int], int]] = []
    for index, raw in enumerate(events):
        event = _row(raw, index)
        if not isinstance(event.name, str) or not (
            event.name in STANDARD_EVENTS or _CUSTOM.fullmatch(event.name)
        ):
            raise EngagementInputError(
                f"row {index}: name must be received, opened, dismissed or a custom name "
                f"([a-z][a-z0-9_.:-]*, at most 64), not {str(event.name)[:80]!r}",
                field="name",
                index=index,
            )
        ids = parse_engagement(event.engagement, index)
        at = now if event.at is None else to_ms(event.at, "at")
        if not isinstance(event.details, Mapping):
            raise EngagementInputError(
                f"row {index}: details must be a mapping", field="details", index=index
            )
        if event.endpoint_id is None and (event.application is None or event.token is None):
            raise EngagementInputError(
                f"row {index}: give endpoint_id, or application and token",
                field="endpoint_id",
                index=index,
            )
        if event.endpoint_id is not None and (
            type(event.endpoint_id) is not int or event.endpoint_id < 1
        ):
            raise EngagementInputError(
                f"row {index}: endpoint_id must be a positive integer",
                field="endpoint_id",
                index=index,
            )
        checked.append((event, ids, at))
    if not checked:
        return 0

    def work(c: Connection) -> int:
        endpoint_ids = _resolve(c, database, checked)
        rows = [
            (at, event.name, endpoint_ids[i], ids[0], ids[1], ids[2], dict(event.details))
            for i, (event, ids, at) in enumerate(checked)
        ]
        database.insert_many(c, "engagement_events", _COLUMNS, rows)
        return len(rows)

    return database.write(work)


def _resolve(
    c: Connection,
    database: Database,
    checked: Sequence[tuple[EngagementEvent, tuple[int, int, int], int]],
) -> list[int]:
    """The endpoint id of every row (tokens looked up per application, in chunks)."""
    apps = {a.name: a for a in all_applications(c)}
    wanted: dict[str, dict[str, list[int]]] = {}
    out: list[int] = [0] * len(checked)
    for i, (event, _, _) in enumerate(checked):
        if event.endpoint_id is not None:
            out[i] = event.endpoint_id
            continue
        app = apps.get(str(event.application))
        if app is None:
            raise EngagementInputError(
                f"row {i}: no application named {event.application!r}",
                field="application",
                index=i,
            )
        token = normalize_token(app.provider, event.token, i)
        wanted.setdefault(app.name, {}).setdefault(token, []).append(i)
    for name, tokens in wanted.items():
        app = apps[name]
        listed = list(tokens)
        found: dict[str, int] = {}
        for start in range(0, len(listed), _LOOKUP):
            chunk = listed[start : start + _LOOKUP]
            condition, params = database.in_condition("token", chunk)
            found.update(
                (token, eid)
                for eid, token in c.query(
                    f"SELECT id, token FROM endpoints WHERE application_id = ? AND {condition}",
                    (app.id, *params),
                )
            )
        for token, rows in tokens.items():
            if token not in found:
                raise EngagementInputError(
                    f"row {rows[0]}: no endpoint for token {token[:80]!r} in application {name!r}",
                    field="token",
                    index=rows[0],
                )
            for i in rows:
                out[i] = found[token]
    return out
